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
shutting down). The caller only writes what it is given.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from ..config import LimitsConfig
from ..errors import TooManyConnections
from ..push import CLOSE_SESSION_ENDED, Closing, EventHub, Subscription
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
                     clock: Callable[[], int]) -> AsyncGenerator[StoredMessage | Closing, None]:
        """Envelopes after cursor ``after``, backlog then live; a ``Closing`` ends it."""
        last = after
        while True:
            page = await self.store.list_messages(session.org_id, last, BACKLOG_PAGE, clock())
            for message in page:
                if not self.sessions.still_valid(session, clock()):
                    yield SESSION_ENDED
                    return
                yield message
                last = message.cursor
            if len(page) < BACKLOG_PAGE:
                break
        try:
            while True:
                await sub.wait(self.recheck)
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
                    if item.cursor <= last:
                        continue
                    if not self.sessions.still_valid(session, clock()):
                        yield SESSION_ENDED
                        return
                    yield item
                    last = item.cursor
        finally:
            sub.stop_timer()
