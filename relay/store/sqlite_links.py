"""The SQLite statements of device-linking mailboxes (``SqliteStore`` calls these).

Each function runs inside the store's one writer transaction (``SqliteStore._write``), so
"count, then insert" is one step: no two posts of one side get the same position, and no
person opens more mailboxes than allowed.
"""

from __future__ import annotations

import sqlite3

from ..errors import LinkSideDone, TooManyLinks
from .rows import LinkMailbox


def open_link(db: sqlite3.Connection, *, nameplate: str, staff_id: str, device: str,
              expires: int, now: int, max_open: int) -> bool:
    db.execute("DELETE FROM link_mailboxes WHERE nameplate = ? AND expires <= ?",
                (nameplate, now))
    live = db.execute("SELECT count(*) FROM link_mailboxes WHERE staff_id = ? AND expires > ?",
                      (staff_id, now)).fetchone()[0]
    if live >= max_open:
        raise TooManyLinks()
    inserted = db.execute(
        "INSERT INTO link_mailboxes (nameplate, staff_id, device, expires) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (nameplate) DO NOTHING", (nameplate, staff_id, device, expires)).rowcount
    return bool(inserted)


def post_link(db: sqlite3.Connection, *, nameplate: str, side: str, message: bytes,
              max_messages: int, now: int) -> int | None:
    if db.execute("SELECT 1 FROM link_mailboxes WHERE nameplate = ? AND expires > ?",
                  (nameplate, now)).fetchone() is None:
        return None
    count = db.execute("SELECT count(*) FROM link_messages WHERE nameplate = ? AND side = ?",
                       (nameplate, side)).fetchone()[0]
    if count >= max_messages:
        raise LinkSideDone()
    db.execute("INSERT INTO link_messages (nameplate, side, idx, body) VALUES (?, ?, ?, ?)",
               (nameplate, side, count, message))
    return int(count) + 1


def close_link(db: sqlite3.Connection, *, nameplate: str) -> bool:
    return bool(db.execute("DELETE FROM link_mailboxes WHERE nameplate = ?",
                           (nameplate,)).rowcount)


SELECT_MAILBOX = ("SELECT staff_id, device, expires FROM link_mailboxes "
                  "WHERE nameplate = ? AND expires > ?")
SELECT_MESSAGES = "SELECT side, body FROM link_messages WHERE nameplate = ? ORDER BY side, idx"


def mailbox(nameplate: str, head: tuple[object, ...],
            messages: list[tuple[object, ...]]) -> LinkMailbox:
    """A mailbox row and its messages as a ``LinkMailbox``."""
    staff_id, device, expires = head
    return LinkMailbox(
        nameplate=nameplate, staff_id=str(staff_id), device=str(device),
        expires=int(expires),  # type: ignore[call-overload]
        existing=tuple(bytes(body) for side, body in messages  # type: ignore[call-overload]
                       if side == "a"),
        new=tuple(bytes(body) for side, body in messages  # type: ignore[call-overload]
                  if side == "b"))
