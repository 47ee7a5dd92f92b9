"""Device-linking mailboxes: the relay's part of ``kok device link`` (SPEC.md section 6.9).

Theory of operation
-------------------
A person links a new device by typing a one-time code from a device they already use.
The two devices run SPAKE2 and then exchange two encrypted messages; the relay only
carries the bytes between them, in a mailbox named by the code's first group (the
*nameplate*, drawn here at random among those not in use).

- The **existing side** (``a``) opens the mailbox with its session (``open``): the
  nameplate is part of the code, so it must be known before SPAKE2 starts. Afterwards
  only a session of that same device may post as ``a`` or read what ``b`` posted;
  anyone else is told the mailbox does not exist.
- The **new side** (``b``) has no session yet: it knows only the nameplate. It may read
  what ``a`` posted, post as ``b`` and close the mailbox. The handlers charge these calls
  to a budget of their own, so polling cannot starve logins or status queries.
- Each side posts at most ``LINK_MAX_MESSAGES`` messages of at most ``MAX_LINK_MESSAGE``
  bytes; a mailbox lives ``LINK_TTL`` seconds at most and is deleted at once when either
  side closes it (the new side after success, the existing side after a wrong code). A
  person has at most ``LINK_MAX_OPEN`` open at once.

Everything is in the store, nothing in memory, so several relay processes on one
PostgreSQL database serve the two sides from whichever process each request reaches.
The relay cannot open the messages and, without the code, cannot take part in SPAKE2
with more than one guess; the clients check everything (SPEC.md section 6.9).
"""

from __future__ import annotations

import secrets

from protocol.link import MAX_LINK_MESSAGE, NAMEPLATE_DIGITS

from ..errors import InvalidRequest, NotFound, TooManyLinks
from ..store.interface import LinkStore
from ..store.rows import LinkMailbox
from .sessions import Session

LINK_TTL = 600
"""Seconds a device-linking mailbox lives at most."""
LINK_MAX_MESSAGES = 2
"""Messages each side may post to one mailbox (SPAKE2, then one encrypted message)."""
LINK_MAX_OPEN = 3
"""Open mailboxes of one person at once."""
SIDES = ("a", "b")
_DRAWS = 16


class Links:
    """Opening, posting to, reading and closing device-linking mailboxes."""

    def __init__(self, store: LinkStore) -> None:
        self.store = store

    async def open(self, session: Session, now: int) -> tuple[str, int]:
        """A new, empty mailbox for the session's device: (nameplate, expires)."""
        expires = now + LINK_TTL
        for _ in range(_DRAWS):
            nameplate = f"{secrets.randbelow(10**NAMEPLATE_DIGITS):0{NAMEPLATE_DIGITS}d}"
            if await self.store.open_link(nameplate, session.staff_id, session.device,
                                          expires, now, LINK_MAX_OPEN):
                return nameplate, expires
        raise TooManyLinks("Too many devices are being linked on this relay right now: "
                           "try again in a few minutes.")

    async def post(self, nameplate: str, side: str, message: bytes, session: Session | None,
                   now: int) -> int:
        """Append one message of ``side``; returns how many that side has posted."""
        _check_size(message)
        await self._mailbox_for(nameplate, side, session, now)
        count = await self.store.post_link(nameplate, side, message, LINK_MAX_MESSAGES, now)
        if count is None:
            raise NotFound()
        return count

    async def read(self, nameplate: str, side: str, after: int, session: Session | None,
                   now: int) -> tuple[list[bytes], int]:
        """The messages ``side`` posted from position ``after`` on, and the mailbox's expiry.

        ``a``'s messages are for the new side (no session); ``b``'s only for the device that
        opened the mailbox.
        """
        reader = "b" if side == "a" else "a"
        box = await self._mailbox_for(nameplate, reader, session, now)
        posted = box.existing if side == "a" else box.new
        return list(posted[after:]), box.expires

    async def close(self, nameplate: str, now: int) -> None:
        """Delete a mailbox (either side may: after success, or after a wrong code)."""
        if await self.store.read_link(nameplate, now) is None:
            raise NotFound()
        await self.store.close_link(nameplate)

    async def _mailbox_for(self, nameplate: str, side: str, session: Session | None,
                           now: int) -> LinkMailbox:
        """The live mailbox if the caller may act as ``side``; else "no such mailbox"."""
        box = await self.store.read_link(nameplate, now)
        if box is None:
            raise NotFound()
        if side == "a" and (session is None or session.staff_id != box.staff_id
                            or session.device != box.device):
            raise NotFound()  # the same answer as for no mailbox: a probe learns nothing
        return box


def _check_size(message: bytes) -> None:
    if not message or len(message) > MAX_LINK_MESSAGE:
        raise InvalidRequest(f"A link message has 1 to {MAX_LINK_MESSAGE} bytes.")
