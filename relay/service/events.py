"""Event streams: the backlog after a cursor, then live pushes, while the session lives.

Theory of operation
-------------------
A stream is opened (``open``) by subscribing to the hub *before* the backlog is read from
the store; ``stream`` then yields the backlog page by page and after it the pushed
envelopes, skipping any whose cursor it has already yielded. So an envelope stored while
the backlog is being read is yielded exactly once, and nothing falls between backlog and
live push (the store makes cursors visible in increasing order).

The session is checked before every envelope and every ``recheck`` seconds while nothing
arrives: a removal, revocation, logout or expiry ends the stream at the next envelope (not
after the whole backlog), with ``Closing(CLOSE_SESSION_ENDED)`` as its last item. The
hub ends a stream the same way when it closes the subscription (too slow, removal, relay
shutting down). The caller writes what it is given and, for live envelopes, lends the hub
its way of writing one at once (``write``): the same checks then run in the hub's loop,
with no task woken per stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from ..config import LimitsConfig
from ..errors import TooManyConnections
from ..push import CLOSE_SESSION_ENDED, Closing, Deliver, EventHub, Subscription
from ..store import StoredMessage
from ..store.interface import MailboxStore
from .sessions import Session, Sessions

BACKLOG_PAGE = 500
RECHECK = 30.0
"""Seconds between session checks on a stream where nothing arrives."""
SESSION_ENDED = Closing(CLOSE_SESSION_ENDED, "session ended")


class EventStreams:
    """Opening event streams within the per-person limit, and what each one carries."""

    def __init__(self, hub: EventHub, store: MailboxStore, sessions: Sessions,
                 limits: LimitsConfig, *, recheck: float = RECHECK) -> None:
        self.hub = hub
        self.store = store
        self.sessions = sessions
        self.limits = limits
        self.recheck = recheck

    def open(self, session: Session) -> Subscription:
        """Subscribe, unless the person already has as many streams as allowed.

        Counting and subscribing are one step (no ``await`` between them), so the limit
        holds exactly however many streams are opened at once.
        """
        if self.hub.count_for_staff(session.staff_id, session.org_id) >= (
                self.limits.max_event_streams_per_staff):
            raise TooManyConnections()
        return self.hub.subscribe(session.org_id, session.staff_id, session.token_hash)

    def close(self, sub: Subscription) -> None:
        """The stream is over: stop queueing for it."""
        self.hub.unsubscribe(sub)

    async def stream(self, session: Session, sub: Subscription, after: int,
                     clock: Callable[[], int], write: Deliver | None = None,
                     ) -> AsyncGenerator[StoredMessage | Closing, None]:
        """Envelopes after cursor ``after``, backlog then live; a ``Closing`` ends it.

        With ``write`` (the caller's way to put one envelope on its connection at once,
        False when it cannot take it now), a live stream that has nothing queued lets the
        hub deliver new envelopes through it directly: they are written without passing
        through this iterator (see ``relay.push``). Only what could not be written so is
        yielded, in order, after what was delivered before it.
        """
        sub.last = after
        while True:
            page = await self.store.list_messages(session.org_id, sub.last, BACKLOG_PAGE,
                                                  clock())
            for message in page:
                if not self.sessions.still_valid(session, clock()):
                    yield SESSION_ENDED
                    return
                yield message
                sub.last = message.cursor
            if len(page) < BACKLOG_PAGE:
                break
        deliver = None if write is None else self._deliverer(session, sub, clock, write)
        try:
            while True:
                if not sub.pending and sub.closing is None:
                    sub.deliver = deliver
                await sub.wait(self.recheck)
                sub.deliver = None
                if sub.closing is not None:
                    yield sub.closing
                    return
                if sub.recheck_due:
                    sub.recheck_due = False
                    if not self.sessions.still_valid(session, clock()):
                        yield SESSION_ENDED
                        return
                pending = sub.pending
                while pending:
                    item = pending.popleft()
                    if item.cursor <= sub.last:
                        continue
                    if not self.sessions.still_valid(session, clock()):
                        yield SESSION_ENDED
                        return
                    yield item
                    sub.last = item.cursor
        finally:
            sub.deliver = None
            sub.stop_timer()

    def _deliverer(self, session: Session, sub: Subscription, clock: Callable[[], int],
                   write: Deliver) -> Deliver:
        """The hub's way to hand ``sub`` an envelope at once: checked as a queued one would
        be (not sent before, session still valid), then written; False means queue it."""
        still_valid = self.sessions.still_valid

        def deliver(message: StoredMessage) -> bool:
            if message.cursor <= sub.last:
                return True  # sent with the backlog already
            if not still_valid(session, clock()) or not write(message):
                return False  # the stream's task ends it, or sends it once drained
            sub.last = message.cursor
            return True

        return deliver
