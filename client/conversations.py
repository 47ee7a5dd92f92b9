"""Search and threads over the local mailbox: nothing here asks the relay anything.

Search compares case-folded text (subject, body, sender org and its name, sender person)
of the decrypted messages in memory; the words searched for never leave the process.
A thread gathers received and sent messages that carry the same thread id (set by the
first message, kept by every reply), in the order they were sent. Sent messages keep no
body in the mailbox, so they appear with their subject and recipients.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .models import Message
from .orgs_list import display_name

if TYPE_CHECKING:
    from protocol.keylog import KeyLog

    from .context import ClientContext


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def search_messages(inbox: list[Message], log: KeyLog, text: str) -> list[Message]:
    """Messages of ``inbox`` whose subject, body, org or person contains ``text``, in order."""
    needle = _fold(text.strip())
    if not needle:
        raise UsageError("empty_search")
    orgs = log.orgs
    hits = []
    for m in inbox:
        org = orgs.get(m.from_org)
        haystack = " \n".join((m.subject, m.body, m.from_org, org.name if org else "",
                               m.from_staff, display_name(m.from_staff)))
        if needle in _fold(haystack):
            hits.append(m)
    return hits


@dataclass(frozen=True)
class ThreadEntry:
    """One message of a conversation: received (with body) or sent by us (without)."""

    id: str
    direction: str
    """``received`` or ``sent``."""
    sent: int
    subject: str
    from_org: str
    from_staff: str
    to: tuple[str, ...]
    body: str | None
    message: Message | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "direction": self.direction, "sent": self.sent,
                "subject": self.subject, "from_org": self.from_org,
                "from_staff": self.from_staff, "to": list(self.to), "body": self.body}


async def thread_of(ctx: ClientContext, inbox: list[Message], message_id: str
                    ) -> list[ThreadEntry]:
    """The conversation ``message_id`` (received or sent, id or prefix) belongs to, in order.

    ``inbox``: the received messages (``Client.inbox``) to pick the thread's ones from.
    """
    thread = await _thread_id(ctx, message_id)
    entries = [ThreadEntry(id=m.id, direction="received", sent=m.sent, subject=m.subject,
                           from_org=m.from_org, from_staff=m.from_staff, to=m.to, body=m.body,
                           message=m)
               for m in inbox if m.thread == thread]
    for sent_id, sent, data in await ctx.store.sent_all():
        if data.get("thread") == thread:
            entries.append(ThreadEntry(
                id=sent_id, direction="sent", sent=sent, subject=str(data.get("subject", "")),
                from_org=str(ctx.org_id), from_staff=str(ctx.staff_id),
                to=tuple(data.get("to") or ()), body=None))
    # Sent times have one-second resolution: within a second a reply follows its parent.
    parents = {e.id: e.message.reply_to for e in entries if e.message is not None}

    def depth(entry_id: str) -> int:
        seen: set[str] = set()
        while (parent := parents.get(entry_id)) and parent not in seen:
            seen.add(parent)
            entry_id = parent
        return len(seen)

    return sorted(entries, key=lambda e: (e.sent, depth(e.id)))


async def _thread_id(ctx: ClientContext, message_id: str) -> str:
    try:
        full = await ctx.store.resolve_id(message_id)
        row = await ctx.store.message(full)
        if row is not None:
            return str(row[0]["thread"])
    except UsageError as exc:
        if exc.code != "unknown_message":
            raise
    full = await ctx.store.resolve_id(message_id, table="sent")
    record = await ctx.store.sent(full)
    if record is None:
        raise UsageError("unknown_message", id=message_id)
    return str(record["thread"])
