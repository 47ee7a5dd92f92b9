"""Several relay processes on one PostgreSQL store act as one relay.

Two real relay processes (one directory, one database, two ports, as two hosts behind one
name would be) are driven over HTTP: a message sent through one is pushed at once to a
stream held by the other; a removal through one ends the session and stream held by the
other (so does removing one device); a device-linking mailbox is served by either; an
idempotent retry through the other answers the first send; a login through one
works on the other at once; rate limits are one budget; kill -9 of one process under load
loses nothing it acknowledged. ``serve --workers 2`` shares one port, and SQLite refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import structlog

from protocol import BoxKeyPair, DeviceAdd, DeviceRemove, SigningKeyPair, b64decode, b64encode
from protocol.records import sign_record
from relay.config import LoggingConfig
from relay.privacylog import configure_logging
from tests.support.actors import Api, Staff, envelope, now, rand
from tests.support.pgcluster import PgCluster
from tests.support.relayproc import REPO, RelayProcess

from .conftest import db_rows, unique

PUSH_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def pair(pg_cluster: PgCluster, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    first = RelayProcess.start(tmp_path_factory.mktemp("mp"), store_url=pg_cluster.new_database(),
                               env={"KOK_RELAY_LIMITS_STAFF_REQUESTS_PER_MINUTE": "60"})
    second = None
    try:
        second = first.sibling()
        yield first, second
    finally:
        if second is not None:
            second.stop()
        first.stop()


@pytest.fixture
async def apis(pair: tuple[RelayProcess, RelayProcess]) -> AsyncIterator[tuple[Api, Api]]:
    async with aiohttp.ClientSession() as http:
        yield Api(pair[0].url, http), Api(pair[1].url, http)


def _ws(api: Api, token: str, after: int = 0):  # type: ignore[no-untyped-def]
    return api.http.ws_connect(f"{api.url}/v1/events?after={after}",
                               headers={"Authorization": f"Bearer {token}"})


async def test_a_message_sent_through_one_process_is_pushed_by_the_other(
        pair: tuple[RelayProcess, RelayProcess], apis: tuple[Api, Api]) -> None:
    one, two = apis
    a = await one.setup_org(pair[0].network_key, unique("mpa"), ("admin", "alice"))
    b = await one.setup_org(pair[0].network_key, unique("mpb"), ("admin", "bob"))
    bob = await two.login(b.staff[f"{b.org_id}/bob"])  # enrolled through the other process
    sender = a.staff[f"{a.org_id}/alice"]
    token = await one.login(sender)
    async with _ws(two, bob) as ws:
        await asyncio.sleep(0.2)  # subscribed
        started = time.monotonic()
        sent = await one.send(token, [envelope(sender, b)])
        msg = await ws.receive(timeout=PUSH_TIMEOUT)
        elapsed = time.monotonic() - started
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    event = json.loads(msg.data)
    assert event["message"]["id"] == sent["messages"][0]["id"]
    assert elapsed < PUSH_TIMEOUT


async def test_a_login_through_one_process_works_on_the_other_at_once(
        pair: tuple[RelayProcess, RelayProcess], apis: tuple[Api, Api]) -> None:
    one, two = apis
    org = await one.setup_org(pair[0].network_key, unique("mpl"), ("admin", "carol"))
    for _ in range(5):
        token = await one.login(org.staff[f"{org.org_id}/carol"])
        assert (await two.ok("GET", "/v1/messages", token=token))["messages"] == []
    await two.ok("DELETE", "/v1/auth/session", token=token, expect=204)
    status, body = await one.call("GET", "/v1/messages", token=token)
    assert (status, body["code"]) == (401, "session_invalid")


async def test_a_removal_through_one_process_ends_the_session_held_by_the_other(
        pair: tuple[RelayProcess, RelayProcess], apis: tuple[Api, Api]) -> None:
    one, two = apis
    org = await one.setup_org(pair[0].network_key, unique("mpr"), ("admin", "dave"))
    dave = org.staff[f"{org.org_id}/dave"]
    token = await two.login(dave)
    async with _ws(two, token) as ws:
        await asyncio.sleep(0.2)
        await one.append(org.remove(dave.staff_id))
        closing = await ws.receive(timeout=PUSH_TIMEOUT)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4401)
    status, body = await two.call("GET", "/v1/messages", token=token)
    assert (status, body["code"]) == (401, "session_invalid")


async def test_a_device_removal_through_one_process_ends_that_device_on_the_other(
        pair: tuple[RelayProcess, RelayProcess], apis: tuple[Api, Api]) -> None:
    """Only the removed device: its session and stream held by the other process end at
    once, the person's other device keeps working there."""
    one, two = apis
    org = await one.setup_org(pair[0].network_key, unique("mpd"), ("admin", "erin"))
    erin = org.staff[f"{org.org_id}/erin"]
    laptop = Staff(erin.staff_id, SigningKeyPair.from_seed(rand()), BoxKeyPair.from_seed(rand()))
    await one.append(sign_record(DeviceAdd(erin.staff_id, laptop.signing.public,
                                           laptop.box.public, now()), erin.signing))
    office, token = await two.login(erin), await two.login(laptop)
    async with _ws(two, token) as ws:
        await asyncio.sleep(0.2)
        await one.append(sign_record(DeviceRemove(erin.staff_id, laptop.signing.fingerprint,
                                                  now()), erin.signing))
        closing = await ws.receive(timeout=PUSH_TIMEOUT)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4401)
    status, body = await two.call("GET", "/v1/messages", token=token)
    assert (status, body["code"]) == (401, "session_invalid")
    assert (await two.ok("GET", "/v1/messages", token=office))["messages"] == []
    with pytest.raises(AssertionError, match="auth_bad_signature"):
        await two.login(laptop)  # the person is not removed; the laptop's key no longer logs in


async def test_a_device_link_mailbox_is_served_by_either_process(
        pair: tuple[RelayProcess, RelayProcess], apis: tuple[Api, Api]) -> None:
    """The existing device talks to one process, the new device to the other."""
    one, two = apis
    org = await one.setup_org(pair[0].network_key, unique("mpk"), ("admin", "fay"))
    fay = await one.login(org.staff[f"{org.org_id}/fay"])
    nameplate = (await one.ok("POST", "/v1/link", token=fay, expect=201))["nameplate"]
    await one.ok("POST", f"/v1/link/{nameplate}/a", {"message": b64encode(b"a0")}, token=fay)
    assert (await two.ok("GET", f"/v1/link/{nameplate}/a"))["messages"] == [b64encode(b"a0")]
    for message in (b"b0", b"b1"):
        await two.ok("POST", f"/v1/link/{nameplate}/b", {"message": b64encode(message)})
    status, body = await one.call("POST", f"/v1/link/{nameplate}/b",
                                  {"message": b64encode(b"b2")})
    assert (status, body["code"]) == (409, "link_side_done")  # one answer, whichever process
    got = await one.ok("GET", f"/v1/link/{nameplate}/b?after=0", token=fay)
    assert [b64decode(m) for m in got["messages"]] == [b"b0", b"b1"]
    await two.ok("DELETE", f"/v1/link/{nameplate}", expect=204)
    status, _ = await one.call("GET", f"/v1/link/{nameplate}/a")
    assert status == 404


async def test_an_idempotent_retry_through_the_other_process_gets_the_first_answer(
        pair: tuple[RelayProcess, RelayProcess], apis: tuple[Api, Api]) -> None:
    one, two = apis
    a = await one.setup_org(pair[0].network_key, unique("mpi"), ("admin", "erin"))
    b = await one.setup_org(pair[0].network_key, unique("mpj"), ("admin",))
    erin = a.staff[f"{a.org_id}/erin"]
    env = [envelope(erin, b)]
    key = rand(16)
    first = await one.send(await one.login(erin), env, key=key)
    again = await two.send(await two.login(erin), env, key=key)
    assert again["messages"] == first["messages"]
    rows = await db_rows(pair[0], "SELECT count(*) FROM messages WHERE to_org = ?", b.org_id)
    assert rows[0][0] == 1


async def test_rate_limits_are_one_budget_across_processes(
        pair: tuple[RelayProcess, RelayProcess], apis: tuple[Api, Api]) -> None:
    one, two = apis  # 60 requests per minute per staff member, configured above
    org = await one.setup_org(pair[0].network_key, unique("mpt"), ("admin", "fay"))
    token = await one.login(org.staff[f"{org.org_id}/fay"])
    spent = 0
    while spent < 100:
        status, _ = await one.call("GET", "/v1/messages", token=token)
        if status == 429:
            break
        spent += 1
    assert 55 <= spent <= 62  # the whole budget, through process one
    await asyncio.sleep(2.5)  # processes share what they spent once a second
    statuses = [(await two.call("GET", "/v1/messages", token=token))[0] for _ in range(10)]
    assert statuses.count(429) >= 6, statuses  # ~1 refill a second, not a fresh budget


async def test_kill_9_of_one_process_under_load_loses_nothing_acknowledged(
        pg_cluster: PgCluster, tmp_path: Path) -> None:
    first = RelayProcess.start(tmp_path / "k", store_url=pg_cluster.new_database())
    second = first.sibling()
    acked: list[bytes] = []
    try:
        async with aiohttp.ClientSession() as http:
            one, two = Api(first.url, http), Api(second.url, http)
            a = await one.setup_org(first.network_key, unique("mpk"), ("admin", "gus"))
            b = await one.setup_org(first.network_key, unique("mpm"), ("admin",))
            gus = a.staff[f"{a.org_id}/gus"]
            tokens = {one: await one.login(gus), two: await two.login(gus)}
            stop = asyncio.Event()

            async def sender(api: Api) -> None:
                while not stop.is_set():
                    body = {"idempotency_key": b64encode(rand(16)), "ttl": 3600,
                            "envelopes": [envelope(gus, b)]}
                    try:
                        status, answer = await api.call("POST", "/v1/messages", body,
                                                        token=tokens[api])
                    except (aiohttp.ClientError, ConnectionError):
                        await asyncio.sleep(0.01)
                        continue
                    if status == 201:
                        acked.extend(b64decode(m["id"]) for m in answer["messages"])

            senders = [asyncio.create_task(sender(api)) for api in (one, two) * 4]
            await asyncio.sleep(1.5)
            first.kill()  # SIGKILL mid-stream: no shutdown code runs
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*senders)
            stored = {bytes(r[0]) for r in await db_rows(
                second, "SELECT id FROM messages WHERE to_org = ?", b.org_id)}
    finally:
        second.stop()
        first.stop(check_log=False)
    assert len(acked) > 20
    assert set(acked) <= stored  # every acknowledged send is in the database


def test_workers_share_one_port_and_sqlite_refuses_them(pg_cluster: PgCluster,
                                                        tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "w", store_url=pg_cluster.new_database(), workers=2)
    try:
        for _ in range(20):  # every connection is served, whichever worker takes it
            with contextlib.closing(socket.create_connection(("127.0.0.1", relay.port))) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            started = [e for e in relay.log_events() if e.get("event") == "started"]
            if len(started) >= 2:
                break
            time.sleep(0.1)
        assert len(started) == 2, relay.log_text()[-2000:]
    finally:
        relay.stop()
    sqlite_relay = RelayProcess.start(tmp_path / "s")
    sqlite_relay.stop()
    refused = subprocess.run(
        [sys.executable, "-m", "relay", "serve", "--dir", str(sqlite_relay.dir), "--workers",
         "2"], capture_output=True, text=True, cwd=REPO, timeout=30, check=False)
    assert refused.returncode != 0
    assert "--workers > 1 needs a store several processes can share" in refused.stderr


class _Writes(io.StringIO):
    """A stream that remembers each ``write`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return super().write(text)


def test_each_log_line_is_one_write_so_workers_sharing_stderr_keep_whole_lines() -> None:
    """``serve --workers`` processes write to one stderr: a line written in two pieces (the
    text, then its newline, as ``print`` does on an unbuffered stream, PYTHONUNBUFFERED=1)
    can be joined with another worker's line into one that no JSON reader can parse."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = _Writes()
    try:
        configure_logging(LoggingConfig(level="info", format="json"), stream=stream)
        structlog.get_logger().info("started", workers=2)
        logging.getLogger("aiohttp.server").warning("a foreign warning")
    finally:
        root.handlers, root.level = saved
        structlog.reset_defaults()
    assert [json.loads(call)["event"] for call in stream.calls] == ["started",
                                                                   "a foreign warning"]
    assert all(call.endswith("\n") and call.count("\n") == 1 for call in stream.calls)
