"""What this profile sent: recipients, time, subject and (asked of the relay) delivery.

The mailbox keeps one sealed record per sent message (``Sender.send``); this module lists
them newest first and, when asked, adds each one's delivery state through the same status
call as ``Client.status`` (the relay's answer for the status tokens), so no rule about
delivery is written twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import KokError
from .models import DeliveryStatus

if TYPE_CHECKING:
    from .mailbox import MailboxStore

DeliveryQuery = Callable[[str], Awaitable[DeliveryStatus]]
"""Asks the relay for a sent message's delivery (``Client.status``)."""


@dataclass(frozen=True)
class SentItem:
    """One message this profile sent."""

    id: str
    to: tuple[str, ...]
    subject: str
    sent: int
    thread: str
    delivery: DeliveryStatus | None = None
    """Per recipient org; None when not asked for, or the relay could not be asked."""

    @property
    def state(self) -> str | None:
        return self.delivery.state if self.delivery else None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "to": list(self.to), "subject": self.subject, "sent": self.sent,
                "thread": self.thread,
                "delivery": self.delivery.to_json() if self.delivery else None}


async def list_sent(store: MailboxStore, status: DeliveryQuery | None = None
                    ) -> list[SentItem]:
    """Every sent message, newest first; with ``status``, each one's delivery state too."""
    items = [SentItem(id=message_id, to=tuple(data.get("to") or ()),
                      subject=str(data.get("subject", "")), sent=sent,
                      thread=str(data.get("thread", "")))
             for message_id, sent, data in reversed(await store.sent_all())]
    items.sort(key=lambda s: s.sent, reverse=True)  # stable: same second, last sent first
    if not status or not items:
        return items
    answers = await asyncio.gather(*(status(s.id) for s in items),
                                   return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, KokError):
            raise answer
    return [SentItem(id=s.id, to=s.to, subject=s.subject, sent=s.sent, thread=s.thread,
                     delivery=a if isinstance(a, DeliveryStatus) else None)
            for s, a in zip(items, answers, strict=True)]


async def latest_sent_id(store: MailboxStore) -> str:
    """The id of the message sent last (for ``kok status`` without an id)."""
    items = await list_sent(store)
    if not items:
        from .errors import UsageError

        raise UsageError("nothing_sent")
    return items[0].id
