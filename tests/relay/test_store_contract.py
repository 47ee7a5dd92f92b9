"""The ``RelayStore`` contract (relay/store/interface.py), checked against every implementation.

Only interface methods are called here, so a new store joins by adding one entry to
``STORES``. The concurrency rules are tested by firing many calls at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from relay.errors import (
    DropQuotaExceeded,
    LinkSideDone,
    NotReceived,
    NotRetractable,
    QuotaExceeded,
    TooManyLinks,
)
from relay.store import (
    LogAppend,
    MessageStatus,
    NewDrop,
    NewMessage,
    RelayStore,
    ReplayedSend,
    SendBatch,
    SessionRow,
    SqliteStore,
    StoredMessage,
)
from tests.support.actors import rand

STORES: dict[str, Callable[[Path], RelayStore]] = {
    "sqlite": lambda tmp: SqliteStore(tmp / "relay.db"),
}
NOW = 1_000_000
MANY = 20


@pytest.fixture(params=[*sorted(STORES), "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RelayStore]:
    if request.param == "postgresql":  # a throw-away server (tests/support/pgcluster.py)
        from relay.store.postgres import PostgresStore

        db: RelayStore = PostgresStore(request.getfixturevalue("pg_cluster").new_database())
    else:
        db = STORES[request.param](tmp_path)
    await db.open()
    yield db
    await db.close()


def _send(to_org: str = "org-b", size: int = 100, quota: int = 10**9,
          recipients: tuple[str, ...] = ("org-b/ann",), key: bytes | None = None,
          status_hash: bytes | None = None) -> SendBatch:
    message = NewMessage(id=rand(16), to_org=to_org, epoch=1, sealed=rand(size),
                         status_hash=status_hash or rand(32), recipients=recipients)
    return SendBatch(key_hash=key or rand(32), request_hash=b"r" * 32, received=NOW,
                     expires=NOW + 100, messages=(message,), org_quota=quota)


def _drop(size: int = 100, quota: int = 10**9, orgs: tuple[str, ...] = ("org-b",)) -> NewDrop:
    return NewDrop(id=rand(16), size=size, token_hash=rand(32), expires=NOW + 100,
                   idle_expires=NOW + 50, orgs=orgs, org_quota=quota)


async def _settle(calls: list[Awaitable[Any]]) -> list[Any]:
    return list(await asyncio.gather(*calls, return_exceptions=True))


async def _stored(store: RelayStore, batch: SendBatch) -> StoredMessage:
    result = await store.store_send(batch)
    assert isinstance(result, list)
    return result[0]


async def test_one_idempotency_key_stores_once_under_concurrency(store: RelayStore) -> None:
    batch = _send()
    outcomes = await _settle([store.store_send(batch) for _ in range(MANY)])
    assert sum(isinstance(o, list) for o in outcomes) == 1
    assert sum(o == ReplayedSend(received=NOW, expires=NOW + 100) for o in outcomes) == MANY - 1
    assert len(await store.list_messages("org-b", 0, 100, NOW)) == 1


async def test_the_mailbox_quota_holds_exactly_under_concurrency(store: RelayStore) -> None:
    outcomes = await _settle([store.store_send(_send(size=300, quota=1000))
                              for _ in range(MANY)])
    assert sum(isinstance(o, list) for o in outcomes) == 3
    assert sum(isinstance(o, QuotaExceeded) for o in outcomes) == MANY - 3
    held = await store.list_messages("org-b", 0, 100, NOW)
    assert sum(len(m.sealed) for m in held) == 900


async def test_cursors_increase_and_list_in_order(store: RelayStore) -> None:
    stored = await _settle([_stored(store, _send()) for _ in range(MANY)])
    cursors = [m.cursor for m in stored]
    assert len(set(cursors)) == MANY
    listed = await store.list_messages("org-b", 0, 100, NOW)
    assert [m.cursor for m in listed] == sorted(cursors)
    after = sorted(cursors)[9]
    assert [m.cursor for m in await store.list_messages("org-b", after, 100, NOW)] == (
        sorted(cursors)[10:])
    assert await store.list_messages("org-c", 0, 100, NOW) == []


async def test_of_concurrent_last_acknowledgements_exactly_one_deletes(store: RelayStore) -> None:
    staff = tuple(f"org-b/s{i}" for i in range(MANY))
    status = rand(32)
    message = await _stored(store, _send(recipients=staff, status_hash=status))
    outcomes = await _settle([store.acknowledge("org-b", message.id, s, NOW, 50)
                              for s in staff])
    assert outcomes.count(True) == 1 and outcomes.count(False) == MANY - 1
    assert await store.get_message("org-b", message.id, NOW) is None
    assert await store.message_status(status, NOW) == MessageStatus("delivered", MANY, MANY)
    assert await store.acknowledge("org-b", message.id, staff[0], NOW, 50) is None


async def test_acknowledging_twice_counts_once_and_strangers_count_nothing(
        store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _send(recipients=("org-b/ann", "org-b/bob"),
                                         status_hash=status))
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50) is False
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50) is False
    assert await store.acknowledge("org-b", message.id, "org-b/eve", NOW, 50) is False
    assert await store.acknowledge("org-c", message.id, "org-c/bob", NOW, 50) is None
    assert await store.message_status(status, NOW) == MessageStatus("pending", 1, 2)


async def test_a_challenge_is_taken_at_most_once_under_concurrency(store: RelayStore) -> None:
    nonce_hash = rand(32)
    await store.add_challenge(nonce_hash, "org-b/ann", NOW + 30)
    outcomes = await _settle([store.take_challenge(nonce_hash) for _ in range(MANY)])
    assert outcomes.count(("org-b/ann", NOW + 30)) == 1
    assert outcomes.count(None) == MANY - 1


async def test_a_retraction_racing_the_last_acknowledgement_has_one_winner(
        store: RelayStore) -> None:
    for _ in range(5):
        status = rand(32)
        message = await _stored(store, _send(status_hash=status))
        acked, retracted = await _settle([
            store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50),
            store.retract(status, NOW, 50)])
        final = await store.message_status(status, NOW)
        assert final is not None
        if acked is True:
            assert isinstance(retracted, NotRetractable)
            assert final.state == "delivered"
        else:
            assert retracted == MessageStatus("retracted", 0, 1)
            assert acked is None and final.state == "retracted"
        assert await store.get_message("org-b", message.id, NOW) is None


async def test_a_removal_takes_the_colleague_out_of_pending_deliveries(
        store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _send(recipients=("org-b/ann", "org-b/bob"),
                                         status_hash=status))
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50) is False
    await store.append_log(LogAppend(index=0, record=b"remove bob", hash=rand(32),
                                     staff_removed="org-b/bob", status_grace=50, now=NOW))
    assert await store.message_status(status, NOW) == MessageStatus("delivered", 1, 1)
    assert await store.log_records() != []


async def test_a_send_written_after_a_removal_skips_the_removed(store: RelayStore) -> None:
    removed: set[str] = set()
    batch = _send(recipients=("org-b/ann", "org-b/bob"))
    batch = SendBatch(**{**batch.__dict__, "removed": removed})
    removed.add("org-b/bob")  # the live set changed after the send was checked
    message = await _stored(store, batch)
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50) is True


def _to_devices(devices: tuple[tuple[str, str], ...], status: bytes) -> SendBatch:
    batch = _send(recipients=tuple(sorted({s for s, _ in devices})), status_hash=status)
    message = NewMessage(**{**batch.messages[0].__dict__, "devices": devices})
    return SendBatch(**{**batch.__dict__, "messages": (message,)})


async def test_every_device_fetches_before_a_message_goes_and_k_counts_people(
        store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _to_devices(
        (("org-b/ann", "PC"), ("org-b/ann", "LAPTOP"), ("org-b/bob", "PHONE")), status))
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50, "PC") is False
    assert await store.acknowledge("org-b", message.id, "org-b/bob", NOW, 50, "PHONE") is False
    # both people have it (k = n), yet ann's laptop has not fetched it: it stays
    assert await store.message_status(status, NOW) == MessageStatus("pending", 2, 2)
    assert await store.get_message("org-b", message.id, NOW) is not None
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50, "PC") is False
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50, "LAPTOP") is True
    assert await store.message_status(status, NOW) == MessageStatus("delivered", 2, 2)


async def test_a_removed_device_no_longer_holds_a_message_back(store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _to_devices(
        (("org-b/ann", "PC"), ("org-b/ann", "LAPTOP")), status))
    await store.add_session(SessionRow(rand(32), "org-b/ann", NOW + 100, "LAPTOP"))
    await store.put_grants("org-b", 1, [("org-b/ann", "LAPTOP", rand(80)),
                                        ("org-b/ann", "PC", rand(80))])
    assert await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50, "PC") is False
    await store.append_log(LogAppend(index=0, record=b"remove laptop", hash=rand(32),
                                     device_removed=("org-b/ann", "LAPTOP"), status_grace=50,
                                     now=NOW))
    assert await store.message_status(status, NOW) == MessageStatus("delivered", 1, 1)
    assert [r.device for r in await store.live_sessions(NOW)] == []
    assert [g.device for g in await store.grants_for("org-b/ann", NOW, "PC")] == ["PC"]
    assert await store.grants_for("org-b/ann", NOW, "LAPTOP") == []


async def test_retraction_is_repeatable_and_expired_messages_are_not_retractable(
        store: RelayStore) -> None:
    status = rand(32)
    await _stored(store, _send(status_hash=status))
    assert await store.retract(status, NOW, 50) == MessageStatus("retracted", 0, 1)
    assert await store.retract(status, NOW, 50) == MessageStatus("retracted", 0, 1)
    late = rand(32)
    await _stored(store, _send(status_hash=late))
    with pytest.raises(NotRetractable):
        await store.retract(late, NOW + 100, 50)
    assert await store.retract(rand(32), NOW, 50) is None


async def test_purge_leaves_expired_tombstones_until_the_grace_ends(store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _send(status_hash=status))
    assert await store.get_message("org-b", message.id, NOW + 100) is None  # expired = gone
    counts = await store.purge(NOW + 100, 50)
    assert counts.messages == 1 and counts.idempotency == 1
    assert await store.message_status(status, NOW + 120) == MessageStatus("expired", 0, 1)
    await store.purge(NOW + 150, 50)
    assert await store.message_status(status, NOW + 120) is None


async def test_the_drop_quota_holds_exactly_under_concurrency(store: RelayStore) -> None:
    outcomes = await _settle([store.create_drop(_drop(size=300, quota=1000))
                              for _ in range(MANY)])
    assert outcomes.count(None) == 3
    assert sum(isinstance(o, DropQuotaExceeded) for o in outcomes) == MANY - 3
    assert len(await store.drop_ids()) == 3


async def test_a_drop_is_delivered_once_under_concurrent_acknowledgements(
        store: RelayStore) -> None:
    drop = _drop(orgs=("org-b", "org-c"))
    await store.create_drop(drop)
    row = await store.get_drop(drop.id)
    assert row is not None and not row.complete and row.orgs == ("org-b", "org-c")
    staff = tuple(f"org-b/s{i}" for i in range(MANY))
    assert await store.complete_drop(drop.id, staff) is True
    assert await store.complete_drop(drop.id, ()) is True  # again: nothing changes
    assert sorted(await store.drop_pending(drop.id)) == sorted(staff)
    outcomes = await _settle([store.acknowledge_drop(drop.id, s, ()) for s in staff])
    assert outcomes.count(True) == 1 and outcomes.count(False) == MANY - 1
    assert await store.get_drop(drop.id) is None
    assert await store.complete_drop(drop.id, staff) is False


async def test_a_drop_waits_for_every_device_and_not_for_a_removed_one(
        store: RelayStore) -> None:
    drop = _drop()
    await store.create_drop(drop)
    devices = (("org-b/ann", "PC"), ("org-b/ann", "LAPTOP"), ("org-b/ann", "PHONE"))
    await store.complete_drop(drop.id, ("org-b/ann",), devices)
    assert await store.acknowledge_drop(drop.id, "org-b/ann", (), "PC") is False
    assert await store.drop_pending(drop.id) == []  # the person has it, two devices not
    assert await store.get_drop(drop.id) is not None
    await store.append_log(LogAppend(index=0, record=b"remove phone", hash=rand(32),
                                     device_removed=("org-b/ann", "PHONE"), now=NOW))
    assert await store.get_drop(drop.id) is not None
    assert await store.acknowledge_drop(drop.id, "org-b/ann", (), "LAPTOP") is True
    assert await store.get_drop(drop.id) is None


async def test_forgetting_removed_recipients_delivers_a_drop(store: RelayStore) -> None:
    drop = _drop()
    await store.create_drop(drop)
    await store.complete_drop(drop.id, ("org-b/ann", "org-b/bob"))
    assert await store.acknowledge_drop(drop.id, "org-b/ann", ()) is False
    assert await store.drop_deliveries() == [(drop.id, "org-b/bob")]
    assert await store.forget_drop_deliveries([(drop.id, "org-b/bob")]) == [drop.id]
    assert await store.drop_ids() == set()


async def test_idle_uploads_and_expired_drops_are_deleted(store: RelayStore) -> None:
    idle, busy = _drop(), _drop()
    await store.create_drop(idle)
    await store.create_drop(busy)
    await store.touch_drop(busy.id, NOW + 1000)  # never past its TTL
    row = await store.get_drop(busy.id)
    assert row is not None and row.idle_expires == NOW + 100
    assert await store.delete_expired_drops(NOW + 50) == [idle.id]
    assert await store.delete_expired_drops(NOW + 100) == [busy.id]


# --- read reports: receipts outlive the envelope until the message's expiry ----------------


async def test_only_a_recipient_who_fetched_may_report_read_and_counts_once(
        store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _send(recipients=("org-b/ann", "org-b/bob"),
                                         status_hash=status))
    with pytest.raises(NotReceived):  # not fetched yet
        await store.report_read("org-b/ann", (message.id,), NOW)
    await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50, "dev-1")
    other = await _stored(store, _send(recipients=("org-b/ann",)))
    with pytest.raises(NotReceived):  # one id never fetched refuses the whole report
        await store.report_read("org-b/ann", (message.id, other.id), NOW)
    with pytest.raises(NotReceived):  # a colleague who has not fetched it, a stranger
        await store.report_read("org-b/bob", (message.id,), NOW)
    with pytest.raises(NotReceived):
        await store.report_read("org-c/eve", (message.id,), NOW)
    assert await store.message_status(status, NOW) == MessageStatus("pending", 1, 2, 0)
    # the person's devices report concurrently: counted once
    outcomes = await _settle([store.report_read("org-b/ann", (message.id,), NOW)
                              for _ in range(MANY)])
    assert sorted(outcomes) == [0] * (MANY - 1) + [1]
    await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50, "dev-2")
    assert await store.report_read("org-b/ann", (message.id,), NOW) == 0
    assert await store.message_status(status, NOW) == MessageStatus("pending", 1, 2, 1)


async def test_a_read_report_counts_after_the_envelope_is_gone_until_expiry(
        store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _send(recipients=("org-b/ann", "org-b/bob"),
                                         status_hash=status))
    await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50)
    assert await store.acknowledge("org-b", message.id, "org-b/bob", NOW, 50) is True
    assert await store.get_message("org-b", message.id, NOW) is None
    assert await store.report_read("org-b/bob", (message.id,), NOW + 10) == 1
    assert await store.message_status(status, NOW + 10) == MessageStatus("delivered", 2, 2, 1)
    with pytest.raises(NotReceived):  # past the message's expiry nothing is reported
        await store.report_read("org-b/ann", (message.id,), NOW + 100)
    counts = await store.purge(NOW + 100, 50)
    assert counts.receipts == 2
    # the readers moved onto the tombstone; the receipts naming people are gone
    assert await store.message_status(status, NOW + 120) == MessageStatus("delivered", 2, 2, 1)
    with pytest.raises(NotReceived):
        await store.report_read("org-b/ann", (message.id,), NOW + 10)
    await store.purge(NOW + 150, 50)
    assert await store.message_status(status, NOW + 120) is None


async def test_an_expired_message_keeps_its_readers_on_the_expired_tombstone(
        store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _send(recipients=("org-b/ann", "org-b/bob"),
                                         status_hash=status))
    await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50)
    await store.report_read("org-b/ann", (message.id,), NOW)
    assert (await store.purge(NOW + 100, 50)).receipts == 1
    assert await store.message_status(status, NOW + 120) == MessageStatus("expired", 1, 2, 1)


async def test_revoking_an_org_deletes_its_members_receipts(store: RelayStore) -> None:
    status = rand(32)
    message = await _stored(store, _send(status_hash=status))
    await store.acknowledge("org-b", message.id, "org-b/ann", NOW, 50)
    await store.report_read("org-b/ann", (message.id,), NOW)
    await store.append_log(LogAppend(index=0, record=b"r", hash=rand(32),
                                     org_revoked="org-b", status_grace=50, now=NOW))
    with pytest.raises(NotReceived):
        await store.report_read("org-b/ann", (message.id,), NOW)
    assert await store.message_status(status, NOW) == MessageStatus("delivered", 1, 1, 1)


# --- device-linking mailboxes -------------------------------------------------------------


async def test_a_link_mailbox_carries_each_sides_messages_in_order(store: RelayStore) -> None:
    assert await store.open_link("0042", "org-b/ann", "PC", NOW + 600, NOW, 3) is True
    assert await store.open_link("0042", "org-b/bob", "X", NOW + 600, NOW, 3) is False
    assert await store.post_link("0042", "a", b"a0", 2, NOW) == 1
    assert await store.post_link("0042", "b", b"b0", 2, NOW) == 1
    assert await store.post_link("0042", "b", b"b1", 2, NOW) == 2
    with pytest.raises(LinkSideDone):
        await store.post_link("0042", "b", b"b2", 2, NOW)
    box = await store.read_link("0042", NOW)
    assert box is not None
    assert (box.staff_id, box.device, box.expires) == ("org-b/ann", "PC", NOW + 600)
    assert (box.existing, box.new) == ((b"a0",), (b"b0", b"b1"))
    assert await store.close_link("0042") is True
    assert await store.read_link("0042", NOW) is None
    assert await store.post_link("0042", "a", b"a1", 2, NOW) is None
    assert await store.close_link("0042") is False


async def test_concurrent_posts_take_distinct_places_up_to_the_limit(store: RelayStore) -> None:
    await store.open_link("0007", "org-b/ann", "PC", NOW + 600, NOW, 3)
    outcomes = await _settle([store.post_link("0007", "b", bytes([i]), 2, NOW)
                              for i in range(MANY)])
    assert sorted(o for o in outcomes if isinstance(o, int)) == [1, 2]
    assert sum(isinstance(o, LinkSideDone) for o in outcomes) == MANY - 2
    box = await store.read_link("0007", NOW)
    assert box is not None and len(box.new) == 2


async def test_a_person_opens_few_link_mailboxes_and_expired_ones_go(store: RelayStore) -> None:
    outcomes = await _settle([store.open_link(f"{i:04d}", "org-b/ann", "PC", NOW + 600, NOW, 3)
                              for i in range(MANY)])
    assert outcomes.count(True) == 3
    assert sum(isinstance(o, TooManyLinks) for o in outcomes) == MANY - 3
    assert await store.open_link("0100", "org-b/bob", "X", NOW + 10, NOW, 3) is True
    assert await store.post_link("0100", "b", b"b0", 2, NOW) == 1
    assert await store.read_link("0100", NOW + 10) is None  # expired: gone for every read
    # an expired nameplate can be taken again, and purge deletes what expired
    assert await store.open_link("0100", "org-b/cy", "Y", NOW + 700, NOW + 10, 3)
    box = await store.read_link("0100", NOW + 10)
    assert box is not None and box.new == ()  # nothing of the expired mailbox is left
    counts = await store.purge(NOW + 600, 0)
    assert counts.links == 3
    assert await store.read_link("0100", NOW + 600) is not None


# --- when devices last logged in ----------------------------------------------------------


async def test_a_devices_day_only_moves_forward_and_old_days_are_forgotten(
        store: RelayStore) -> None:
    day = 86400
    await store.mark_device_seen("org-b/ann", "PC", 10 * day, 0)
    await store.mark_device_seen("org-b/ann", "LAPTOP", 3 * day, 0)
    await store.mark_device_seen("org-b/ann", "PC", 9 * day, 0)  # a late writer
    await store.mark_device_seen("org-b/bob", "PC", 10 * day, 0)
    assert await store.devices_seen(["org-b/ann"]) == {("org-b/ann", "PC"): 10 * day,
                                                       ("org-b/ann", "LAPTOP"): 3 * day}
    await store.mark_device_seen("", "", 1 * day, 0)  # since when logins are recorded
    await store.mark_device_seen("org-b/bob", "PC", 11 * day, 5 * day)
    assert await store.devices_seen(["org-b/ann", "org-b/bob", ""]) == {
        ("org-b/ann", "PC"): 10 * day, ("org-b/bob", "PC"): 11 * day, ("", ""): 1 * day}
    assert await store.devices_seen([]) == {}
