"""SQL for file drops, on the same SQLite store (writer with group commit, pooled readers).

The drop rows live in the same database as the mailboxes (schema ``002_drops.sql``) and go
through the same writer queue, so a drop's state changes commit with the same durability
and batching as every other write. The blob bytes are not here: ``relay.blobs`` holds them.

Each method is one transaction: it happens completely or raises and changes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Container
from dataclasses import dataclass

from ..errors import DropQuotaExceeded, RecipientUnknown
from .sqlite import SqliteStore


@dataclass(frozen=True)
class NewDrop:
    """A drop about to be created, with the recipient organisations' storage quota."""

    id: bytes
    size: int
    token_hash: bytes
    expires: int
    idle_expires: int
    orgs: tuple[str, ...]
    org_quota: int
    revoked: Container[str] = frozenset()
    """Orgs revoked meanwhile (read when the write runs): a drop for one of them is refused."""


@dataclass(frozen=True)
class DropRow:
    """A stored drop (no sender: the relay does not know it)."""

    id: bytes
    size: int
    token_hash: bytes
    expires: int
    idle_expires: int | None
    complete: bool
    orgs: tuple[str, ...]

    def alive(self, now: int) -> bool:
        """Not past its TTL, nor (while uploading) past its idle deadline."""
        if self.expires <= now:
            return False
        return self.complete or self.idle_expires is None or self.idle_expires > now


class DropStore:
    """Drop rows over a ``SqliteStore`` (uses its writer queue and readers)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def create(self, drop: NewDrop) -> None:
        """Insert a drop after checking every recipient org's drop storage quota."""

        def job(db: sqlite3.Connection) -> None:
            gone = [org_id for org_id in drop.orgs if org_id in drop.revoked]
            if gone:  # revoked after the recipients were checked, before this write
                raise RecipientUnknown(f"{gone[0]} has been revoked from the network.")
            for org_id in drop.orgs:
                used = db.execute(
                    "SELECT coalesce(sum(d.size), 0) FROM drops d "
                    "JOIN drop_orgs o ON o.drop_id = d.id WHERE o.org_id = ?",
                    (org_id,)).fetchone()[0]
                if used + drop.size > drop.org_quota:
                    raise DropQuotaExceeded(
                        f"The file storage for {org_id} on this relay is full "
                        f"({drop.org_quota} bytes); try again when earlier files are fetched.")
            db.execute(
                "INSERT INTO drops (id, size, token_hash, expires, idle_expires) "
                "VALUES (?, ?, ?, ?, ?)",
                (drop.id, drop.size, drop.token_hash, drop.expires, drop.idle_expires))
            db.executemany("INSERT INTO drop_orgs (drop_id, org_id) VALUES (?, ?)",
                           [(drop.id, org_id) for org_id in drop.orgs])

        await self.store.write(job)

    async def get(self, drop_id: bytes) -> DropRow | None:
        """One drop, whatever its state (the service decides what the caller may see)."""
        rows = await self.store.read(
            "SELECT id, size, token_hash, expires, idle_expires, complete FROM drops "
            "WHERE id = ?", (drop_id,))
        if not rows:
            return None
        orgs = await self.store.read(
            "SELECT org_id FROM drop_orgs WHERE drop_id = ? ORDER BY org_id", (drop_id,))
        r = rows[0]
        return DropRow(id=bytes(r[0]), size=r[1], token_hash=bytes(r[2]), expires=r[3],
                       idle_expires=r[4], complete=bool(r[5]), orgs=tuple(o[0] for o in orgs))

    async def touch(self, drop_id: bytes, idle_expires: int) -> None:
        """Bytes arrived: push the open upload's idle deadline out (never past its TTL)."""
        await self.store.write(lambda db: db.execute(
            "UPDATE drops SET idle_expires = min(?, expires) WHERE id = ? AND complete = 0",
            (idle_expires, drop_id)))

    async def complete(self, drop_id: bytes, recipients: tuple[str, ...]) -> bool:
        """Mark a drop complete with the staff who must acknowledge it; False if it is gone."""

        def job(db: sqlite3.Connection) -> bool:
            done = db.execute(
                "UPDATE drops SET complete = 1, idle_expires = NULL, recipients = ? "
                "WHERE id = ? AND complete = 0", (len(recipients), drop_id)).rowcount
            if done:
                db.executemany("INSERT INTO drop_deliveries (drop_id, staff_id) VALUES (?, ?)",
                               [(drop_id, staff_id) for staff_id in recipients])
                return True
            return db.execute("SELECT 1 FROM drops WHERE id = ?", (drop_id,)).fetchone() is not None

        return bool(await self.store.write(job))

    async def pending(self, drop_id: bytes) -> list[str]:
        """Staff who have not acknowledged a complete drop yet."""
        rows = await self.store.read(
            "SELECT staff_id FROM drop_deliveries WHERE drop_id = ?", (drop_id,))
        return [r[0] for r in rows]

    async def acknowledge(self, drop_id: bytes, staff_id: str, gone: tuple[str, ...]) -> bool:
        """Record ``staff_id``'s acknowledgement and forget ``gone`` (removed staff).

        Returns True if that was the last acknowledgement needed: the row is then deleted
        (the caller wipes the blob).
        """

        def job(db: sqlite3.Connection) -> bool:
            if db.execute("DELETE FROM drop_deliveries WHERE drop_id = ? AND staff_id = ?",
                          (drop_id, staff_id)).rowcount:
                db.execute("UPDATE drops SET acknowledged = acknowledged + 1 WHERE id = ?",
                           (drop_id,))
            _forget(db, drop_id, gone)
            return _delete_if_delivered(db, drop_id)

        return bool(await self.store.write(job))

    async def all_pending(self) -> list[tuple[bytes, str]]:
        """Every (drop, staff) delivery still outstanding (for the removed-staff sweep)."""
        rows = await self.store.read("SELECT drop_id, staff_id FROM drop_deliveries")
        return [(bytes(r[0]), r[1]) for r in rows]

    async def forget(self, gone: list[tuple[bytes, str]]) -> list[bytes]:
        """Drop deliveries to staff who can no longer fetch; returns the drops now delivered."""

        def job(db: sqlite3.Connection) -> list[bytes]:
            deleted = []
            for drop_id in dict.fromkeys(d for d, _ in gone):
                _forget(db, drop_id, tuple(s for d, s in gone if d == drop_id))
                if _delete_if_delivered(db, drop_id):
                    deleted.append(drop_id)
            return deleted

        return list(await self.store.write(job))

    async def delete_expired(self, now: int) -> list[bytes]:
        """Delete drops past their TTL and open uploads past their idle deadline."""

        def job(db: sqlite3.Connection) -> list[bytes]:
            rows = db.execute(
                "DELETE FROM drops WHERE expires <= ? "
                "OR (complete = 0 AND idle_expires IS NOT NULL AND idle_expires <= ?) "
                "RETURNING id", (now, now)).fetchall()
            return [bytes(r[0]) for r in rows]

        return list(await self.store.write(job))

    async def delete(self, drop_id: bytes) -> None:
        """Delete one drop's rows (the caller wipes the blob)."""
        await self.store.write(lambda db: db.execute("DELETE FROM drops WHERE id = ?",
                                                      (drop_id,)))

    async def ids(self) -> set[bytes]:
        """Every drop id with a row (for the orphaned-file sweep)."""
        return {bytes(r[0]) for r in await self.store.read("SELECT id FROM drops")}

    async def stats(self) -> tuple[int, int, int]:
        """(drops, complete drops, declared bytes): aggregate counts only."""
        rows = await self.store.read(
            "SELECT count(*), coalesce(sum(complete), 0), coalesce(sum(size), 0) FROM drops")
        return int(rows[0][0]), int(rows[0][1]), int(rows[0][2])


def _forget(db: sqlite3.Connection, drop_id: bytes, gone: tuple[str, ...]) -> None:
    """Removed staff can never acknowledge: they no longer count towards "delivered"."""
    for staff_id in gone:
        if db.execute("DELETE FROM drop_deliveries WHERE drop_id = ? AND staff_id = ?",
                      (drop_id, staff_id)).rowcount:
            db.execute("UPDATE drops SET recipients = recipients - 1 WHERE id = ?", (drop_id,))


def _delete_if_delivered(db: sqlite3.Connection, drop_id: bytes) -> bool:
    """Delete a complete drop that nobody is waiting for any more."""
    return db.execute(
        "DELETE FROM drops WHERE id = ? AND complete = 1 AND NOT EXISTS "
        "(SELECT 1 FROM drop_deliveries WHERE drop_id = ?)", (drop_id, drop_id)).rowcount > 0
