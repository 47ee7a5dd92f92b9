"""Upgrades: a relay directory written by schema version 2 is served in full by today's code.

``fixtures/relay_schema2/`` was made by ``fixtures/make_relay_schema2.py`` (checked in beside
it) with the relay of that version. The test copies it, moves its times forward by the
fixture's age (so the TTLs it was written with have not passed; done on the old schema,
before the new code opens it), starts a real relay process on it and checks that every
stored item is still served byte for byte: the key log and its head, the logins of the
staff it knows, the mailbox, the grants, a status token, a retraction and the file drop.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp

from protocol import SigningKeyPair, b64decode
from tests.ops.opsworld import sha256, spawn_existing
from tests.support.actors import Api, Staff

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "relay_schema2"
# Every column of schema 2 that holds a point in time (seconds UTC).
TIME_COLUMNS = {
    "messages": ("received", "expires"),
    "idempotency": ("received", "expires"),
    "status_tombstones": ("expires",),
    "drops": ("expires", "idle_expires"),
    "grants": ("expires",),
}


def age_fixture(db_path: Path, created: int) -> None:
    """Shift every stored time by the fixture's age, as if it had been written just now."""
    shift = max(0, int(time.time()) - created)
    db = sqlite3.connect(db_path)
    try:
        for table, columns in TIME_COLUMNS.items():
            sets = ", ".join(f"{c} = {c} + {shift}" for c in columns)
            db.execute(f"UPDATE {table} SET {sets}")  # noqa: S608 (fixed names)
        db.commit()
    finally:
        db.close()


def staff_of(expected: dict[str, Any], staff_id: str) -> Staff:
    seed = b64decode(expected["staff_seeds"][staff_id])
    return Staff(staff_id, SigningKeyPair.from_seed(seed), None)  # type: ignore[arg-type]


async def test_a_schema2_relay_directory_is_served_in_full_by_the_current_code(
        tmp_path: Path) -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())
    shutil.copytree(FIXTURE / "relay", tmp_path / "relay")
    age_fixture(tmp_path / "relay" / "relay.db", expected["created"])
    relay = spawn_existing(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            log = await api.ok("GET", "/v1/log?after=0&limit=5000")
            assert len(log["entries"]) == expected["log_size"]
            assert log["head"]["hash"] == expected["log_head_hash"]
            # every staff member of the fixture can still log in
            tokens = {sid: await api.login(staff_of(expected, sid))
                      for sid in expected["staff_seeds"]}
            bob = tokens[expected["recipient"]]
            inbox = (await api.ok("GET", "/v1/messages?after=0&limit=1000", token=bob))["messages"]
            keep = ("id", "cursor", "to_org", "epoch", "sealed")
            assert [{k: m[k] for k in keep} for m in inbox] == [
                {k: m[k] for k in keep} for m in expected["messages"]]
            assert len(inbox) == 3
            assert await api.ok("GET", "/v1/grants", token=bob) == expected["grants"]
            status = await api.ok("POST", "/v1/status",
                                  {"token": expected["status"]["status_token"]})
            # Schema 4 added read reports: the old message has been read by nobody.
            assert status.pop("read") == 0
            assert status == expected["status"]["answer"]
            assert status["acknowledged"] == 1 and status["of"] == 2
            retracted = await api.ok("POST", "/v1/status", {"token": expected["retracted"]})
            assert retracted["state"] == "retracted"
            drop = expected["drop"]
            async with http.get(f"{relay.url}/v1/drops/{drop['id']}",
                                headers={"Authorization": f"Bearer {bob}"}) as resp:
                assert resp.status == 200
                data = await resp.read()
            assert (len(data), sha256(data)) == (drop["size"], drop["sha256"])
            # and the upgraded store keeps working: the recipient acknowledges everything
            for message in inbox:
                await api.ok("POST", f"/v1/messages/{message['id']}/ack", token=bob)
    finally:
        relay.stop()
    db = sqlite3.connect(tmp_path / "relay" / "relay.db")
    try:
        version = db.execute("SELECT version FROM schema_version").fetchone()[0]
    finally:
        db.close()
    shipped = sorted((Path(__file__).resolve().parents[2] / "relay" / "store" / "schema")
                     .glob("[0-9][0-9][0-9]_*.sql"))
    assert version == int(shipped[-1].name[:3]) >= expected["schema_version"]
    assert b64decode(expected["messages"][0]["sealed"])  # the fixture holds real ciphertext
