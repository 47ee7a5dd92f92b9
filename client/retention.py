"""Local retention: a staff device forgets mail some days after it was read there.

Theory of operation
-------------------
Deleting epoch secrets (forward secrecy) protects nothing against a stolen or seized device
whose passphrase is known while the decrypted mail still sits in its mailbox. So every
device deletes a received message, with its attachment keys and drop references (all inside
the message's sealed row), ``retention_days`` after it was first **opened on this device**
(``kok read``/``show``, the app's message page: the row's ``read_at``). The number of days
is our own organisation's ``org_settings`` (SPEC.md section 6.8) from the verified key log,
else the default; settings from anywhere else are never consulted.

A message never opened must not vanish unseen, nor stay forever: it goes
``UNREAD_RETENTION_FACTOR`` times ``retention_days`` after it arrived. A message the person
marked **keep** (``Client.keep``) stays until the mark is taken away; an **export**
(``Client.export``) is the way to take a message into a case file, outside retention.

Our own sent records (subject, recipients, status tokens; never the body) go
``retention_days`` after sending, but not before every recipient's copy expired, so status
and retract keep working for the message's life. Quarantined envelopes go after the unread
bound. The purge runs whenever a profile is opened (every ``kok`` command, the app's start),
at every sync and while listening; ``secure_delete`` (``client.mailbox``) zeroes the deleted
rows in the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.keylog import MAX_SKEW

from .models import Message
from .org_settings import own_settings, unread_days

if TYPE_CHECKING:
    from .context import ClientContext

DAY = 86400


@dataclass(frozen=True)
class PurgeReport:
    """What one purge deleted from this device."""

    messages: int = 0
    sent: int = 0
    quarantined: int = 0

    @property
    def total(self) -> int:
        return self.messages + self.sent + self.quarantined


def deletes_at(received: int, read_at: int | None, keep: bool, retention_days: int
               ) -> int | None:
    """When retention deletes a message from this device (None: kept)."""
    if keep:
        return None
    if read_at is not None:
        return read_at + retention_days * DAY
    return received + unread_days(retention_days) * DAY


Marks = dict[str, tuple[bool, int | None]]
"""Per message id: marked keep, and when retention deletes it."""


async def marks(ctx: ClientContext) -> Marks:
    """Keep mark and deletion time of every stored message (nothing is opened)."""
    days = own_settings(ctx).retention_days
    return {message_id: (keep, deletes_at(received, read_at, keep, days))
            for message_id, received, read_at, keep in await ctx.store.retention_facts()}


def marked(message: Message, known: Marks) -> Message:
    """``message`` with its keep mark and deletion time from ``known``."""
    keep, when = known.get(message.id, (False, None))
    return dataclasses.replace(message, kept=keep, deletes_at=when)


async def purge(ctx: ClientContext) -> PurgeReport:
    """Delete everything retention says is due at ``ctx.now()``."""
    if ctx.kind == "network":
        return PurgeReport()
    now = ctx.now()
    days = own_settings(ctx).retention_days
    store = ctx.store
    due = [message_id for message_id, received, read_at, keep in await store.retention_facts()
           if (when := deletes_at(received, read_at, keep, days)) is not None and when <= now]
    messages = await store.purge_messages(due, MAX_SKEW)
    await store.forget_tombstones(now)
    # Only records old enough are opened: every kok command purges, and decrypting every
    # sent record each time would grow with the sent folder.
    sent_due = [message_id for message_id, sent, data in await store.sent_all(now - days * DAY)
                if _last_expiry(data, sent) + MAX_SKEW < now]
    sent = await store.delete_sent(sent_due)
    quarantined = await store.forget_quarantined(now - unread_days(days) * DAY)
    return PurgeReport(messages=messages, sent=sent, quarantined=quarantined)


def _last_expiry(data: dict[str, object], sent: int) -> int:
    """The latest expiry of any recipient's copy of a sent message."""
    recipients = data.get("recipients")
    times = [int(r["expires"]) for r in recipients if isinstance(r, dict) and "expires" in r] \
        if isinstance(recipients, list) else []
    return max(times, default=sent)
