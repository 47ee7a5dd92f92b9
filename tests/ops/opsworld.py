"""A small network driven over raw HTTP for operations tests: sends, WebSocket receive, drops.

Built on ``tests.support.actors`` (protocol objects, no client library), so the same steps
run against a relay directly, behind nginx or Caddy, or after a backup was restored. The
HTTP session is passed in, which lets a test trust a private CA for the proxy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from protocol import SigningKeyPair, b64decode
from tests.support.actors import Api, Org, Staff, envelope
from tests.support.relayproc import RelayProcess, free_port

CT_UPLOAD = "application/offset+octet-stream"


def ci_requires(part: str) -> str:
    """The skip reason for a missing part; under ``CI=true`` a missing part is a failure."""
    reason = f"{part} is not installed here (CI installs it and runs this test)"
    if os.environ.get("CI") == "true":
        raise AssertionError(f"CI=true but {part} is missing: {reason}")
    return reason


def make_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (IP SAN) made with the openssl command."""
    if shutil.which("openssl") is None:
        raise AssertionError("the openssl command is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@dataclass
class Pair:
    """Org ``a`` (admin, alice) sends to org ``b`` (admin, bob)."""

    api: Api
    a: Org
    b: Org

    def staff(self, org: Org, name: str) -> Staff:
        return org.staff[f"{org.org_id}/{name}"]

    @property
    def alice(self) -> Staff:
        return self.staff(self.a, "alice")

    @property
    def bob(self) -> Staff:
        return self.staff(self.b, "bob")

    async def send(self, token: str, body: str = "hello") -> dict[str, Any]:
        """One message alice -> b; returns the relay's answer for it (id, status token)."""
        sent = await self.api.send(token, [envelope(self.alice, self.b, body)])
        return dict(sent["messages"][0])

    async def inbox(self, token: str, after: int = 0) -> list[dict[str, Any]]:
        answer = await self.api.ok("GET", f"/v1/messages?after={after}&limit=1000", token=token)
        return list(answer["messages"])

    async def receive_ws(self, token: str, count: int, after: int = 0,
                         timeout: float = 10.0) -> list[dict[str, Any]]:
        """``count`` envelopes from the event stream (``/v1/events``, a WebSocket)."""
        url = self.api.url.replace("http", "ws", 1) + f"/v1/events?after={after}"
        got: list[dict[str, Any]] = []
        async with self.api.http.ws_connect(
                url, headers={"Authorization": f"Bearer {token}"}) as ws:
            while len(got) < count:
                msg = await ws.receive(timeout=timeout)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"event stream ended: {msg.type} {msg.data!r}")
                event = json.loads(msg.data)
                if event.get("type") == "message":
                    got.append(event["message"])
        return got

    async def drop(self, token: str, data: bytes, piece: int = 256 * 1024) -> str:
        """Upload ``data`` as a drop for org b in pieces, complete it; returns the drop id."""
        answer = await self.api.ok("POST", "/v1/drops", {"size": len(data),
                                                         "to": [self.b.org_id], "ttl": 3600},
                                   token=token, expect=201)
        drop_id, upload = str(answer["id"]), str(answer["upload_token"])
        headers = {"Authorization": f"Bearer {token}", "Kok-Upload-Token": upload,
                   "Content-Type": CT_UPLOAD}
        for offset in range(0, len(data), piece):
            async with self.api.http.patch(
                    f"{self.api.url}/v1/drops/{drop_id}", data=data[offset:offset + piece],
                    headers={**headers, "Upload-Offset": str(offset)}) as resp:
                assert resp.status == 204, (resp.status, await resp.text())
        async with self.api.http.post(f"{self.api.url}/v1/drops/{drop_id}/complete",
                                      headers=headers) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
        return drop_id

    async def download(self, token: str, drop_id: str) -> tuple[int, bytes]:
        async with self.api.http.get(f"{self.api.url}/v1/drops/{drop_id}",
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.read()


async def make_pair(api: Api, network_key: SigningKeyPair, tag: str = "") -> Pair:
    """Two admitted organisations with epoch 1 and grants published."""
    suffix = tag or os.urandom(3).hex()
    a = await api.setup_org(network_key, f"ops-a-{suffix}", ("admin", "alice"))
    b = await api.setup_org(network_key, f"ops-b-{suffix}", ("admin", "bob"))
    return Pair(api, a, b)


def spawn_existing(base: Path, network_key: SigningKeyPair | None = None,
                   env: dict[str, str] | None = None) -> RelayProcess:
    """Serve an existing relay directory ``base/relay`` on a new free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    anchor = json.loads((base / "relay" / "network.json").read_text())
    relay = RelayProcess(base=base, port=port,
                         network_key=network_key or SigningKeyPair.from_seed(os.urandom(32)),
                         network_anchor=anchor,
                         env={"KOK_RELAY_SERVER_PORT": str(port),
                              "KOK_RELAY_SERVER_PUBLIC_URL": url, **(env or {})})
    relay._spawn()
    return relay


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sealed_of(messages: list[dict[str, Any]]) -> dict[str, bytes]:
    """message id -> sealed bytes."""
    return {m["id"]: b64decode(m["sealed"]) for m in messages}
