"""``relay backup`` under load and ``relay restore``: clients carry on after a restore.

A real relay serves two organisations while a sender keeps sending; ``relay backup`` runs
as a separate process in the middle of it, with a file drop complete and another half
uploaded. Then more is sent and read, the relay is stopped, the backup restored and the
relay started again. The test shows: every message the relay acknowledged before the backup
began is there again, byte for byte; the only ones missing are those acknowledged after it
(their senders' status tokens answer ``not_found``, which the client shows as "unknown");
the key log is unchanged; the complete drop is served intact, the half upload resumes at
offset 0; and a recipient who read past the backup still gets new messages by its cursor.
Refusals change nothing: restoring while the relay runs, without the relay's key, or from
a damaged backup.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.ops.opsworld import CT_UPLOAD, Pair, make_pair
from tests.support.actors import Api
from tests.support.relayproc import REPO, RelayProcess, _test_env

MIB = 1024 * 1024
UNLIMITED = {"KOK_RELAY_LIMITS_STAFF_REQUESTS_PER_MINUTE": "1000000",
             "KOK_RELAY_LIMITS_ORG_REQUESTS_PER_MINUTE": "1000000"}


def relay_cli(relay: RelayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", *args, "--dir", str(relay.dir)],
                          capture_output=True, text=True, env=_test_env({}), cwd=REPO,
                          timeout=120)


async def start_upload(pair: Pair, token: str, data: bytes) -> tuple[str, dict[str, str]]:
    """Create a drop and upload only the first half of ``data``."""
    answer = await pair.api.ok("POST", "/v1/drops", {"size": len(data), "to": [pair.b.org_id],
                                                     "ttl": 3600}, token=token, expect=201)
    headers = {"Authorization": f"Bearer {token}", "Kok-Upload-Token": answer["upload_token"],
               "Content-Type": CT_UPLOAD}
    async with pair.api.http.patch(f"{pair.api.url}/v1/drops/{answer['id']}",
                                   data=data[:len(data) // 2],
                                   headers={**headers, "Upload-Offset": "0"}) as resp:
        assert resp.status == 204
    return str(answer["id"]), headers


async def test_a_backup_taken_under_load_restores_and_clients_carry_on(tmp_path: Path) -> None:
    # the load below sends as fast as the relay answers for as long as the backup takes;
    # the per-person rate limit is not what this test is about
    relay = RelayProcess.start(tmp_path / "base", env=UNLIMITED)
    out = tmp_path / "backup"
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            pair = await make_pair(api, relay.network_key)
            alice, bob = await api.login(pair.alice), await api.login(pair.bob)
            before = [await pair.send(alice, f"before {i}") for i in range(10)]
            for sent in before[:3]:
                await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=bob)
            complete = os.urandom(2 * MIB + 3)
            complete_id = await pair.drop(alice, complete)
            half = os.urandom(MIB)
            half_id, half_headers = await start_upload(pair, alice, half)

            # a sender keeps sending while the backup runs; each answer is timed
            acked: list[tuple[float, dict[str, Any]]] = []
            stop = asyncio.Event()

            async def load() -> None:
                i = 0
                while not stop.is_set():
                    acked.append((time.monotonic(), await pair.send(alice, f"load {i}")))
                    i += 1

            sender = asyncio.create_task(load())
            await asyncio.sleep(0.3)
            began = time.monotonic()
            result = await asyncio.to_thread(relay_cli, relay, "backup", "--out", str(out))
            ended = time.monotonic()
            await asyncio.sleep(0.3)
            stop.set()
            await sender
            assert result.returncode == 0, result.stderr
            assert "It holds no relay.key" in result.stdout
            assert not (out / "relay.key").exists()
            manifest = json.loads((out / "manifest.json").read_text())
            assert manifest["drops"] == 1  # the half upload is not in it
            acked_before = [m for t, m in acked if t < began]
            acked_after = [m for t, m in acked if t > ended]
            assert acked_before and acked_after, "the load did not overlap the backup"

            after = [await pair.send(alice, f"after {i}") for i in range(5)]
            seen = await pair.inbox(bob)
            last_cursor = seen[-1]["cursor"]
            head = await api.ok("GET", "/v1/log/head")

        relay.stop()
        restored = relay_cli(relay, "restore", str(out))
        assert restored.returncode == 0, restored.stderr
        assert "Messages stored after the backup was taken are gone" in restored.stdout
        relay._spawn()

        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            pair.api = api
            assert (await api.ok("GET", "/v1/log/head"))["hash"] == head["hash"]
            alice, bob = await api.login(pair.alice), await api.login(pair.bob)
            ids = {m["id"] for m in await pair.inbox(bob)}
            must = {m["id"] for m in before + acked_before}
            gone = {m["id"] for m in after + acked_after}
            assert must <= ids, "a message acknowledged before the backup is missing"
            assert not (gone & ids), "a message acknowledged after the backup came back"
            unclear = ids - must  # sent while the backup ran: either way is right
            assert unclear <= {m["id"] for _, m in acked}
            for sent in after + acked_after:  # the sender learns plainly: unknown here
                status, answer = await api.call("POST", "/v1/status",
                                                {"token": sent["status_token"]})
                assert (status, answer["code"]) == (404, "not_found")
            for sent in before[3:]:
                answer = await api.ok("POST", "/v1/status", {"token": sent["status_token"]})
                assert answer["state"] != "unknown"

            status, data = await pair.download(bob, complete_id)
            assert status == 200 and data == complete
            async with http.head(f"{relay.url}/v1/drops/{half_id}",
                                 headers=half_headers) as resp:
                assert resp.status == 200 and resp.headers["Upload-Offset"] == "0"
            async with http.patch(f"{relay.url}/v1/drops/{half_id}", data=half,
                                  headers={**half_headers, "Upload-Offset": "0",
                                           "Authorization": f"Bearer {alice}"}) as resp:
                assert resp.status == 204

            # a reader that saw cursors from after the backup still gets what is new
            listening = asyncio.create_task(pair.receive_ws(bob, 1, after=last_cursor))
            await asyncio.sleep(0.3)
            fresh = await pair.send(alice, "after the restore")
            [pushed] = await asyncio.wait_for(listening, 10)
            assert pushed["id"] == fresh["id"] and pushed["cursor"] > last_cursor
    finally:
        relay.stop()


async def test_restore_refuses_a_running_relay_a_missing_key_and_a_damaged_backup(
        tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "base")
    out = tmp_path / "backup"
    try:
        result = relay_cli(relay, "backup", "--out", str(out))
        assert result.returncode == 0, result.stderr
        again = relay_cli(relay, "backup", "--out", str(out))
        assert again.returncode == 1 and "is not empty" in again.stderr
        db_before = relay.db_path.read_bytes()
        running = relay_cli(relay, "restore", str(out))
        assert running.returncode == 1
        assert "a relay is running" in running.stderr and "stop it" in running.stderr
        assert "Traceback" not in running.stderr
    finally:
        relay.stop()
    assert relay.db_path.read_bytes()[:100] == db_before[:100]
    key = (relay.dir / "relay.key").read_bytes()
    (relay.dir / "relay.key").unlink()
    missing = relay_cli(relay, "restore", str(out))
    assert missing.returncode == 1 and "offline copy" in missing.stderr
    (relay.dir / "relay.key").write_bytes(key)
    with (out / "relay.db").open("r+b") as fh:
        fh.seek(5000)
        fh.write(b"\xff" * 16)
    damaged = relay_cli(relay, "restore", str(out))
    assert damaged.returncode == 1 and "does not match its manifest" in damaged.stderr
    assert not list(relay.dir.glob("replaced-*"))  # nothing was moved
