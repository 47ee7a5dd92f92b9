"""A lying relay: a proxy process in front of a real relay that rewrites answers on purpose.

It plays a hostile relay operator. It holds the relay's log key (read from ``relay.key``),
so every key-log head it serves carries a valid signature, and it can:

- rewrite key-log records (``tamper``: set body fields of entry ``index``, keeping the
  original signatures) or reorder them (``swap``), recomputing every chain hash and
  re-signing the head, so only the clients' own checks can tell;
- inject envelopes into ``GET /v1/messages`` answers (``inject``: each is served once, with
  a fresh relay id), e.g. a replay or an envelope moved from another org's mailbox;
- replace grants in ``GET /v1/grants`` answers (``grants``);
- freeze the log its clients see at a size (``freeze``: the first entries only, under a
  head it signs for that size), and accept a send sealed to an epoch the real relay calls
  stale (``accept_stale``: the envelope is kept in ``seen`` and a made-up answer goes back),
  as a relay colluding with a removed member would;
- remember every envelope that passes through it, sent or fetched (``seen``).

It never forwards ``Kok-Log-Head`` (a hostile relay ignores what clients tell it). The
WebSocket event stream is not proxied. Attacks are set over a control route::

    POST /__lie        {"tamper": [...], "swap": [...], "inject": [...], "grants": [...],
                        "freeze": SIZE, "accept_stale": true}
    GET  /__lie/seen   {"envelopes": [{"to_org", "epoch", "sealed"}, ...]}

Test side: ``LyingRelay.start(upstream)`` starts the process (``python -m
tests.support.lyingrelay``) on a free loopback port; ``await lie.configure(...)``,
``await lie.seen()``, ``lie.stop()`` (SIGTERM by PID).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from protocol import SignedItem, SigningKeyPair, b64decode, b64encode, sign_head
from protocol.encoding import canonical_json, parse_canonical
from protocol.keylog import ZERO_HASH, chain_hash

REPO = Path(__file__).resolve().parents[2]
DROP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "kok-log-head",
                "accept-encoding"}
PAGE = 5000


# --- the proxy process ----------------------------------------------------------------------


@dataclass
class Attacks:
    """What the lying relay does to the answers it forwards."""

    tamper: list[dict[str, Any]] = field(default_factory=list)
    swap: list[list[int]] = field(default_factory=list)
    inject: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    freeze: int | None = None
    accept_stale: bool = False
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rewrites_log(self) -> bool:
        return bool(self.tamper or self.swap) or self.freeze is not None


class Proxy:
    """Forward to ``upstream``, lying as ``attacks`` says."""

    def __init__(self, upstream: str, log_key: SigningKeyPair) -> None:
        self.upstream = upstream.rstrip("/")
        self.log_key = log_key
        self.attacks = Attacks()
        self.http: aiohttp.ClientSession | None = None

    async def forward(self, request: web.Request, body: bytes) -> tuple[int, str, bytes]:
        assert self.http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROP_HEADERS}
        async with self.http.request(request.method, self.upstream + request.path_qs,
                                     headers=headers, data=body or None) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), await answer.read()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/__lie" and request.method == "POST":
            config = await request.json()
            seen = self.attacks.seen
            self.attacks = Attacks(**config)
            self.attacks.seen = seen
            return web.json_response({"ok": True})
        if request.path == "/__lie/seen":
            return web.json_response({"envelopes": self.attacks.seen})
        if request.path == "/v1/events":
            return web.Response(status=501, text="not proxied")
        body = await request.read()
        if request.path == "/v1/messages" and request.method == "POST":
            self._remember(body)
        if (request.method == "GET" and request.path in ("/v1/log", "/v1/log/head")
                and self.attacks.rewrites_log):  # an append still reaches the real log
            return web.json_response(await self._lying_log(request))
        status, kind, data = await self.forward(request, body)
        if (status == 409 and self.attacks.accept_stale and request.method == "POST"
                and request.path == "/v1/messages"):
            return web.json_response(self._made_up_send(body))
        if status == 200 and request.method == "GET" and request.path == "/v1/messages":
            data = self._mailbox(data)
        if status == 200 and request.method == "GET" and request.path == "/v1/grants":
            data = self._replace_grants(data)
        return web.Response(status=status, body=data, headers={"Content-Type": kind}
                            if kind else None)

    def _remember(self, body: bytes) -> None:
        try:
            for envelope in json.loads(body).get("envelopes", []):
                self.attacks.seen.append({k: envelope[k] for k in ("to_org", "epoch", "sealed")})
        except (ValueError, AttributeError, KeyError, TypeError):
            pass

    async def _lying_log(self, request: web.Request) -> dict[str, Any]:
        """The whole upstream log, rewritten, re-hashed and re-signed; then the page asked."""
        assert self.http is not None
        async with self.http.get(f"{self.upstream}/v1/log",
                                 params={"after": 0, "limit": PAGE}) as answer:
            records = [e["record"] for e in (await answer.json())["entries"]]
        for change in self.attacks.tamper:
            record = records[change["index"]]
            body = parse_canonical(record["body"].encode("utf-8"))
            body.update(change["set"])
            records[change["index"]] = {"body": canonical_json(body).decode("utf-8"),
                                        "sigs": record["sigs"]}  # the old signatures stay
        for i, j in self.attacks.swap:
            records[i], records[j] = records[j], records[i]
        if self.attacks.freeze is not None:
            records = records[:self.attacks.freeze]
        hashes, previous = [], ZERO_HASH
        for record in records:
            previous = chain_hash(previous, SignedItem.from_json(record).to_bytes())
            hashes.append(previous)
        head = sign_head(self.log_key, len(records), previous, int(time.time()))
        head_json = {"size": head.size, "hash": b64encode(head.hash), "time": head.time,
                     "signature": b64encode(head.signature)}
        if request.path == "/v1/log/head":
            return head_json
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "1000"))
        entries = [{"index": i, "record": records[i], "hash": b64encode(hashes[i])}
                   for i in range(after, min(len(records), after + limit))]
        return {"entries": entries, "head": head_json}

    @staticmethod
    def _made_up_send(body: bytes) -> dict[str, Any]:
        """The answer of a send the relay claims to have stored (it kept it in ``seen``)."""
        envelopes = json.loads(body).get("envelopes", [])
        return {"messages": [
            {"id": b64encode(secrets.token_bytes(16)), "to_org": e["to_org"],
             "status_token": b64encode(secrets.token_bytes(32)),
             "expires": int(time.time()) + 3600} for e in envelopes]}

    def _mailbox(self, data: bytes) -> bytes:
        """Remember every envelope a mailbox answer carries; add the injected ones."""
        page = json.loads(data)
        for stored in page.get("messages", []):
            self.attacks.seen.append({k: stored[k] for k in ("to_org", "epoch", "sealed")})
        if not self.attacks.inject:
            return data
        now = int(time.time())
        cursor = int(page.get("cursor") or 0)
        for envelope in self.attacks.inject:
            page["messages"].append({
                "id": b64encode(secrets.token_bytes(16)), "cursor": cursor,
                "to_org": envelope["to_org"], "epoch": envelope["epoch"],
                "sealed": envelope["sealed"], "received": now, "expires": now + 3600})
        self.attacks.inject = []  # each injected envelope is served once
        return json.dumps(page).encode()

    def _replace_grants(self, data: bytes) -> bytes:
        if not self.attacks.grants:
            return data
        page = json.loads(data)
        for forged in self.attacks.grants:
            page["grants"] = [g for g in page["grants"]
                              if (g["org_id"], g["epoch"]) != (forged["org_id"], forged["epoch"])]
            page["grants"].append(forged)
        return json.dumps(page).encode()


def make_app(upstream: str, log_key: SigningKeyPair) -> web.Application:
    """The proxy application."""
    proxy = Proxy(upstream, log_key)

    async def lifecycle(app: web.Application) -> Any:
        proxy.http = aiohttp.ClientSession()
        yield
        await proxy.http.close()

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.support.lyingrelay --upstream URL --relay-dir DIR --port P``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--relay-dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)
    keys = json.loads((args.relay_dir / "relay.key").read_text())
    log_key = SigningKeyPair.from_seed(b64decode(keys["log_key"], size=32))
    web.run_app(make_app(args.upstream, log_key), host="127.0.0.1", port=args.port,
                access_log=None, print=None)


# --- the test side --------------------------------------------------------------------------


@dataclass
class LyingRelay:
    """A running lying relay process."""

    url: str
    proc: subprocess.Popen[bytes]

    @classmethod
    def start(cls, relay: Any, port: int | None = None) -> LyingRelay:
        """Start one in front of a ``RelayProcess`` and wait until it answers.

        Clients bind their logins to the URL they use, so ``relay`` must list this proxy's
        URL among its own (``RelayProcess.start(also_urls=...)`` with a ``port`` reserved
        beforehand): the hostile operator runs both.
        """
        from tests.support.relayproc import free_port

        port = port or free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.lyingrelay", "--upstream", relay.url,
             "--relay-dir", str(relay.dir), "--port", str(port)],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lie = cls(url=f"http://127.0.0.1:{port}", proc=proc)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the lying relay exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(lie.url + "/healthz", timeout=1):  # noqa: S310
                    return lie
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        lie.stop()
        raise RuntimeError("the lying relay did not answer in time")

    async def configure(self, **attacks: Any) -> None:
        """Replace the attacks (``tamper``, ``swap``, ``inject``, ``grants``); none = honest."""
        async with aiohttp.ClientSession() as http:
            async with http.post(self.url + "/__lie", json=attacks) as answer:
                assert answer.status == 200, await answer.text()

    async def seen(self) -> list[dict[str, Any]]:
        """Every envelope sent through this relay so far."""
        async with aiohttp.ClientSession() as http:
            async with http.get(self.url + "/__lie/seen") as answer:
                return list((await answer.json())["envelopes"])

    def stop(self) -> None:
        """SIGTERM by PID, then wait."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


if __name__ == "__main__":
    main()
