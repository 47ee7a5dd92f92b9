"""Pushing new envelopes to connected staff over their event streams.

Each open ``/v1/events`` WebSocket subscribes with its session. ``publish`` queues a stored
envelope for every subscriber of the recipient organisation; the socket's own task encodes
and sends it (``relay.wire.message_event`` encodes it once for all of them). A subscriber
that cannot keep up (its queue is full) is closed with 4408 and catches up by cursor when
it reconnects, so a slow client never makes the relay buffer without bound and nothing is
lost. ``close_staff``/``close_org`` end the streams of a removed staff member or revoked
organisation with 4401.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol.events import CLOSE_SESSION_ENDED, CLOSE_TOO_SLOW

from .store import StoredMessage

__all__ = ["CLOSE_SESSION_ENDED", "CLOSE_TOO_SLOW", "Closing", "EventHub", "Subscription"]
QUEUE_SIZE = 1024


@dataclass(frozen=True)
class Closing:
    """The sentinel queued to a subscriber that must close, with the close code."""

    code: int
    reason: str


@dataclass(eq=False)
class Subscription:
    """One open event stream."""

    org_id: str
    staff_id: str
    token_hash: bytes
    queue: asyncio.Queue[StoredMessage | Closing] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def close(self, code: int, reason: str) -> None:
        """Ask the stream's task to close (drops queued messages: they are in the store)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(Closing(code, reason))


class EventHub:
    """Subscribers per organisation."""

    def __init__(self) -> None:
        self._by_org: dict[str, set[Subscription]] = {}

    def subscribe(self, org_id: str, staff_id: str, token_hash: bytes) -> Subscription:
        sub = Subscription(org_id, staff_id, token_hash)
        self._by_org.setdefault(org_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._by_org.get(sub.org_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_org[sub.org_id]

    def has_subscribers(self, org_id: str) -> bool:
        """Is anyone of ``org_id`` listening here (worth fetching what another process stored)?"""
        return org_id in self._by_org

    def count_for_staff(self, staff_id: str, org_id: str) -> int:
        return sum(1 for s in self._by_org.get(org_id, ()) if s.staff_id == staff_id)

    def publish(self, message: StoredMessage) -> None:
        """Queue a stored envelope for every subscriber of its organisation."""
        for sub in list(self._by_org.get(message.to_org, ())):
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
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
