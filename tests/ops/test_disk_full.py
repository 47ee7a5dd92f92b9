"""A full disk is a clear state: 507 storage_full for new data, everything else goes on.

The relay runs on a small tmpfs the test mounts (root only; skipped with a reason
otherwise, a failure under ``CI=true``), with a 12 MiB free-space watermark. The test
fills the file system with a file of its own until less than the watermark is free: new
sends, drops and upload bytes are refused with 507 while logins, fetches, acknowledgements,
retractions and status still work, and an abandoned upload's part file is reclaimed at
once. Then it fills the disk to the last byte: still no 500, only 507. Freed again, the
relay takes new messages and every earlier one is intact.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.ops.opsworld import CT_UPLOAD, make_pair
from tests.support.actors import Api
from tests.support.relayproc import RelayProcess

MIB = 1024 * 1024
WATERMARK = 12 * MIB


def _root_reason() -> str:
    reason = "mounting a small tmpfs needs root"
    if os.environ.get("CI") == "true":
        raise AssertionError(f"CI=true but {reason}: run the tests as root in CI")
    return reason


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip(_root_reason())
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(mount)],
                   check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def free(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def fill(path: Path, leave: int) -> None:
    """Write ``path`` until only about ``leave`` bytes stay free (0: to the last byte)."""
    with path.open("ab") as fh:
        while (room := free(path.parent) - leave) > 0:
            try:
                fh.write(bytes(min(room, MIB)))
                fh.flush()
            except OSError:
                break
        try:
            os.fsync(fh.fileno())
        except OSError:
            pass


async def code_of(api: Api, method: str, path: str, body: object = None,
                  token: str | None = None) -> tuple[int, str]:
    status, answer = await api.call(method, path, body, token=token)
    return status, answer.get("code", "") if isinstance(answer, dict) else ""


async def test_below_the_watermark_new_data_is_refused_and_reading_goes_on(
        small_disk: Path) -> None:
    relay = RelayProcess.start(small_disk / "base", env={
        "KOK_RELAY_LIMITS_MIN_FREE_DISK_BYTES": str(WATERMARK),
        "KOK_RELAY_LIMITS_DROP_IDLE_TTL": "2",
        "KOK_RELAY_EXPIRY_INTERVAL": "3600"})  # only the watermark starts a purge here
    filler = small_disk / "filler"
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            pair = await make_pair(api, relay.network_key)
            alice, bob = await api.login(pair.alice), await api.login(pair.bob)
            sent = [await pair.send(alice, f"before {i}") for i in range(3)]
            # an upload that is abandoned half way: its part file holds 1 MiB
            created = await api.ok("POST", "/v1/drops", {"size": 2 * MIB,
                                                         "to": [pair.b.org_id], "ttl": 3600},
                                   token=alice, expect=201)
            upload = {"Authorization": f"Bearer {alice}", "Content-Type": CT_UPLOAD,
                      "Kok-Upload-Token": created["upload_token"]}
            drop_url = f"{relay.url}/v1/drops/{created['id']}"
            async with http.patch(drop_url, data=bytes(MIB),
                                  headers={**upload, "Upload-Offset": "0"}) as resp:
                assert resp.status == 204
            parts = list((relay.dir / "blobs").glob("*.part"))
            assert len(parts) == 1
            await asyncio.sleep(2.2)  # the upload is now idle past drop_idle_ttl

            fill(filler, WATERMARK - 5 * MIB)
            await asyncio.sleep(1.1)  # the relay reads free space at most once a second
            assert free(small_disk) < WATERMARK
            body = {"idempotency_key": "AAAAAAAAAAAAAAAAAAAAAA", "ttl": 60, "envelopes": []}
            assert await code_of(api, "POST", "/v1/messages", body, alice) == (
                507, "storage_full")
            status, code = await code_of(api, "POST", "/v1/drops",
                                         {"size": 1000, "to": [pair.b.org_id]}, alice)
            assert (status, code) == (507, "storage_full")
            async with http.patch(drop_url, data=bytes(10),
                                  headers={**upload, "Upload-Offset": str(MIB)}) as resp:
                assert resp.status == 507
            # reading and freeing go on
            admin = await api.login(pair.staff(pair.b, "admin"))
            assert len(await pair.inbox(admin)) == 3
            assert (await api.ok("POST", f"/v1/messages/{sent[0]['id']}/ack",
                                 token=bob)) == {"deleted": False}
            assert (await api.ok("POST", "/v1/retract",
                                 {"token": sent[2]["status_token"]}))["state"] == "retracted"
            assert (await api.ok("POST", "/v1/status",
                                 {"token": sent[0]["status_token"]}))["acknowledged"] == 1
            # the abandoned upload was reclaimed when the watermark was crossed
            deadline = time.monotonic() + 10
            while parts[0].exists():
                assert time.monotonic() < deadline, "the abandoned upload was not reclaimed"
                await asyncio.sleep(0.2)

            # to the last byte: still a clear 507, never a 500
            fill(filler, 0)
            await asyncio.sleep(1.1)
            answers = [
                await code_of(api, "POST", "/v1/messages", body, alice),
                await code_of(api, "POST", "/v1/auth/challenge",
                              {"staff_id": pair.alice.staff_id}),
                await code_of(api, "GET", "/v1/messages?after=0", token=bob),
                await code_of(api, "POST", f"/v1/messages/{sent[1]['id']}/ack", token=bob),
            ]
            assert answers[0] == (507, "storage_full"), answers
            assert all(s < 500 or c == "storage_full" for s, c in answers), answers

            filler.unlink()
            await asyncio.sleep(1.1)
            fresh = await pair.send(alice, "after")
            ids = [m["id"] for m in await pair.inbox(admin)]
            assert ids == [sent[0]["id"], sent[1]["id"], fresh["id"]]
        assert "internal_error" not in relay.log_text()
    finally:
        relay.stop()
