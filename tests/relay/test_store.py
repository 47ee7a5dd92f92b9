"""The SQLite store on its own: pragmas, schema upgrades, group commit, isolation of failures."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from relay.errors import IdempotencyConflict, QuotaExceeded, RecipientUnknown
from relay.store import NewDrop, NewMessage, ReplayedSend, SendBatch, SqliteStore
from relay.store import sqlite as sqlite_store
from tests.support.actors import rand


def _batch(to_org: str = "org-b", size: int = 100, quota: int = 10**9,
           recipients: tuple[str, ...] = ("org-b/ann",)) -> SendBatch:
    message = NewMessage(id=rand(16), to_org=to_org, epoch=1, sealed=rand(size),
                         status_hash=rand(32), recipients=recipients)
    return SendBatch(key_hash=rand(32), request_hash=rand(32), received=1000, expires=2000,
                     messages=(message,), org_quota=quota)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = SqliteStore(tmp_path / "relay.db")
    await db.open()
    yield db
    await db.close()


async def test_durability_pragmas_are_on(store: SqliteStore) -> None:
    assert store._writer is not None
    values = {}
    for pragma in ("journal_mode", "synchronous", "secure_delete", "foreign_keys"):
        rows = await store._writer.execute_fetchall(f"PRAGMA {pragma}")
        values[pragma] = next(iter(rows))[0]
    assert values == {"journal_mode": "wal", "synchronous": 2, "secure_delete": 1,
                      "foreign_keys": 1}


async def test_concurrent_writes_share_commits_and_all_are_durable(store: SqliteStore,
                                                                   tmp_path: Path) -> None:
    results = await asyncio.gather(*(store.store_send(_batch()) for _ in range(200)))
    assert len(results) == 200
    assert store.jobs_done == 200
    assert store.batches < 100  # group commit: far fewer transactions than writes
    # every answered write is visible to an independent connection, i.e. committed
    with sqlite3.connect(tmp_path / "relay.db") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 200
        assert db.execute("SELECT bytes, messages FROM mailbox_usage").fetchone() == (20000, 200)


async def test_a_failing_job_is_rolled_back_alone(store: SqliteStore, tmp_path: Path) -> None:
    await store.store_send(_batch(size=900, quota=1000))
    outcomes = await asyncio.gather(
        store.store_send(_batch(to_org="org-c")),
        store.store_send(_batch(size=200, quota=1000)),  # over quota: refused
        store.store_send(_batch(to_org="org-d")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], QuotaExceeded)
    assert not isinstance(outcomes[0], Exception) and not isinstance(outcomes[2], Exception)
    with sqlite3.connect(tmp_path / "relay.db") as db:
        orgs = sorted(r[0] for r in db.execute("SELECT to_org FROM messages"))
        deliveries = db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
    assert orgs == ["org-b", "org-c", "org-d"]
    assert deliveries == 3  # nothing of the refused send was left behind


async def test_schema_is_versioned_and_upgraded_in_order(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "relay.db"
    first = SqliteStore(path)
    await first.open()
    await first.close()
    shipped = sqlite_store.schema_files()
    latest = len(shipped)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(latest,)]
    extra = "-- test upgrade\nCREATE TABLE upgrade_probe (x INTEGER); -- a probe column\n"
    monkeypatch.setattr(sqlite_store, "schema_files", lambda: [*shipped, (latest + 1, extra)])
    second = SqliteStore(path)
    await second.open()
    await second.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(latest + 1,)]
        assert db.execute("SELECT count(*) FROM upgrade_probe").fetchone() == (0,)
    monkeypatch.setattr(sqlite_store, "schema_files", lambda: shipped)
    newer = SqliteStore(path)
    with pytest.raises(RuntimeError, match="newer than this relay"):
        await newer.open()
    await newer.close()


def test_every_schema_column_has_a_comment() -> None:
    for _, sql in sqlite_store.schema_files():
        inside = False
        for line in sql.splitlines():
            stripped = line.strip()
            if stripped.startswith("CREATE TABLE"):
                inside = True
                continue
            if inside and stripped.startswith(")"):
                inside = False
                continue
            constraint = stripped.startswith(("PRIMARY KEY", "UNIQUE", "FOREIGN KEY", "CHECK"))
            if inside and stripped and not stripped.startswith("--") and not constraint:
                assert "--" in stripped, f"column without a comment: {stripped}"


async def test_an_unexpected_failure_after_a_write_loses_only_that_job(store: SqliteStore,
                                                                       tmp_path: Path) -> None:
    def good(tag: str):  # type: ignore[no-untyped-def]
        return lambda db: db.execute("INSERT INTO challenges VALUES (?, 'a/b', 9)",
                                     (tag.encode(),))

    def broken(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO challenges VALUES (x'00', 'a/b', 9)")
        raise ValueError("half done")

    batches = store.batches
    outcomes = await asyncio.gather(store._write(good("one")), store._write(broken),
                                    store._write(good("two")), return_exceptions=True)
    assert store.batches == batches + 1  # all three shared one transaction
    assert isinstance(outcomes[1], ValueError)
    with sqlite3.connect(tmp_path / "relay.db") as db:
        rows = sorted(bytes(r[0]) for r in db.execute("SELECT nonce_hash FROM challenges"))
    assert rows == [b"one", b"two"]  # the broken job's own write was undone


async def test_staff_removed_before_the_write_do_not_count_as_recipients(
        store: SqliteStore, tmp_path: Path) -> None:
    removed = {"org-b/bob"}
    batch = _batch(recipients=("org-b/ann", "org-b/bob"))
    batch = SendBatch(**{**batch.__dict__, "removed": removed})
    await store.store_send(batch)
    with sqlite3.connect(tmp_path / "relay.db") as db:
        assert db.execute("SELECT recipients FROM messages").fetchone() == (1,)
        assert db.execute("SELECT staff_id FROM deliveries").fetchall() == [("org-b/ann",)]


async def test_a_send_to_an_org_revoked_before_the_write_is_refused_and_stores_nothing(
        store: SqliteStore, tmp_path: Path) -> None:
    # The service checked the recipient before the revocation committed; the write runs after.
    batch = SendBatch(**{**_batch().__dict__, "revoked": {"org-b"}})
    with pytest.raises(RecipientUnknown):
        await store.store_send(batch)
    with sqlite3.connect(tmp_path / "relay.db") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM idempotency").fetchone() == (0,)
    assert isinstance(await store.store_send(_batch()), list)  # others are unaffected


async def test_sends_in_one_batch_see_each_other(store: SqliteStore, tmp_path: Path) -> None:
    first = _batch(size=600, quota=1000)
    retry = SendBatch(**{**first.__dict__})
    conflict = SendBatch(**{**first.__dict__, "request_hash": rand(32)})
    too_much = _batch(size=600, quota=1000)
    batches = store.batches
    outcomes = await asyncio.gather(
        store.store_send(first), store.store_send(retry), store.store_send(conflict),
        store.store_send(too_much), return_exceptions=True)
    assert store.batches == batches + 1
    assert isinstance(outcomes[0], list) and len(outcomes[0]) == 1
    assert outcomes[1] == ReplayedSend(received=1000, expires=2000)
    assert isinstance(outcomes[2], IdempotencyConflict)
    assert isinstance(outcomes[3], QuotaExceeded)  # counts the bytes accepted just before
    with sqlite3.connect(tmp_path / "relay.db") as db:
        assert db.execute("SELECT count(*), sum(size) FROM messages").fetchone() == (1, 600)
        assert db.execute("SELECT bytes FROM mailbox_usage").fetchone() == (600,)


async def test_a_drop_for_an_org_revoked_before_the_write_is_refused(
        store: SqliteStore, tmp_path: Path) -> None:
    drop = NewDrop(id=rand(16), size=100, token_hash=rand(32), expires=2000, idle_expires=2000,
                   orgs=("org-a", "org-b"), org_quota=10**9, revoked={"org-b"})
    with pytest.raises(RecipientUnknown):
        await store.create_drop(drop)
    with sqlite3.connect(tmp_path / "relay.db") as db:
        assert db.execute("SELECT count(*) FROM drops").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM drop_orgs").fetchone() == (0,)


async def test_a_refused_send_in_a_batch_redone_after_a_failure_is_still_refused(
        store: SqliteStore, tmp_path: Path) -> None:
    # A broken job makes the writer redo the batch job by job; a send refused in that
    # second pass must be answered with its refusal raised, and the others still stored.
    await store.store_send(_batch(size=900, quota=1000))

    def broken(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO challenges VALUES (x'00', 'a/b', 9)")
        raise ValueError("half done")

    async def outcome(call):  # type: ignore[no-untyped-def]
        try:
            return "answered", await call
        except Exception as exc:
            return "raised", exc

    batches = store.batches
    results = await asyncio.gather(
        outcome(store.store_send(_batch(to_org="org-c"))),
        outcome(store._write(broken)),
        outcome(store.store_send(_batch(size=200, quota=1000))),  # over quota: refused
        outcome(store.store_send(_batch(to_org="org-d"))))
    assert store.batches == batches + 1
    assert [how for how, _ in results] == ["answered", "raised", "raised", "answered"]
    assert isinstance(results[1][1], ValueError)
    assert isinstance(results[2][1], QuotaExceeded)
    assert all(isinstance(value, list) and len(value) == 1
               for value in (results[0][1], results[3][1]))
    with sqlite3.connect(tmp_path / "relay.db") as db:
        orgs = sorted(r[0] for r in db.execute("SELECT to_org FROM messages"))
        assert orgs == ["org-b", "org-c", "org-d"]
        assert db.execute("SELECT count(*) FROM challenges").fetchone() == (0,)


async def test_the_wal_starts_afresh_under_sustained_writes(tmp_path: Path) -> None:
    """A background checkpoint that cannot copy everything (here: a reader's snapshot; under
    load: commits landing meanwhile) must not let the WAL grow for ever: once it is longer
    than ``wal_reset_frames`` the writer copies the rest itself and the WAL starts again."""
    db = SqliteStore(tmp_path / "relay.db", wal_reset_frames=20, checkpoint_interval=3600)
    await db.open()
    try:
        for _ in range(10):
            await db.store_send(_batch(size=3000))
        reader = sqlite3.connect(tmp_path / "relay.db", isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()  # holds its snapshot
        for _ in range(10):
            await db.store_send(_batch(size=3000))
        await db._background_checkpoint()  # copies only what the reader's snapshot allows
        reader.execute("COMMIT")
        reader.close()
        long_wal = _wal_frames(tmp_path / "relay.db-wal")
        assert long_wal > 20
        for _ in range(3):
            await db.store_send(_batch(size=3000))
        assert _wal_frames(tmp_path / "relay.db-wal") < long_wal / 2
    finally:
        await db.close()


def _wal_frames(path: Path) -> int:
    """Frames of the WAL's current generation (those carrying the salts of its header):
    read from the file, as any checkpoint call would change what it measures."""
    data = path.read_bytes()
    page_size, salts = int.from_bytes(data[8:12], "big"), data[16:24]
    count, offset = 0, 32
    while offset + 24 <= len(data) and data[offset + 8:offset + 16] == salts:
        count, offset = count + 1, offset + 24 + page_size
    return count
