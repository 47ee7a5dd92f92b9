"""Store answers, run on SQLite and on a real PostgreSQL server alike (beside the
concurrency contract in test_store_contract.py, which runs on both too).

Every test here gets ``any_store`` (parametrised: ``sqlite`` and ``postgresql``) and only
uses the ``RelayStore`` interface, so both implementations give the same answers:
idempotency, k-of-n deletion, single-use challenges, quotas, retraction, removal and
revocation, the key log, purge and drops.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.errors import (
    DropQuotaExceeded,
    IdempotencyConflict,
    NotRetractable,
    QuotaExceeded,
    RecipientUnknown,
)
from relay.store import (
    LogAppend,
    LogIndexTaken,
    MessageStatus,
    NewDrop,
    NewMessage,
    ReplayedSend,
    SendBatch,
    SessionRow,
    SqliteStore,
)
from tests.support.actors import rand
from tests.support.pgcluster import PgCluster

NOW = 10_000


def batch(to_org: str = "org-b", size: int = 100, quota: int = 10**9,
          recipients: tuple[str, ...] = ("org-b/ann",), expires: int = NOW + 1000,
          messages: int = 1) -> SendBatch:
    made = tuple(NewMessage(id=rand(16), to_org=to_org, epoch=1, sealed=rand(size),
                            status_hash=rand(32), recipients=recipients)
                 for _ in range(messages))
    return SendBatch(key_hash=rand(32), request_hash=rand(32), received=NOW, expires=expires,
                     messages=made, org_quota=quota)


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "sqlite":
        store: Any = SqliteStore(tmp_path / "relay.db")
    else:
        from relay.store.postgres import PostgresStore

        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        store = PostgresStore(cluster.new_database())
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_a_send_is_listed_fetched_and_deleted_after_k_of_n_acks(any_store: Any) -> None:
    sent = batch(recipients=("org-b/ann", "org-b/bob"), messages=2)
    stored = await any_store.store_send(sent)
    assert [m.id for m in stored] == [m.id for m in sent.messages]
    assert stored[0].cursor < stored[1].cursor
    listed = await any_store.list_messages("org-b", 0, 10, NOW)
    assert [m.id for m in listed] == [m.id for m in sent.messages]
    assert listed[0].sealed == sent.messages[0].sealed
    assert await any_store.list_messages("org-b", stored[0].cursor, 10, NOW) == listed[1:]
    assert await any_store.get_message("org-c", stored[0].id, NOW) is None  # not yours
    assert (await any_store.stats(NOW)).message_bytes == 200
    first = stored[0]
    assert await any_store.acknowledge("org-b", first.id, "org-b/ann", NOW, 50) is False
    assert await any_store.acknowledge("org-b", first.id, "org-b/ann", NOW, 50) is False
    status = await any_store.message_status(sent.messages[0].status_hash, NOW)
    assert status == MessageStatus("pending", 1, 2)
    assert await any_store.acknowledge("org-b", first.id, "org-b/bob", NOW, 50) is True
    assert await any_store.get_message("org-b", first.id, NOW) is None
    status = await any_store.message_status(sent.messages[0].status_hash, NOW)
    assert status == MessageStatus("delivered", 2, 2)
    assert await any_store.acknowledge("org-b", first.id, "org-b/bob", NOW, 50) is None
    assert (await any_store.stats(NOW)).message_bytes == 100


async def test_idempotency_replays_and_conflicts(any_store: Any) -> None:
    sent = batch()
    assert isinstance(await any_store.store_send(sent), list)
    assert await any_store.store_send(sent) == ReplayedSend(received=NOW, expires=NOW + 1000)
    with pytest.raises(IdempotencyConflict):
        await any_store.store_send(dataclasses.replace(sent, request_hash=rand(32)))
    assert len(await any_store.list_messages("org-b", 0, 10, NOW)) == 1


async def test_the_quota_refuses_and_stores_nothing(any_store: Any) -> None:
    await any_store.store_send(batch(size=900, quota=1000))
    with pytest.raises(QuotaExceeded):
        await any_store.store_send(batch(size=200, quota=1000))
    assert (await any_store.stats(NOW)).message_bytes == 900
    assert len(await any_store.list_messages("org-b", 0, 10, NOW)) == 1


async def test_challenges_are_single_use_and_sessions_end(any_store: Any) -> None:
    nonce = rand(32)
    await any_store.add_challenge(nonce, "org-a/ann", NOW + 60)
    taken = await asyncio.gather(*(any_store.take_challenge(nonce) for _ in range(5)))
    assert taken.count(None) == 4 and ("org-a/ann", NOW + 60) in taken
    row = SessionRow(rand(32), "org-a/ann", NOW + 100)
    await any_store.add_session(row)
    assert await any_store.get_session(row.token_hash, NOW) == row
    assert await any_store.live_sessions(NOW) == [row]
    assert await any_store.get_session(row.token_hash, NOW + 100) is None  # expired
    await any_store.delete_session(row.token_hash)
    assert await any_store.live_sessions(NOW) == []


async def test_retraction(any_store: Any) -> None:
    sent = batch()
    await any_store.store_send(sent)
    token = sent.messages[0].status_hash
    assert await any_store.retract(token, NOW, 50) == MessageStatus("retracted", 0, 1)
    assert await any_store.retract(token, NOW, 50) == MessageStatus("retracted", 0, 1)
    assert await any_store.list_messages("org-b", 0, 10, NOW) == []
    delivered = batch()
    stored = await any_store.store_send(delivered)
    await any_store.acknowledge("org-b", stored[0].id, "org-b/ann", NOW, 50)
    with pytest.raises(NotRetractable):
        await any_store.retract(delivered.messages[0].status_hash, NOW, 50)
    assert await any_store.retract(rand(32), NOW, 50) is None


async def test_the_key_log_appends_in_order_and_a_taken_index_is_refused(any_store: Any) -> None:
    await any_store.append_log(LogAppend(index=0, record=b"r0", hash=b"h0"))
    await any_store.append_log(LogAppend(index=1, record=b"r1", hash=b"h1"))
    with pytest.raises(LogIndexTaken):
        await any_store.append_log(LogAppend(index=1, record=b"other", hash=b"hx"))
    assert await any_store.log_records() == [(b"r0", b"h0"), (b"r1", b"h1")]
    assert await any_store.log_records(1) == [(b"r1", b"h1")]


async def test_removal_ends_sessions_and_deliveries_and_may_complete_messages(
        any_store: Any) -> None:
    row = SessionRow(rand(32), "org-b/bob", NOW + 100)
    await any_store.add_session(row)
    sent = batch(recipients=("org-b/ann", "org-b/bob"))
    stored = await any_store.store_send(sent)
    await any_store.acknowledge("org-b", stored[0].id, "org-b/ann", NOW, 50)
    await any_store.append_log(LogAppend(index=0, record=b"r", hash=b"h",
                                         staff_removed="org-b/bob", status_grace=50, now=NOW))
    assert await any_store.live_sessions(NOW) == []
    assert await any_store.get_message("org-b", stored[0].id, NOW) is None  # 1 of 1 now
    status = await any_store.message_status(sent.messages[0].status_hash, NOW)
    assert status == MessageStatus("delivered", 1, 1)
    # a send written after the removal committed does not wait for the removed colleague
    later = await any_store.store_send(dataclasses.replace(
        batch(recipients=("org-b/ann", "org-b/bob")), removed={"org-b/bob"}))
    assert await any_store.acknowledge("org-b", later[0].id, "org-b/ann", NOW, 50) is True


async def test_revocation_empties_the_mailbox_and_refuses_later_sends(any_store: Any) -> None:
    sent = batch()
    await any_store.store_send(sent)
    await any_store.append_log(LogAppend(index=0, record=b"r", hash=b"h",
                                         org_revoked="org-b", status_grace=50, now=NOW))
    assert await any_store.list_messages("org-b", 0, 10, NOW) == []
    status = await any_store.message_status(sent.messages[0].status_hash, NOW)
    assert status == MessageStatus("expired", 0, 1)
    with pytest.raises(RecipientUnknown):
        await any_store.store_send(dataclasses.replace(batch(), revoked={"org-b"}))


async def test_purge_deletes_what_expired(any_store: Any) -> None:
    old = batch(expires=NOW + 10)
    await any_store.store_send(old)
    await any_store.store_send(batch(expires=NOW + 1000))
    await any_store.add_challenge(rand(32), "org-a/ann", NOW + 5)
    await any_store.add_session(SessionRow(rand(32), "org-a/ann", NOW + 5))
    await any_store.put_grants("org-b", 1, [("org-b/ann", "PC", b"sealed")], expires=NOW + 5)
    await any_store.put_grants("org-b", 2, [("org-b/ann", "PC", b"sealed2")])
    counts = await any_store.purge(NOW + 20, 50)
    assert (counts.messages, counts.idempotency, counts.challenges, counts.sessions,
            counts.grants) == (1, 1, 1, 1, 1)
    assert len(await any_store.list_messages("org-b", 0, 10, NOW)) == 1
    status = await any_store.message_status(old.messages[0].status_hash, NOW + 20)
    assert status == MessageStatus("expired", 0, 1)
    assert [g.epoch for g in await any_store.grants_for("org-b/ann", NOW + 20, "PC")] == [2]
    assert (await any_store.purge(NOW + 20 + 50 + 10, 50)).tombstones == 1
    stats = await any_store.stats(NOW)
    assert (stats.messages, stats.pending_deliveries, stats.grants) == (1, 1, 1)


async def test_drops_quota_acks_and_expiry(any_store: Any) -> None:
    first = NewDrop(id=rand(16), size=600, token_hash=rand(32), expires=NOW + 100,
                    idle_expires=NOW + 10, orgs=("org-b", "org-c"), org_quota=1000)
    await any_store.create_drop(first)
    with pytest.raises(DropQuotaExceeded):
        await any_store.create_drop(dataclasses.replace(first, id=rand(16), orgs=("org-c",)))
    got = await any_store.get_drop(first.id)
    assert got is not None and got.orgs == ("org-b", "org-c") and not got.complete
    await any_store.touch_drop(first.id, NOW + 500)
    assert (await any_store.get_drop(first.id)).idle_expires == NOW + 100  # never past the TTL
    assert await any_store.complete_drop(first.id, ("org-b/ann", "org-c/cat")) is True
    assert sorted(await any_store.drop_pending(first.id)) == ["org-b/ann", "org-c/cat"]
    assert await any_store.acknowledge_drop(first.id, "org-b/ann", ()) is False
    assert await any_store.acknowledge_drop(first.id, "org-b/ann", ("org-c/cat",)) is True
    assert await any_store.get_drop(first.id) is None
    stale = dataclasses.replace(first, id=rand(16))
    await any_store.create_drop(stale)
    assert await any_store.delete_expired_drops(NOW + 11) == [stale.id]  # idle upload
    stats = await any_store.stats(NOW)
    assert (stats.drops, stats.complete_drops, stats.drop_bytes) == (0, 0, 0)
