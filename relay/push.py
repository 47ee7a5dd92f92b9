"""Pushing new envelopes to connected staff over their event streams.

Each open ``/v1/events`` WebSocket subscribes with its session. ``publish`` hands a stored
envelope to every subscriber of the recipient organisation, in one of two ways:

- **at once**: a stream that is live, idle and keeping up has a ``deliver`` function; it
  writes the envelope's frame (encoded once for all streams, ``relay.wire.message_frame``)
  straight to the connection, in ``publish``'s own loop, with no task woken per stream.
  A push to 2,000 streams is 2,000 socket writes and little else.
- **queued**: otherwise (the stream is still sending its backlog or earlier envelopes,
  its connection's write buffer is full, its session needs a look) the envelope is queued
  and the stream's own task sends it, waiting for the connection to drain. ``deliver``
  is withdrawn the moment anything is queued, and set again only once the queue is empty,
  so a stream's envelopes always go out in order.

A subscriber that cannot keep up (its queue is full) is closed with 4408 and catches up by
cursor when it reconnects, so a slow client never makes the relay buffer without bound
(at most ``QUEUE_SIZE`` queued envelopes, shared by all streams, and one write buffer's
worth of bytes) and nothing is lost. ``close_staff``/``close_org`` end the streams of a
removed staff member or revoked organisation with 4401.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from protocol.events import CLOSE_SESSION_ENDED, CLOSE_TOO_SLOW

from .store import StoredMessage

__all__ = ["CLOSE_SESSION_ENDED", "CLOSE_TOO_SLOW", "Closing", "EventHub", "Subscription"]
QUEUE_SIZE = 1024

Deliver = Callable[[StoredMessage], bool]
"""Write one envelope to a live stream at once; False if it must be queued instead."""


@dataclass(frozen=True)
class Closing:
    """The sentinel queued to a subscriber that must close, with the close code."""

    code: int
    reason: str


@dataclass(eq=False)
class Subscription:
    """One open event stream: envelopes waiting to be written, or why it must close.

    ``deliver`` is set by the stream's task while it waits with nothing queued (see the
    module's docstring); otherwise envelopes are queued in ``pending`` and the task is
    woken, with no task or timer made per envelope (the session recheck timer is armed
    once and fires every ``recheck`` seconds). ``last`` is the cursor of the last envelope
    the stream sent, so one stored while the backlog was read is not sent twice.
    """

    org_id: str
    staff_id: str
    token_hash: bytes
    pending: deque[StoredMessage] = field(default_factory=deque)
    closing: Closing | None = None
    recheck_due: bool = False
    last: int = 0
    deliver: Deliver | None = None
    _waiter: asyncio.Future[None] | None = None
    _timer: asyncio.TimerHandle | None = None

    def push(self, message: StoredMessage) -> bool:
        """Queue an envelope; False if ``QUEUE_SIZE`` are already waiting (too slow)."""
        if len(self.pending) >= QUEUE_SIZE:
            return False
        self.deliver = None  # what follows must wait its turn behind this one
        self.pending.append(message)
        self._wake()
        return True

    def close(self, code: int, reason: str) -> None:
        """Ask the stream's task to close (drops queued messages: they are in the store)."""
        self.deliver = None
        self.pending.clear()
        self.closing = Closing(code, reason)
        self._wake()

    async def wait(self, recheck: float) -> None:
        """Until an envelope or a close is waiting, or the next session recheck is due."""
        if self.pending or self.closing is not None or self.recheck_due:
            return
        loop = asyncio.get_running_loop()
        if self._timer is None:
            self._timer = loop.call_later(recheck, self._recheck)
        self._waiter = loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def stop_timer(self) -> None:
        """The stream is over: no more rechecks."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _recheck(self) -> None:
        self._timer = None
        self.recheck_due = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class EventHub:
    """Subscribers per organisation."""

    def __init__(self) -> None:
        self._by_org: dict[str, set[Subscription]] = {}
        self._per_staff: dict[str, int] = {}

    def subscribe(self, org_id: str, staff_id: str, token_hash: bytes) -> Subscription:
        sub = Subscription(org_id, staff_id, token_hash)
        self._by_org.setdefault(org_id, set()).add(sub)
        self._per_staff[staff_id] = self._per_staff.get(staff_id, 0) + 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_org.get(sub.org_id)
        if subs is not None and sub in subs:
            subs.discard(sub)
            if not subs:
                del self._by_org[sub.org_id]
            left = self._per_staff[sub.staff_id] - 1
            if left:
                self._per_staff[sub.staff_id] = left
            else:
                del self._per_staff[sub.staff_id]

    def has_subscribers(self, org_id: str) -> bool:
        """Is anyone of ``org_id`` listening here (worth fetching what another process stored)?"""
        return org_id in self._by_org

    def count_for_staff(self, staff_id: str, org_id: str) -> int:
        """Streams ``staff_id`` has open here (a staff id names its org)."""
        return self._per_staff.get(staff_id, 0)

    def publish(self, message: StoredMessage) -> None:
        """Write a stored envelope to every live subscriber of its organisation at once,
        or queue it for the subscriber's task."""
        subs = self._by_org.get(message.to_org)
        if not subs:
            return
        too_slow = []
        for sub in subs:
            deliver = sub.deliver
            try:
                written = deliver is not None and deliver(message)
            except Exception:  # one broken connection must not cost the others their push:
                written = False  # its task meets the error, on its own stream
            if not written and not sub.push(message):
                too_slow.append(sub)
        for sub in too_slow:
            self.unsubscribe(sub)
            sub.close(CLOSE_TOO_SLOW, "too slow: reconnect and catch up by cursor")

    def _close(self, subs: Iterable[Subscription], reason: str) -> None:
        for sub in list(subs):
            self.unsubscribe(sub)
            sub.close(CLOSE_SESSION_ENDED, reason)

    async def close_staff(self, staff_id: str) -> None:
        org_id = staff_id.split("/", 1)[0]
        self._close([s for s in self._by_org.get(org_id, ()) if s.staff_id == staff_id],
                    "staff member removed")

    async def close_org(self, org_id: str) -> None:
        self._close(self._by_org.get(org_id, ()), "organisation revoked")

    async def close_session(self, token_hash: bytes) -> None:
        for subs in list(self._by_org.values()):
            self._close([s for s in subs if s.token_hash == token_hash], "session ended")

    async def close_all(self, code: int = 1001, reason: str = "relay shutting down") -> None:
        for subs in list(self._by_org.values()):
            for sub in list(subs):
                self.unsubscribe(sub)
                sub.close(code, reason)
