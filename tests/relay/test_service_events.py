"""Event streams in process: backlog then live, exactly once, ending with the session.

The stream is the service's async iterator; the clock it reads is the test's, and waits
are bounded by ``asyncio.wait_for`` only as a safety net (no test depends on a duration).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import cast

import pytest
from aiohttp import web

from protocol.events import CLOSE_SESSION_ENDED, CLOSE_TOO_SLOW
from relay import wire
from relay.errors import TooManyConnections
from relay.handlers.events import WRITE_BUFFER_LIMIT, connection_writer
from relay.push import QUEUE_SIZE, Closing
from relay.store import StoredMessage
from tests.relay.inprocess import service_world

SAFETY = 10.0


async def _next(items: AsyncGenerator[StoredMessage | Closing, None]
                ) -> StoredMessage | Closing:
    return await asyncio.wait_for(anext(items), SAFETY)


async def test_backlog_then_live_each_envelope_exactly_once(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        sender = a.staff["org-a/admin"]
        before = [await world.send_one(sender, b) for _ in range(3)]
        reader = await world.login(b.staff["org-b/alice"])
        events = world.relay.events
        sub = events.open(reader)
        # stored after subscribing, before the backlog is read: in the backlog *and* pushed
        racing = await world.send_one(sender, b)
        items = events.stream(reader, sub, 0, world.now)
        seen = [await _next(items) for _ in range(4)]
        assert [m.id for m in seen if isinstance(m, StoredMessage)] == (
            [s.id for s in before] + [racing.id])
        await world.send_one(sender, a)  # for org-a: not on this stream
        live = await world.send_one(sender, b)
        pushed = await _next(items)
        assert isinstance(pushed, StoredMessage) and pushed.id == live.id  # no duplicate
        await items.aclose()
        events.close(sub)


async def test_a_removal_ends_a_backlog_replay_at_the_next_envelope(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b", ("admin", "leaver"))
        for _ in range(5):
            await world.send_one(a.staff["org-a/admin"], b)
        leaver = await world.login(b.staff["org-b/leaver"])
        sub = world.relay.events.open(leaver)
        items = world.relay.events.stream(leaver, sub, 0, world.now)
        assert isinstance(await _next(items), StoredMessage)
        await world.append(b.remove("org-b/leaver"))
        ended = await _next(items)
        assert ended == Closing(CLOSE_SESSION_ENDED, "session ended")
        with pytest.raises(StopAsyncIteration):
            await _next(items)


async def test_an_idle_stream_ends_when_its_session_expires(tmp_path: Path) -> None:
    async with service_world(tmp_path, session_ttl=600) as world:
        org = await world.setup_org("org-a")
        session = await world.login(org.staff["org-a/alice"])
        events = world.relay.events
        events.recheck = 0.01
        sub = events.open(session)
        items = events.stream(session, sub, 0, world.now)
        waiting = asyncio.ensure_future(_next(items))
        await asyncio.sleep(0.05)  # several rechecks pass: the session is still valid
        assert not waiting.done()
        world.advance(600)
        assert (await waiting) == Closing(CLOSE_SESSION_ENDED, "session ended")


async def test_an_idle_stream_of_a_removed_person_is_closed_by_the_hub(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        org = await world.setup_org("org-a", ("admin", "leaver"))
        leaver = await world.login(org.staff["org-a/leaver"])
        sub = world.relay.events.open(leaver)
        items = world.relay.events.stream(leaver, sub, 0, world.now)
        waiting = asyncio.ensure_future(_next(items))
        await asyncio.sleep(0)
        await world.append(org.remove("org-a/leaver"))
        closing = await waiting
        assert isinstance(closing, Closing) and closing.code == CLOSE_SESSION_ENDED


async def test_streams_per_person_are_limited(tmp_path: Path) -> None:
    async with service_world(tmp_path, max_event_streams_per_staff=2) as world:
        org = await world.setup_org("org-a", ("admin", "alice"))
        alice = await world.login(org.staff["org-a/alice"])
        admin = await world.login(org.staff["org-a/admin"])
        events = world.relay.events
        first, _ = events.open(alice), events.open(alice)
        with pytest.raises(TooManyConnections):
            events.open(await world.login(org.staff["org-a/alice"]))  # another session too
        events.open(admin)  # a colleague has their own allowance
        events.close(first)
        events.open(alice)



class _Connection:
    """The handler's ``write`` as the service sees it: takes a frame now, or cannot."""

    def __init__(self) -> None:
        self.accepting = True
        self.written: list[bytes] = []

    def write(self, message: StoredMessage) -> bool:
        if self.accepting:
            self.written.append(message.id)
        return self.accepting


async def test_live_envelopes_are_written_at_once_and_queued_in_order_when_refused(
        tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        sender = a.staff["org-a/admin"]
        reader = await world.login(b.staff["org-b/alice"])
        events = world.relay.events
        sub = events.open(reader)
        conn = _Connection()
        items = events.stream(reader, sub, 0, world.now, conn.write)
        waiting = asyncio.ensure_future(_next(items))
        await asyncio.sleep(0)  # the backlog is empty: the stream waits, live
        at_once = [(await world.send_one(sender, b)).id for _ in range(2)]
        assert conn.written == at_once and not waiting.done()  # no hop through the stream
        conn.accepting = False  # the connection's buffer is full
        queued = [(await world.send_one(sender, b)).id for _ in range(3)]
        conn.accepting = True  # writable again, but the queue goes first
        later = (await world.send_one(sender, b)).id
        assert conn.written == at_once
        yielded = [await waiting] + [await _next(items) for _ in range(3)]
        assert [m.id for m in yielded if isinstance(m, StoredMessage)] == [*queued, later]
        waiting = asyncio.ensure_future(_next(items))
        await asyncio.sleep(0)  # the queue is empty: written at once again
        last = (await world.send_one(sender, b)).id
        assert conn.written == [*at_once, last] and not waiting.done()
        waiting.cancel()
        events.close(sub)


async def test_a_stream_that_cannot_keep_up_is_closed_with_its_queue_bounded(
        tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        reader = await world.login(b.staff["org-b/alice"])
        sent = await world.send_one(a.staff["org-a/admin"], b)
        events = world.relay.events
        (stored,) = await world.relay.store.list_messages("org-b", 0, 10, world.now())
        assert stored.id == sent.id
        sub = events.open(reader)
        conn = _Connection()
        items = events.stream(reader, sub, stored.cursor, world.now, conn.write)
        waiting = asyncio.ensure_future(_next(items))
        await asyncio.sleep(0)
        conn.accepting = False  # the client reads nothing: its stream's task is stuck too
        for n in range(1, QUEUE_SIZE + 1):
            world.relay.hub.publish(dataclasses.replace(stored, cursor=stored.cursor + n))
        assert len(sub.pending) == QUEUE_SIZE and sub.closing is None
        world.relay.hub.publish(dataclasses.replace(stored, cursor=stored.cursor + 10**6))
        assert not sub.pending and sub.closing is not None  # nothing more kept for it
        assert sub.closing.code == CLOSE_TOO_SLOW
        assert not world.relay.hub.has_subscribers("org-b")
        assert (await waiting) == sub.closing
        assert conn.written == []


@pytest.mark.parametrize("sealed_size", [10, 1024, 70_000])
def test_a_pushed_frame_is_one_unmasked_uncompressed_text_frame_of_the_event(
        sealed_size: int) -> None:
    message = StoredMessage(7, b"\x01" * 16, "org-b", 1, b"\x02" * sealed_size, 100, 200)
    frame = wire.message_frame(message)
    first, second = frame[0], frame[1]
    assert first == 0x81  # FIN, no RSV bits (nothing compressed), opcode 1: text
    assert not second & 0x80  # a server's frames are not masked
    length, start = second & 0x7F, 2
    if length == 126:
        length, start = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, start = int.from_bytes(frame[2:10], "big"), 10
    assert length == len(frame) - start
    assert frame[start:] == wire.message_event(message)
    assert json.loads(frame[start:])["message"]["cursor"] == 7
    other = dataclasses.replace(message, cursor=8)
    assert wire.message_frame(other) != frame and wire.message_frame(message) == frame


async def test_a_connection_that_fails_a_write_costs_no_other_stream_its_push(
        tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        events = world.relay.events
        broken_session = await world.login(b.staff["org-b/alice"])
        healthy_session = await world.login(b.staff["org-b/admin"])

        def broken(message: StoredMessage) -> bool:
            raise ConnectionResetError("the connection went away")

        healthy = _Connection()
        streams = []
        for session, write in ((broken_session, broken), (healthy_session, healthy.write)):
            sub = events.open(session)
            items = events.stream(session, sub, 0, world.now, write)
            streams.append((sub, items, asyncio.ensure_future(_next(items))))
        await asyncio.sleep(0)
        sent = await world.send_one(a.staff["org-a/admin"], b)  # answered: no error
        assert healthy.written == [sent.id]
        yielded = await streams[0][2]  # the broken stream's task sends it and meets the error
        assert isinstance(yielded, StoredMessage) and yielded.id == sent.id
        assert not streams[1][2].done()
        for sub, _, waiting in streams:
            waiting.cancel()
            events.close(sub)


class _OpenSocket:
    closed = False  # what the writer asks of aiohttp's WebSocketResponse


async def test_the_connection_writer_refuses_once_a_client_that_reads_nothing_backs_up() -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client reads nothing
    transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
    try:
        write = connection_writer(cast(web.WebSocketResponse, _OpenSocket()), transport)
        message = StoredMessage(1, b"\x01" * 16, "org-b", 1, b"\x02" * 1024, 100, 200)
        written = 0
        while write(message):
            written += 1
            assert written < 100_000, "the writer never refused"
        assert transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT  # the kernel's is full
        # bounded: refused as soon as the buffer passed the limit, one frame at most beyond
        assert transport.get_write_buffer_size() <= (
            WRITE_BUFFER_LIMIT + len(wire.message_frame(message)))
        assert theirs.recv(2) == b"\x81\x7e"  # what went out is whole frames
    finally:
        transport.close()
        theirs.close()
