"""Expired data is deleted and its bytes overwritten: nothing left in the raw database file."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from protocol import b64decode
from tests.support.actors import Api, envelope
from tests.support.relayproc import RelayProcess


def _pieces(sealed: bytes) -> list[bytes]:
    """Distinct 32-byte runs of a ciphertext, to search for in the raw file."""
    return [sealed[i : i + 32] for i in range(0, len(sealed) - 32, 200)]


async def _send_big(api: Api, relay: RelayProcess, ttl: int) -> tuple[bytes, str]:
    a = await api.setup_org(relay.network_key, "exp-a", ("admin",))
    b = await api.setup_org(relay.network_key, "exp-b", ("admin",))
    sender = a.staff["exp-a/admin"]
    env = envelope(sender, b, "case notes " * 400)  # several KB: spills to overflow pages
    sent = await api.send(await api.login(sender), [env], ttl=ttl)
    return b64decode(env["sealed"]), sent["messages"][0]["status_token"]


async def test_expired_messages_leave_no_bytes_in_the_database(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "r", env={"KOK_RELAY_EXPIRY_INTERVAL": "1"})
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            sealed, status_token = await _send_big(api, relay, ttl=2)
            raw = relay.raw_database()
            assert all(piece in raw for piece in _pieces(sealed))  # the test can fail
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                state = await api.ok("POST", "/v1/status", {"token": status_token})
                raw = relay.raw_database()
                # the log line comes after the deletion and the WAL truncation: wait for it
                purged = [e for e in relay.log_events() if e.get("event") == "purged"]
                if (state["state"] == "expired" and purged
                        and not any(p in raw for p in _pieces(sealed))):
                    break
            assert state == {"state": "expired", "acknowledged": 0, "of": 1, "read": 0}
            assert not any(piece in raw for piece in _pieces(sealed))
            assert purged and purged[-1]["messages"] >= 1
    finally:
        relay.stop()


async def test_relay_purge_command_on_a_stopped_relay(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "r", env={"KOK_RELAY_EXPIRY_INTERVAL": "3600"})
    try:
        async with aiohttp.ClientSession() as http:
            sealed, _ = await _send_big(Api(relay.url, http), relay, ttl=1)
    finally:
        relay.stop()
    assert any(piece in relay.raw_database() for piece in _pieces(sealed))
    await asyncio.sleep(1.2)
    done = subprocess.run([sys.executable, "-m", "relay", "purge", "--dir", str(relay.dir),
                           "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert '"messages": 1' in done.stdout
    assert not any(piece in relay.raw_database() for piece in _pieces(sealed))
