"""Event streams in process: backlog then live, exactly once, ending with the session.

The stream is the service's async iterator; the clock it reads is the test's, and waits
are bounded by ``asyncio.wait_for`` only as a safety net (no test depends on a duration).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from protocol.events import CLOSE_SESSION_ENDED
from relay.errors import TooManyConnections
from relay.push import Closing
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

