"""The PostgreSQL store under concurrent writers: two stores (two pools, as two relay
processes have) on one real database race each other, and every invariant holds."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.errors import QuotaExceeded
from relay.store import LogAppend, ReplayedSend, SendBatch, StoredMessage
from tests.relay.test_store_both import NOW, batch
from tests.support.actors import rand
from tests.support.pgcluster import PgCluster

pytest.importorskip("asyncpg")  # (the pg_cluster fixture says why, and fails under CI)

from relay.store import postgres
from relay.store.postgres import PostgresStore, PostgresUnavailable


@pytest.fixture
async def url(pg_cluster: PgCluster) -> str:
    return pg_cluster.new_database()


@pytest.fixture
async def pair(url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, opened at the same time (both try to migrate)."""
    one, two = PostgresStore(url, pool_size=8), PostgresStore(url, pool_size=8)
    await asyncio.gather(one.open(), two.open())
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()


async def test_one_idempotency_key_from_two_processes_is_stored_once(
        pair: tuple[PostgresStore, PostgresStore]) -> None:
    one = pair[0]
    sends = [batch() for _ in range(40)]
    outcomes = await asyncio.gather(*(store.store_send(s) for s in sends for store in pair))
    for first, second in zip(outcomes[::2], outcomes[1::2], strict=True):
        kinds = sorted(type(o).__name__ for o in (first, second))
        assert kinds == ["ReplayedSend", "list"]
    assert len(await one.list_messages("org-b", 0, 1000, NOW)) == 40
    assert all(isinstance(o, ReplayedSend | list) for o in outcomes)


async def test_the_last_of_n_acks_from_either_process_deletes_once(
        pair: tuple[PostgresStore, PostgresStore]) -> None:
    staff = tuple(f"org-b/s{i}" for i in range(12))
    stored = await pair[0].store_send(batch(recipients=staff))
    message = stored[0]
    results = await asyncio.gather(*(
        pair[i % 2].acknowledge("org-b", message.id, s, NOW, 50) for i, s in enumerate(staff)))
    assert results.count(True) == 1 and results.count(False) == 11
    rows = await pair[1].fetch("SELECT state, acknowledged, recipients FROM status_tombstones")
    assert [tuple(r) for r in rows] == [("delivered", 12, 12)]


async def test_a_challenge_is_taken_by_one_process_only(
        pair: tuple[PostgresStore, PostgresStore]) -> None:
    nonces = [rand(32) for _ in range(20)]
    for nonce in nonces:
        await pair[0].add_challenge(nonce, "org-a/ann", NOW + 60)
    taken = await asyncio.gather(*(s.take_challenge(n) for n in nonces for s in pair))
    for first, second in zip(taken[::2], taken[1::2], strict=True):
        assert (first is None) != (second is None)


async def test_the_quota_holds_against_two_processes(
        pair: tuple[PostgresStore, PostgresStore]) -> None:
    sends = [batch(size=100, quota=1000) for _ in range(30)]
    outcomes = await asyncio.gather(*(pair[i % 2].store_send(s) for i, s in enumerate(sends)),
                                    return_exceptions=True)
    assert sum(isinstance(o, list) for o in outcomes) == 10
    assert all(isinstance(o, list | QuotaExceeded) for o in outcomes)
    assert (await pair[0].fetch("SELECT bytes FROM mailbox_usage"))[0][0] == 1000
    rows = await pair[0].fetch("SELECT coalesce(sum(size), 0) FROM messages")
    assert rows[0][0] == 1000


async def test_a_reader_catching_up_by_cursor_misses_nothing_from_concurrent_writers(
        pair: tuple[PostgresStore, PostgresStore]) -> None:
    # Cursors come from one sequence: without the per-org lock a later cursor could commit
    # before an earlier one and a reader polling "after my last cursor" would skip it.
    written: list[bytes] = []
    done = asyncio.Event()

    async def writer(store: PostgresStore) -> None:
        for _ in range(60):
            stored = await store.store_send(batch(messages=2))
            written.extend(m.id for m in stored)

    async def reader() -> list[StoredMessage]:
        seen: list[StoredMessage] = []
        last = 0
        while True:
            finished = done.is_set()
            page = await pair[0].list_messages("org-b", last, 1000, NOW)
            seen += page
            if page:
                last = page[-1].cursor
            if finished and not page:
                return seen
            await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(pair[i % 2]) for i in range(6)))
    done.set()
    seen = await reading
    assert sorted(m.id for m in seen) == sorted(written)
    assert len(seen) == 6 * 60 * 2


async def test_a_removal_racing_sends_from_another_process_leaves_no_delivery_behind(
        pair: tuple[PostgresStore, PostgresStore]) -> None:
    # The sending process has not heard of the removal (no ``removed`` set): the database
    # alone must keep the removed colleague out of every delivery written after it.
    one, two = pair

    async def sends() -> None:
        for _ in range(40):
            await two.store_send(batch(recipients=("org-b/ann", "org-b/bob")))

    async def removal() -> None:
        await asyncio.sleep(0.01)
        await one.append_log(LogAppend(index=0, record=b"r", hash=b"h",
                                       staff_removed="org-b/bob", status_grace=50, now=NOW))

    await asyncio.gather(sends(), sends(), removal())
    left = await one.fetch("SELECT count(*) FROM deliveries WHERE staff_id = 'org-b/bob'")
    assert left[0][0] == 0
    wrong = await one.fetch(
        "SELECT count(*) FROM messages m WHERE recipients <> "
        "(SELECT count(*) FROM deliveries d WHERE d.message = m.cursor) + acknowledged")
    assert wrong[0][0] == 0


async def test_a_revocation_racing_sends_leaves_no_ciphertext_for_the_revoked_org(
        pair: tuple[PostgresStore, PostgresStore]) -> None:
    one, two = pair

    async def sends() -> int:
        stored = 0
        for _ in range(40):
            try:
                await two.store_send(batch())
                stored += 1
            except Exception:  # refused once the revocation committed
                pass
        return stored

    async def revocation() -> None:
        await asyncio.sleep(0.01)
        await one.append_log(LogAppend(index=0, record=b"r", hash=b"h",
                                       org_revoked="org-b", status_grace=50, now=NOW))

    await asyncio.gather(sends(), sends(), revocation())
    assert await one.list_messages("org-b", 0, 1000, NOW) == []
    readmit = LogAppend(index=1, record=b"r", hash=b"h", org_admitted="org-b")
    await one.append_log(readmit)
    assert isinstance(await two.store_send(batch()), list)


async def test_a_server_that_could_lose_commits_is_refused(url: str) -> None:
    store = PostgresStore(url + "&synchronous_commit=off")
    with pytest.raises(PostgresUnavailable, match="synchronous_commit"):
        await store.open()


async def test_schema_versions_and_a_newer_database_is_refused(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PostgresStore(url)
    await store.open()
    shipped = postgres.schema_files("schema_pg")
    assert (await store.fetch("SELECT version FROM schema_version"))[0][0] == len(shipped)
    await store.close()
    extra = "CREATE TABLE upgrade_probe (x INTEGER);"
    upgraded = [*shipped, (len(shipped) + 1, extra)]
    monkeypatch.setattr(postgres, "schema_files", lambda _folder: upgraded)
    store = PostgresStore(url)
    await store.open()
    assert (await store.fetch("SELECT count(*) FROM upgrade_probe"))[0][0] == 0
    await store.close()
    monkeypatch.setattr(postgres, "schema_files", lambda _folder: shipped)
    with pytest.raises(PostgresUnavailable, match="newer than this relay"):
        await PostgresStore(url).open()


async def test_purge_vacuums_so_deleted_ciphertext_is_pruned(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    try:
        for _ in range(20):
            await store.store_send(batch(size=4000, expires=NOW + 5))
        await store.purge(NOW + 10, 50)
        # The statistics views lag the server: a backend flushes its counts at most once a
        # second, and later still when the machine is busy. Wait up to 20 s for them.
        for _ in range(200):
            rows = await store.fetch(
                "SELECT n_dead_tup, last_vacuum IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname = 'messages'")
            if rows[0][1] and rows[0][0] == 0:
                break
            await asyncio.sleep(0.1)
        assert rows[0][1] is True  # vacuumed by the purge itself
        assert rows[0][0] == 0
    finally:
        await store.close()


async def test_expired_ciphertext_leaves_the_table_files_after_a_full_vacuum(url: str) -> None:
    # What someone seizing the disk would read: the messages table and its TOAST table
    # (envelopes of several KB live there), after a purge and a checkpoint.
    store = PostgresStore(url)
    await store.open()
    try:
        gone = [batch(size=size, expires=NOW + 5) for size in (500, 6000)]
        kept = [batch(size=size, expires=NOW + 5000) for size in (500, 6000)]
        for sent in (*gone, *kept):
            await store.store_send(sent)
        files = (await store.fetch(
            "SELECT current_setting('data_directory') || '/' || pg_relation_filepath(c.oid), "
            "current_setting('data_directory') || '/' || pg_relation_filepath(c.reltoastrelid) "
            "FROM pg_class c WHERE relname = 'messages'"))[0]

        async def on_disk() -> bytes:
            await store.fetch("CHECKPOINT")
            return b"".join(Path(f).read_bytes() for f in files)

        def pieces(sent: SendBatch) -> list[bytes]:
            return [sent.messages[0].sealed[i:i + 32] for i in range(0, 400, 100)]

        raw = await on_disk()
        assert all(p in raw for sent in (*gone, *kept) for p in pieces(sent))  # can fail
        await store.purge(NOW + 10, 50)
        # A plain VACUUM (run by the purge) prunes the rows, but PostgreSQL does not
        # overwrite freed space: dead TOAST chunks may stay until reused. VACUUM FULL
        # (``kok relay purge --full``) rewrites the tables, and then nothing is left.
        await store.vacuum(full=True)
        files = (await store.fetch(
            "SELECT current_setting('data_directory') || '/' || pg_relation_filepath(c.oid), "
            "current_setting('data_directory') || '/' || pg_relation_filepath(c.reltoastrelid) "
            "FROM pg_class c WHERE relname = 'messages'"))[0]  # new files after the rewrite
        raw = await on_disk()
        assert not any(p in raw for sent in gone for p in pieces(sent))
        assert all(p in raw for sent in kept for p in pieces(sent))
    finally:
        await store.close()


def test_the_batch_helper_makes_distinct_sends() -> None:
    first, second = batch(), batch()
    assert first.key_hash != second.key_hash
    assert dataclasses.replace(first).key_hash == first.key_hash
