"""``kok relay migrate --to postgresql://...`` moves a populated SQLite relay, nothing lost.

A real relay on SQLite gets a key log with a removal and a revocation, sessions, grants of
two epochs, pending and half-acknowledged messages, tombstones of delivered and retracted
ones, idempotency records and a complete file drop. It is stopped, migrated, and started
again on PostgreSQL: every table holds the same rows, and the relay answers as before
(same log head, same mailbox, the old session works, a retry is recognised, new cursors
continue after the old ones, the drop downloads).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from typing import Any

import aiohttp

from relay.store.migrate import NOT_COPIED
from tests.support.actors import Api, envelope, rand, revoke
from tests.support.pgcluster import PgCluster
from tests.support.relayproc import REPO, RelayProcess

from .conftest import db_rows
from .test_drops import create, get


def _migrate(relay: RelayProcess, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", "migrate", "--dir", str(relay.dir),
                           "--to", url], capture_output=True, text=True, cwd=REPO,
                          timeout=120, check=False)


def _sqlite_tables(relay: RelayProcess) -> dict[str, list[str]]:
    """Every table of the SQLite file with all its columns, read from the file itself (not
    from the migration's own list, so a table or column it forgets makes this test fail),
    except the few the migration documents as deliberately not copied."""
    with sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: [c[1] for c in db.execute(f"PRAGMA table_info({name})")]
                for name in names if name not in NOT_COPIED}


def _sqlite_rows(relay: RelayProcess,
                 tables: dict[str, list[str]]) -> dict[str, set[tuple[Any, ...]]]:
    # SQLite's 0/1 equal PostgreSQL's booleans in a set (True == 1, same hash).
    with sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True) as db:
        return {table: set(db.execute(f"SELECT {', '.join(columns)} FROM {table}"))  # noqa: S608
                for table, columns in tables.items()}


async def _pg_rows(relay: RelayProcess,
                   tables: dict[str, list[str]]) -> dict[str, set[tuple[Any, ...]]]:
    return {table: set(await db_rows(
                relay, f"SELECT {', '.join(columns)} FROM {table}"))  # noqa: S608
            for table, columns in tables.items()}


async def test_migrate_moves_a_populated_relay_with_nothing_lost(
        pg_cluster: PgCluster, tmp_path: Any) -> None:
    relay = RelayProcess.start(tmp_path / "m")
    url = pg_cluster.new_database()
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            a = await api.setup_org(relay.network_key, "mig-a", ("admin", "alice", "leaver"))
            b = await api.setup_org(relay.network_key, "mig-b", ("admin", "bob"))
            c = await api.setup_org(relay.network_key, "mig-c", ("admin",))
            alice = a.staff["mig-a/alice"]
            token = await api.login(alice)
            bob_token = await api.login(b.staff["mig-b/bob"])
            key = rand(16)
            envs = [envelope(alice, b, f"note {i}") for i in range(3)]
            first = await api.send(token, envs[:1], key=key)
            await api.send(token, envs[1:2])
            retracted = await api.send(token, envs[2:])
            await api.ok("POST", "/v1/retract",
                         {"token": retracted["messages"][0]["status_token"]})
            delivered = await api.send(token, [envelope(alice, b, "read by both")])
            admin_b = await api.login(b.staff["mig-b/admin"])
            for t in (bob_token, admin_b):
                await api.ok("POST", f"/v1/messages/{delivered['messages'][0]['id']}/ack",
                             token=t)
            await api.ok("POST", f"/v1/messages/{first['messages'][0]['id']}/ack",
                         token=bob_token)  # half acknowledged
            await api.ok("POST", "/v1/messages/read",  # a receipt read, one not
                         {"ids": [delivered["messages"][0]["id"]]}, token=bob_token)
            await api.send(token, [envelope(alice, c)])
            await api.append(a.remove("mig-a/leaver"))
            await api.append(revoke(relay.network_key, "mig-c"))
            await api.append(a.new_epoch())  # epoch 1 grants of mig-a now retire
            grants = [g for g in a.grants() if g["staff_id"] != "mig-a/leaver"]
            await api.ok("PUT", f"/v1/grants/mig-a/{a.epoch}", {"grants": grants},
                         token=await api.login(a.staff["mig-a/admin"]), expect=201)
            data = os.urandom(50_000)
            drop = await create(api, token, len(data), ["mig-b"])
            await drop.patch(0, data)
            await drop.complete()
            head = await api.ok("GET", "/v1/log/head")
            inbox = await api.ok("GET", "/v1/messages", token=bob_token)
        relay.stop()
        tables = _sqlite_tables(relay)
        before = _sqlite_rows(relay, tables)
        assert before["messages"] and before["deliveries"] and before["status_tombstones"]
        assert before["drops"] and before["grants"] and before["sessions"]
        # per device: who still has to fetch, and when each device last logged in
        assert before["device_deliveries"] and before["drop_device_deliveries"]
        assert before["device_seen"] and before["receipts"]
        assert "device" in tables["sessions"] and "device" in tables["grants"]

        done = _migrate(relay, url)
        assert done.returncode == 0, done.stderr
        assert "Copied:" in done.stdout
        relay.env["KOK_RELAY_STORE_URL"] = url
        assert await _pg_rows(relay, tables) == before
        again = _migrate(relay, url)  # a second time: refused, nothing changed
        assert again.returncode != 0 and "already holds relay data" in again.stderr
        removed = await db_rows(relay, "SELECT staff_id FROM removed_staff")
        revoked = await db_rows(relay, "SELECT org_id FROM revoked_orgs")
        assert (removed, revoked) == ([("mig-a/leaver",)], [("mig-c",)])

        relay.restart()  # now on PostgreSQL
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            now_head = await api.ok("GET", "/v1/log/head")
            assert (now_head["size"], now_head["hash"]) == (head["size"], head["hash"])
            assert await api.ok("GET", "/v1/messages", token=bob_token) == inbox  # old session
            replay = await api.send(token, envs[:1], key=key)
            assert replay["messages"] == first["messages"]
            fresh = await api.send(token, [envelope(alice, b, "after the move")])
            listed = (await api.ok("GET", "/v1/messages", token=bob_token))["messages"]
            assert listed[-1]["id"] == fresh["messages"][0]["id"]
            assert listed[-1]["cursor"] > max(m["cursor"] for m in inbox["messages"])
            status, body, _ = await get(api, drop.id, bob_token)
            assert status == 200 and body == data
    finally:
        relay.stop()


def test_migrate_refuses_what_it_cannot_do(tmp_path: Any) -> None:
    relay = RelayProcess.start(tmp_path / "r")
    relay.stop()
    done = _migrate(relay, "mysql://nowhere/x")
    assert done.returncode != 0 and "--to must be a postgresql:// URL" in done.stderr
    # the privacy report reads the SQLite file: on a PostgreSQL relay it says so, rather
    # than reporting on a file that is not the store
    report = subprocess.run(
        [sys.executable, "-m", "relay", "privacy", "report", "--dir", str(relay.dir)],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        env={**os.environ, "KOK_RELAY_STORE_URL": "postgresql://kok@nowhere/kok"})
    assert report.returncode != 0 and "rows are in PostgreSQL" in report.stderr


def test_a_table_the_migration_does_not_know_stops_it(tmp_path: Any) -> None:
    from relay.store.migrate import MigrationError, plan

    db = sqlite3.connect(tmp_path / "relay.db")
    db.execute("CREATE TABLE log_entries (idx INTEGER, record BLOB, hash BLOB)")
    db.execute("CREATE TABLE newer_feature (x INTEGER)")
    try:
        plan(db)
    except MigrationError as refused:
        assert "newer_feature" in str(refused)
    else:
        raise AssertionError("a table nobody copies was left behind silently")
    db.execute("DROP TABLE newer_feature")
    assert plan(db) == {"log_entries": ("idx", "record", "hash")}
    db.close()
