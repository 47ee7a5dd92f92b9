"""The PostgreSQL statements of device-linking mailboxes (``PostgresStore`` calls these).

Several relay processes may serve one mailbox's two sides. Posting locks the mailbox row
(``FOR UPDATE``) before counting that side's messages, so two posts never take one
position; opening takes a transaction advisory lock on the person's staff id before
counting their open mailboxes, so the limit holds across processes.
"""

from __future__ import annotations

from typing import Any

from ..errors import LinkSideDone, TooManyLinks
from .rows import LinkMailbox

Conn = Any  # asyncpg.Connection


async def open_link(db: Conn, *, nameplate: str, staff_id: str, device: str, expires: int,
                    now: int, max_open: int) -> bool:
    await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))", staff_id)
    await db.execute("DELETE FROM link_mailboxes WHERE nameplate = $1 AND expires <= $2",
                     nameplate, now)
    live = await db.fetchval(
        "SELECT count(*) FROM link_mailboxes WHERE staff_id = $1 AND expires > $2",
        staff_id, now)
    if live >= max_open:
        raise TooManyLinks()
    inserted = await db.fetchval(
        "INSERT INTO link_mailboxes (nameplate, staff_id, device, expires) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (nameplate) DO NOTHING RETURNING 1",
        nameplate, staff_id, device, expires)
    return inserted is not None


async def post_link(db: Conn, *, nameplate: str, side: str, message: bytes,
                    max_messages: int, now: int) -> int | None:
    found = await db.fetchval(
        "SELECT 1 FROM link_mailboxes WHERE nameplate = $1 AND expires > $2 FOR UPDATE",
        nameplate, now)
    if found is None:
        return None
    count = int(await db.fetchval(
        "SELECT count(*) FROM link_messages WHERE nameplate = $1 AND side = $2", nameplate, side))
    if count >= max_messages:
        raise LinkSideDone()
    await db.execute("INSERT INTO link_messages (nameplate, side, idx, body) "
                     "VALUES ($1, $2, $3, $4)", nameplate, side, count, message)
    return count + 1


async def read_link(db: Conn, *, nameplate: str, now: int) -> LinkMailbox | None:
    head = await db.fetchrow("SELECT staff_id, device, expires FROM link_mailboxes "
                             "WHERE nameplate = $1 AND expires > $2", nameplate, now)
    if head is None:
        return None
    rows = await db.fetch("SELECT side, body FROM link_messages WHERE nameplate = $1 "
                          "ORDER BY side, idx", nameplate)
    return LinkMailbox(nameplate=nameplate, staff_id=head[0], device=head[1], expires=head[2],
                       existing=tuple(bytes(r[1]) for r in rows if r[0] == "a"),
                       new=tuple(bytes(r[1]) for r in rows if r[0] == "b"))
