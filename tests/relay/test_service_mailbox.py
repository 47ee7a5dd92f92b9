"""The mailbox service in process, with the clock moved by the test (no sleeping)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import b64decode
from relay import wire
from relay.errors import (
    DuplicateRecipient,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    NotRetractable,
    RecipientUnknown,
    StaleEpoch,
    TtlOutOfRange,
)
from relay.service.hashing import STATUS, secret_hash, status_key
from relay.store import MessageStatus, NewMessage, SendBatch
from tests.relay.inprocess import service_world
from tests.support.actors import envelope, rand, revoke

GRACE = 500


async def test_a_message_lives_exactly_its_ttl(tmp_path: Path) -> None:
    async with service_world(tmp_path, status_grace=GRACE) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b", ("admin", "alice"))
        sent = await world.send_one(a.staff["org-a/admin"], b, ttl=100)
        start = world.clock
        assert sent.expires == start + 100
        reader = await world.login(b.staff["org-b/alice"])
        mailbox = world.relay.mailbox

        world.advance(99)
        assert [m.id for m in await mailbox.inbox(reader, 0, 10, world.now())] == [sent.id]
        assert (await mailbox.status(sent.status_token, world.now())).state == "pending"
        world.advance(1)  # the very second it expires, it is gone for every reader
        assert await mailbox.inbox(reader, 0, 10, world.now()) == []
        with pytest.raises(NotFound):
            await mailbox.get(reader, sent.id, world.now())
        with pytest.raises(NotFound):
            await mailbox.acknowledge(reader, sent.id, world.now())
        assert (await mailbox.status(sent.status_token, world.now())).state == "expired"
        with pytest.raises(NotRetractable):
            await mailbox.retract(sent.status_token, world.now())

        counts = await world.relay.purge(world.now())
        assert counts.messages == 1
        expired = MessageStatus("expired", 0, 2)
        world.advance(GRACE - 1)
        assert await mailbox.status(sent.status_token, world.now()) == expired
        world.advance(1)
        await world.relay.purge(world.now())
        with pytest.raises(NotFound):  # the tombstone went at expiry + grace
            await mailbox.status(sent.status_token, world.now())


async def test_k_of_n_acknowledgements_delete_and_leave_a_tombstone(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b", ("admin", "alice", "bob"))
        sent = await world.send_one(a.staff["org-a/admin"], b)
        mailbox = world.relay.mailbox
        sessions = [await world.login(s) for s in b.staff.values()]
        assert await mailbox.acknowledge(sessions[0], sent.id, world.now()) is False
        assert await mailbox.acknowledge(sessions[0], sent.id, world.now()) is False  # once
        assert await mailbox.status(sent.status_token, world.now()) == (
            MessageStatus("pending", 1, 3))
        assert await mailbox.acknowledge(sessions[1], sent.id, world.now()) is False
        assert await mailbox.acknowledge(sessions[2], sent.id, world.now()) is True
        assert await mailbox.status(sent.status_token, world.now()) == (
            MessageStatus("delivered", 3, 3))
        with pytest.raises(NotFound):
            await mailbox.get(sessions[0], sent.id, world.now())


async def test_a_removed_colleague_no_longer_holds_a_message_back(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b", ("admin", "leaver"))
        sent = await world.send_one(a.staff["org-a/admin"], b)
        admin = await world.login(b.staff["org-b/admin"])
        assert await world.relay.mailbox.acknowledge(admin, sent.id, world.now()) is False
        await world.append(b.remove("org-b/leaver"))
        assert await world.relay.mailbox.status(sent.status_token, world.now()) == (
            MessageStatus("delivered", 1, 1))


async def test_a_colleague_enrolled_after_a_send_must_acknowledge_the_next(
        tmp_path: Path) -> None:
    # the recipients of an organisation are remembered between sends until the log grows
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b", ("admin",))
        first = await world.send_one(a.staff["org-a/admin"], b)
        _, record = b.new_staff("newcomer")
        await world.append(record)
        second = await world.send_one(a.staff["org-a/admin"], b)
        mailbox = world.relay.mailbox
        assert await mailbox.status(first.status_token, world.now()) == (
            MessageStatus("pending", 0, 1))
        assert await mailbox.status(second.status_token, world.now()) == (
            MessageStatus("pending", 0, 2))


async def test_a_retry_gets_the_same_answer_and_stores_nothing_new(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        sender = await world.login(a.staff["org-a/admin"])
        env, key = envelope(a.staff["org-a/admin"], b), rand(16)
        first = await world.send(sender, [env], key=key, ttl=100)
        world.advance(10)
        again = await world.send(sender, [env], key=key, ttl=100)
        assert again == first  # same ids, status tokens and (first) expiry
        with pytest.raises(IdempotencyConflict):
            await world.send(sender, [env], key=key, ttl=101)
        reader = await world.login(b.staff["org-b/alice"])
        assert len(await world.relay.mailbox.inbox(reader, 0, 10, world.now())) == 1


async def test_ids_and_status_tokens_begin_with_the_arrival_second(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        sender = await world.login(a.staff["org-a/admin"])
        first = await world.send(sender, [envelope(a.staff["org-a/admin"], b)])
        second_at = world.advance(1)
        second = await world.send(sender, [envelope(a.staff["org-a/admin"], b)])
        assert second[0].id[:4] == second[0].status_token[:4] == second_at.to_bytes(4, "big")
        # in arrival order, so the store's indexes over them grow at their end
        assert first[0].id < second[0].id
        assert first[0].status_token < second[0].status_token
        assert status_key(first[0].status_token) < status_key(second[0].status_token)
        assert (await world.relay.mailbox.status(second[0].status_token, world.now())
                ).state == "pending"


async def test_a_status_token_from_before_status_keys_still_answers(tmp_path: Path) -> None:
    """Messages stored under the plain hash of their token (before status keys began with
    the arrival second) keep their status and can still be retracted."""
    async with service_world(tmp_path) as world:
        await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        mailbox = world.relay.mailbox
        tokens = [rand(32), rand(32)]
        for token in tokens:
            await world.relay.store.store_send(SendBatch(
                key_hash=rand(32), request_hash=rand(32), received=world.now(),
                expires=world.now() + 100, org_quota=10**9, messages=(NewMessage(
                    id=rand(16), to_org=b.org_id, epoch=b.epoch, sealed=rand(100),
                    status_hash=secret_hash(STATUS, token),
                    recipients=("org-b/admin", "org-b/alice")),)))
        assert await mailbox.status(tokens[0], world.now()) == MessageStatus("pending", 0, 2)
        assert await mailbox.retract(tokens[1], world.now()) == MessageStatus("retracted", 0, 2)
        assert await mailbox.status(tokens[1], world.now()) == MessageStatus("retracted", 0, 2)
        with pytest.raises(NotFound):
            await mailbox.status(rand(32), world.now())


async def test_sends_are_checked_against_the_log_and_the_limits(tmp_path: Path) -> None:
    async with service_world(tmp_path, max_ttl=5000) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        sender_staff = a.staff["org-a/admin"]
        sender = await world.login(sender_staff)
        env = envelope(sender_staff, b)
        with pytest.raises(TtlOutOfRange):
            await world.send(sender, [env], ttl=5001)
        with pytest.raises(DuplicateRecipient):
            await world.send(sender, [env, env])
        await world.append(b.new_epoch())
        with pytest.raises(StaleEpoch):
            await world.send(sender, [env])
        await world.append(revoke(world.network, "org-b"))
        with pytest.raises(RecipientUnknown):
            await world.send(sender, [envelope(sender_staff, b)])
        with pytest.raises(InvalidRequest):  # the shape is the wire's, before any service
            wire.send_request({"idempotency_key": "AA", "envelopes": [env]})


async def test_retraction_beats_delivery_once_only(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        sent = await world.send_one(a.staff["org-a/admin"], b)
        mailbox = world.relay.mailbox
        retracted = MessageStatus("retracted", 0, 2)
        assert await mailbox.retract(sent.status_token, world.now()) == retracted
        assert await mailbox.retract(sent.status_token, world.now()) == retracted
        reader = await world.login(b.staff["org-b/alice"])
        with pytest.raises(NotFound):
            await mailbox.acknowledge(reader, sent.id, world.now())
        assert b64decode(wire.sent_message(sent)["status_token"]) == sent.status_token
