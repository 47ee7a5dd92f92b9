"""File drops over HTTP against a real relay: round trip, ranges, and every refusal.

Every refusal is checked for its specific status and code *and* for changing nothing: the
durable offset (HEAD), the bytes on the relay's disk and the drop's availability stay as
they were.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol import b64decode
from tests.support.actors import Api, Org, revoke
from tests.support.relayproc import RelayProcess

from .conftest import unique

CT = {"Content-Type": "application/offset+octet-stream"}


async def _body(resp: aiohttp.ClientResponse) -> Any:
    """JSON for problem documents, bytes for everything else."""
    raw = await resp.read()
    if raw and "json" in resp.headers.get("Content-Type", ""):
        return json.loads(raw)
    return raw


class Drop:
    """One drop as its uploader sees it: id, upload token, and raw HTTP helpers."""

    def __init__(self, api: Api, session: str, answer: dict[str, Any]) -> None:
        self.api = api
        self.session = session
        self.id = str(answer["id"])
        self.token = str(answer["upload_token"])
        self.expires = int(answer["expires"])

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.session}",
               "Kok-Upload-Token": token or self.token}
        out.update(extra)
        return out

    async def request(self, method: str, path: str = "", *, headers: dict[str, str],
                      data: Any = None) -> tuple[int, Any, dict[str, str]]:
        url = f"{self.api.url}/v1/drops/{self.id}{path}"
        async with self.api.http.request(method, url, headers=headers, data=data) as resp:
            return resp.status, await _body(resp), dict(resp.headers)

    async def patch(self, offset: int, data: Any, *, token: str | None = None,
                    content_type: str = CT["Content-Type"]) -> tuple[int, Any, dict[str, str]]:
        return await self.request("PATCH", headers=self.headers(
            token, **{"Upload-Offset": str(offset), "Content-Type": content_type}), data=data)

    async def offset(self, token: str | None = None) -> int:
        status, _, headers = await self.request("HEAD", headers=self.headers(token))
        assert status == 200, status
        return int(headers["Upload-Offset"])

    async def complete(self, token: str | None = None) -> tuple[int, Any, dict[str, str]]:
        return await self.request("POST", "/complete", headers=self.headers(token))


async def get(api: Api, drop_id: str, session: str, range_: str | None = None
              ) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {session}"}
    if range_ is not None:
        headers["Range"] = range_
    async with api.http.get(f"{api.url}/v1/drops/{drop_id}", headers=headers) as resp:
        return resp.status, await _body(resp), dict(resp.headers)


async def create(api: Api, session: str, size: int, to: list[str], ttl: int = 3600) -> Drop:
    answer = await api.ok("POST", "/v1/drops", {"size": size, "to": to, "ttl": ttl},
                          token=session, expect=201)
    assert len(b64decode(answer["id"])) == 16 and len(b64decode(answer["upload_token"])) == 32
    return Drop(api, session, answer)


def blob_files(relay: RelayProcess, drop: Drop) -> list[Path]:
    hex_id = b64decode(drop.id).hex()
    return sorted((relay.dir / "blobs").glob(f"{hex_id}.*"))


async def _pair(api: Api, relay: RelayProcess) -> tuple[Org, Org]:
    a = await api.setup_org(relay.network_key, unique("da"), ("admin", "alice"))
    b = await api.setup_org(relay.network_key, unique("db"), ("admin", "bob"))
    return a, b


def staff(org: Org, name: str) -> Any:
    return org.staff[f"{org.org_id}/{name}"]


async def chunked(*pieces: bytes) -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked), so the relay must bound it while streaming."""
    for piece in pieces:
        yield piece


async def test_upload_in_parts_complete_download_with_ranges_and_ack(
        api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    alice = await api.login(staff(a, "alice"))
    data = os.urandom(300_000)
    drop = await create(api, alice, len(data), [b.org_id])
    assert await drop.offset() == 0
    status, _, headers = await drop.patch(0, data[:100_000])
    assert (status, headers["Upload-Offset"]) == (204, "100000")
    status, _, headers = await drop.patch(100_000, chunked(data[100_000:250_000],
                                                           data[250_000:]))
    assert (status, headers["Upload-Offset"]) == (204, "300000")
    assert await drop.offset() == len(data)
    bob = await api.login(staff(b, "bob"))
    status, body, _ = await get(api, drop.id, bob)
    assert (status, body["code"]) == (404, "not_found")  # never served before completion
    status, body, _ = await drop.complete()
    assert status == 200 and body["size"] == len(data) and body["id"] == drop.id

    status, body, headers = await get(api, drop.id, bob)
    assert status == 200 and body == data
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Length"] == str(len(data))
    assert headers["Server"] == "kok-relay"  # sent by the handler, named all the same
    for range_, start, end in (("bytes=123456-", 123456, len(data)), ("bytes=10-19", 10, 20),
                               ("bytes=-7", len(data) - 7, len(data)),
                               ("bytes=299990-999999", 299990, len(data))):
        status, body, headers = await get(api, drop.id, bob, range_)
        assert status == 206 and body == data[start:end], range_
        assert headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(data)}"

    admin_b = await api.login(staff(b, "admin"))
    assert await api.ok("POST", f"/v1/drops/{drop.id}/ack", token=bob) == {"deleted": False}
    assert await api.ok("POST", f"/v1/drops/{drop.id}/ack", token=bob) == {"deleted": False}
    assert [p.suffix for p in blob_files(shared_relay, drop)] == [".blob"]
    assert await api.ok("POST", f"/v1/drops/{drop.id}/ack", token=admin_b) == {"deleted": True}
    assert blob_files(shared_relay, drop) == []
    status, body, _ = await get(api, drop.id, bob)
    assert (status, body["code"]) == (404, "not_found")


async def test_every_bad_upload_is_refused_specifically_and_changes_nothing(
        api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    alice = await api.login(staff(a, "alice"))
    data = os.urandom(50_000)
    drop = await create(api, alice, len(data), [b.org_id])
    assert (await drop.patch(0, data[:20_000]))[0] == 204

    async def unchanged() -> None:
        assert await drop.offset() == 20_000
        [part] = blob_files(shared_relay, drop)
        assert part.suffix == ".part" and part.read_bytes() == data[:20_000]

    # wrong offset, before and after the end
    for wrong in (0, 19_999, 20_001):
        status, body, headers = await drop.patch(wrong, data[wrong:wrong + 10])
        assert (status, body["code"], headers["Upload-Offset"]) == (409, "offset_mismatch",
                                                                    "20000")
    await unchanged()
    # past the declared size: refused before reading (Content-Length) and while streaming
    status, body, _ = await drop.patch(20_000, data[20_000:] + b"x")
    assert (status, body["code"]) == (413, "drop_size_exceeded")
    status, body, _ = await drop.patch(20_000, chunked(data[20_000:40_000], data[40_000:],
                                                       b"extra"))
    assert (status, body["code"]) == (413, "drop_size_exceeded")
    await unchanged()
    # a wrong upload token is "no such drop"; a missing or malformed one says what is needed
    status, body, _ = await drop.patch(20_000, data[20_000:], token="A" * 43)
    assert (status, body["code"]) == (404, "not_found")
    status, body, _ = await drop.request("HEAD", headers=drop.headers("A" * 43))
    assert status == 404
    for bad in ("", "not-base64!", "AAAA"):
        status, body, _ = await drop.patch(20_000, data[20_000:], token=bad or " ")
        assert (status, body["code"]) == (401, "upload_token_required"), bad
    status, body, _ = await drop.request("PATCH", headers={
        "Authorization": f"Bearer {alice}", "Upload-Offset": "20000", **CT}, data=b"x")
    assert (status, body["code"]) == (401, "upload_token_required")
    # the session is needed too
    status, body, _ = await drop.request("PATCH", headers={
        "Kok-Upload-Token": drop.token, "Upload-Offset": "20000", **CT}, data=b"x")
    assert (status, body["code"]) == (401, "auth_required")
    # body type and offset header
    status, body, _ = await drop.patch(20_000, data[20_000:], content_type="text/plain")
    assert (status, body["code"]) == (415, "unsupported_media_type")
    for offset_header in ("", "-1", "12a", "1" * 30):
        status, body, _ = await drop.request("PATCH", data=b"x", headers=drop.headers(
            **{"Upload-Offset": offset_header, **CT}))
        assert (status, body["code"]) == (400, "bad_header"), offset_header
    await unchanged()
    # complete before every byte is there
    status, body, _ = await drop.complete()
    assert (status, body["code"]) == (409, "drop_incomplete")
    status, body, _ = await drop.complete(token="A" * 43)
    assert (status, body["code"]) == (404, "not_found")
    await unchanged()
    bob = await api.login(staff(b, "bob"))
    assert (await get(api, drop.id, bob))[0] == 404

    # the rest, then completion; afterwards the drop takes no more bytes
    assert (await drop.patch(20_000, data[20_000:]))[0] == 204
    assert (await drop.complete())[0] == 200
    assert (await drop.complete())[0] == 200  # repeating it is harmless
    status, body, _ = await drop.patch(len(data), b"more")
    assert (status, body["code"]) == (409, "drop_complete")
    assert await drop.offset() == len(data)
    status, body, _ = await get(api, drop.id, bob)
    assert status == 200 and body == data


async def test_bad_ranges_are_416_with_the_size(api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    alice = await api.login(staff(a, "alice"))
    data = os.urandom(1000)
    drop = await create(api, alice, len(data), [b.org_id])
    assert (await drop.patch(0, data))[0] == 204
    assert (await drop.complete())[0] == 200
    bob = await api.login(staff(b, "bob"))
    for bad in ("bytes=1000-", "bytes=5000-6000", "bytes=9-3", "bytes=0-1,5-6", "items=0-1",
                "bytes=-0", "bytes=-", "bytes=a-b", "bytes=1-2-3"):
        status, body, headers = await get(api, drop.id, bob, bad)
        assert (status, body["code"]) == (416, "bad_range"), bad
        assert headers["Content-Range"] == "bytes */1000"
    status, body, _ = await get(api, drop.id, bob, "bytes=999-")
    assert (status, body) == (206, data[999:])


async def test_creating_a_drop_checks_size_recipients_and_ttl(
        api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    alice = await api.login(staff(a, "alice"))
    blobs = shared_relay.dir / "blobs"
    before = sorted(blobs.iterdir())
    cases = [
        ({"size": 5 * 2**30, "to": [b.org_id]}, 413, "drop_too_large"),
        ({"size": 10, "to": [b.org_id]}, 422, "bad_field"),
        ({"size": "100", "to": [b.org_id]}, 422, "bad_field"),
        ({"size": True, "to": [b.org_id]}, 422, "bad_field"),
        ({"size": 1000, "to": []}, 422, "bad_field"),
        ({"size": 1000, "to": b.org_id}, 422, "bad_field"),
        ({"size": 1000, "to": ["no-such-org"]}, 422, "recipient_unknown"),
        ({"size": 1000, "to": ["Bad Org"]}, 422, "bad_field"),
        ({"size": 1000, "to": [b.org_id, b.org_id]}, 422, "duplicate_recipient"),
        ({"size": 1000, "to": [b.org_id], "ttl": 0}, 422, "ttl_out_of_range"),
        ({"size": 1000, "to": [b.org_id], "ttl": 31 * 86400}, 422, "ttl_out_of_range"),
        ({"size": 1000, "to": [b.org_id], "from": "x"}, 422, "unknown_field"),
        ({"to": [b.org_id]}, 422, "missing_field"),
    ]
    for body, status, code in cases:
        got, answer = await api.call("POST", "/v1/drops", body, token=alice)
        assert (got, answer.get("code")) == (status, code), body
    got, answer = await api.call("POST", "/v1/drops", {"size": 1000, "to": [b.org_id]})
    assert (got, answer["code"]) == (401, "auth_required")
    assert sorted(blobs.iterdir()) == before  # no refusal left a file behind


async def test_only_current_staff_of_a_recipient_org_can_fetch(
        api: Api, shared_relay: RelayProcess) -> None:
    a, b = await _pair(api, shared_relay)
    c = await api.setup_org(shared_relay.network_key, unique("dc"), ("admin",))
    alice = await api.login(staff(a, "alice"))
    data = os.urandom(2000)
    drop = await create(api, alice, len(data), [b.org_id])
    assert (await drop.patch(0, data))[0] == 204
    assert (await drop.complete())[0] == 200
    outsider = await api.login(staff(c, "admin"))
    missing = "A" * 22
    for who in (outsider, alice):  # another org, and the sender's own org: no such drop
        for drop_id in (drop.id, missing):
            status, body, _ = await get(api, drop_id, who)
            assert (status, body["code"]) == (404, "not_found")
            status, body = await api.call("POST", f"/v1/drops/{drop_id}/ack", token=who)
            assert (status, body["code"]) == (404, "not_found")
    # bob is removed: his session ends at once and he no longer counts as a recipient
    bob = await api.login(staff(b, "bob"))
    admin_b = await api.login(staff(b, "admin"))
    await api.append(b.remove(f"{b.org_id}/bob"))
    status, body, _ = await get(api, drop.id, bob)
    assert (status, body["code"]) == (401, "session_invalid")
    status, body = await api.call("POST", "/v1/auth/challenge", {"staff_id": f"{b.org_id}/bob"})
    assert status == 403
    status, body, _ = await get(api, drop.id, admin_b)
    assert (status, body) == (200, data)
    assert await api.ok("POST", f"/v1/drops/{drop.id}/ack", token=admin_b) == {"deleted": True}
    assert blob_files(shared_relay, drop) == []


@pytest.fixture(scope="module")
def tight_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    relay = RelayProcess.start(tmp_path_factory.mktemp("drops-tight"), env={
        "KOK_RELAY_LIMITS_MAX_OPEN_UPLOADS_PER_ORG": "2",
        "KOK_RELAY_LIMITS_ORG_DROP_BYTES": "10000",
        "KOK_RELAY_LIMITS_MAX_DROP_BYTES": "8000",
    })
    yield relay
    relay.stop()


async def test_open_uploads_quota_and_size_cap(tight_relay: RelayProcess) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(tight_relay.url, http)
        a, b = await _pair(api, tight_relay)
        alice = await api.login(staff(a, "alice"))
        info = await api.ok("GET", "/v1/info")
        assert info["limits"]["max_drop_bytes"] == 8000
        assert info["limits"]["org_drop_bytes"] == 10000
        status, body = await api.call("POST", "/v1/drops", {"size": 8001, "to": [b.org_id]},
                                      token=alice)
        assert (status, body["code"]) == (413, "drop_too_large")
        first = await create(api, alice, 4000, [b.org_id])
        await create(api, alice, 4000, [b.org_id])
        status, body = await api.call("POST", "/v1/drops", {"size": 1000, "to": [b.org_id]},
                                      token=alice)
        assert (status, body["code"]) == (429, "too_many_uploads")
        # completing one frees a slot, but b's quota (10000) now holds 8000 bytes
        assert (await first.patch(0, os.urandom(4000)))[0] == 204
        assert (await first.complete())[0] == 200
        status, body = await api.call("POST", "/v1/drops", {"size": 2001, "to": [b.org_id]},
                                      token=alice)
        assert (status, body["code"]) == (413, "drop_quota_exceeded")
        third = await create(api, alice, 2000, [b.org_id])
        assert third.id != first.id


async def test_expired_and_idle_drops_are_wiped_from_disk(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "r", env={"KOK_RELAY_EXPIRY_INTERVAL": "1",
                                                     "KOK_RELAY_LIMITS_DROP_IDLE_TTL": "3"})

    def purged_drops() -> int:
        return sum(e.get("drops", 0) for e in relay.log_events() if e.get("event") == "purged")

    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            a, b = await _pair(api, relay)
            alice = await api.login(staff(a, "alice"))
            bob = await api.login(staff(b, "bob"))
            done = await create(api, alice, 3000, [b.org_id], ttl=4)
            data = os.urandom(3000)
            assert (await done.patch(0, data))[0] == 204
            assert (await done.complete())[0] == 200
            idle = await create(api, alice, 3000, [b.org_id], ttl=3600)
            assert (await idle.patch(0, os.urandom(1000)))[0] == 204
            assert [p.suffix for p in blob_files(relay, done)] == [".blob"]
            assert [p.suffix for p in blob_files(relay, idle)] == [".part"]
            assert (await get(api, done.id, bob))[1] == data  # served until it expires
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (blob_files(relay, done)
                                                   or blob_files(relay, idle)
                                                   or purged_drops() < 2):
                await asyncio.sleep(0.3)  # the purge logs its counts after it has deleted
            assert blob_files(relay, done) == [] and blob_files(relay, idle) == []
            assert (await get(api, done.id, bob))[0] == 404
            status, _, _ = await idle.request("HEAD", headers=idle.headers())
            assert status == 404
            assert purged_drops() == 2
    finally:
        relay.stop()


async def test_relay_purge_command_runs_the_relays_own_purge(tmp_path: Path) -> None:
    """`relay purge` on a stopped relay deletes what the serving relay's purge would: here a
    drop nobody current waits for any more (its only recipient org was revoked, which
    takes the key log to know) and a file without a drop. (Expiry by time is tested in
    process with a moved clock: test_service_drops.py.)"""
    relay = RelayProcess.start(tmp_path / "r", env={"KOK_RELAY_EXPIRY_INTERVAL": "3600"})
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            a, b = await _pair(api, relay)
            alice = await api.login(staff(a, "alice"))
            drop = await create(api, alice, 3000, [b.org_id])
            assert (await drop.patch(0, os.urandom(3000)))[0] == 204
            assert (await drop.complete())[0] == 200
            keep = await create(api, alice, 3000, [a.org_id])
            await api.append(revoke(relay.network_key, b.org_id))
    finally:
        relay.stop()
    orphan = relay.dir / "blobs" / (b"\x01" * 16).hex()
    orphan.with_suffix(".part").write_bytes(b"left over from a crash")

    def relay_cli(command: str) -> dict[str, int]:
        run = subprocess.run([sys.executable, "-m", "relay", command, "--dir", str(relay.dir),
                              "--json"], capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 0, run.stderr
        return dict(json.loads(run.stdout))

    stats = relay_cli("stats")
    assert (stats["drops"], stats["complete_drops"], stats["drop_bytes"]) == (2, 1, 6000)
    assert relay_cli("purge")["drops"] == 2  # the undeliverable drop and the orphaned file
    assert blob_files(relay, drop) == [] and not orphan.with_suffix(".part").exists()
    assert [p.suffix for p in blob_files(relay, keep)] == [".part"]
    assert relay_cli("stats")["drops"] == 1
