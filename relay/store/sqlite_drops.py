"""The SQL of file drops for ``SqliteStore``: jobs for its writer, queries for its readers.

The drop rows live in the same database as the mailboxes (schema ``002_drops.sql``) and go
through the same writer queue, so a drop's state changes commit with the same durability
and batching as every other write. The blob bytes are not here: ``relay.blobs`` holds them.

Each job runs inside the writer's transaction and refuses (raises ``RelayError``) only
before its first write, as the writer requires.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..errors import DropQuotaExceeded, RecipientUnknown
from .rows import DropRow, NewDrop

SELECT_DROP = ("SELECT id, size, token_hash, expires, idle_expires, complete FROM drops "
               "WHERE id = ?")
SELECT_DROP_ORGS = "SELECT org_id FROM drop_orgs WHERE drop_id = ? ORDER BY org_id"
SELECT_PENDING = "SELECT staff_id FROM drop_deliveries WHERE drop_id = ?"
SELECT_ALL_PENDING = "SELECT drop_id, staff_id FROM drop_deliveries"
SELECT_IDS = "SELECT id FROM drops"
STATS = {
    "drops": "SELECT count(*) FROM drops",
    "complete_drops": "SELECT coalesce(sum(complete), 0) FROM drops",
    "drop_bytes": "SELECT coalesce(sum(size), 0) FROM drops",
}


def drop_row(row: tuple[Any, ...], orgs: list[tuple[Any, ...]]) -> DropRow:
    """A ``DropRow`` from a ``SELECT_DROP`` row and its ``SELECT_DROP_ORGS`` rows."""
    return DropRow(id=bytes(row[0]), size=row[1], token_hash=bytes(row[2]), expires=row[3],
                   idle_expires=row[4], complete=bool(row[5]), orgs=tuple(o[0] for o in orgs))


def create(db: sqlite3.Connection, drop: NewDrop) -> None:
    """Insert a drop after checking every recipient org's drop storage quota."""
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
        "INSERT INTO drops (id, size, token_hash, expires, idle_expires) VALUES (?, ?, ?, ?, ?)",
        (drop.id, drop.size, drop.token_hash, drop.expires, drop.idle_expires))
    db.executemany("INSERT INTO drop_orgs (drop_id, org_id) VALUES (?, ?)",
                   [(drop.id, org_id) for org_id in drop.orgs])


def touch(db: sqlite3.Connection, drop_id: bytes, idle_expires: int) -> None:
    """Push an open upload's idle deadline out (never past its TTL)."""
    db.execute("UPDATE drops SET idle_expires = min(?, expires) WHERE id = ? AND complete = 0",
               (idle_expires, drop_id))


def complete(db: sqlite3.Connection, drop_id: bytes, recipients: tuple[str, ...],
             devices: tuple[tuple[str, str], ...] = ()) -> bool:
    """Mark a drop complete with its recipients and their devices; False if it is gone."""
    done = db.execute(
        "UPDATE drops SET complete = 1, idle_expires = NULL, recipients = ? "
        "WHERE id = ? AND complete = 0", (len(recipients), drop_id)).rowcount
    if done:
        db.executemany("INSERT INTO drop_deliveries (drop_id, staff_id) VALUES (?, ?)",
                       [(drop_id, staff_id) for staff_id in recipients])
        db.executemany("INSERT INTO drop_device_deliveries (drop_id, staff_id, device) "
                       "VALUES (?, ?, ?)", [(drop_id, s, d) for s, d in devices
                                            if s in recipients])
        return True
    return db.execute("SELECT 1 FROM drops WHERE id = ?", (drop_id,)).fetchone() is not None


def acknowledge(db: sqlite3.Connection, drop_id: bytes, staff_id: str,
                gone: tuple[str, ...], device: str = "") -> bool:
    """Record one device's acknowledgement, forget ``gone``; True if that deleted the drop."""
    db.execute("DELETE FROM drop_device_deliveries WHERE drop_id = ? AND staff_id = ? "
               "AND device = ?", (drop_id, staff_id, device))
    if db.execute("DELETE FROM drop_deliveries WHERE drop_id = ? AND staff_id = ?",
                  (drop_id, staff_id)).rowcount:
        db.execute("UPDATE drops SET acknowledged = acknowledged + 1 WHERE id = ?", (drop_id,))
    _forget(db, drop_id, gone)
    return _delete_if_delivered(db, drop_id)


def forget(db: sqlite3.Connection, gone: list[tuple[bytes, str]]) -> list[bytes]:
    """Forget deliveries to staff who can no longer fetch; the drops now delivered."""
    deleted = []
    for drop_id in dict.fromkeys(d for d, _ in gone):
        _forget(db, drop_id, tuple(s for d, s in gone if d == drop_id))
        if _delete_if_delivered(db, drop_id):
            deleted.append(drop_id)
    return deleted


def delete(db: sqlite3.Connection, drop_id: bytes) -> bool:
    """Delete one drop (its orgs and deliveries go with it: ON DELETE CASCADE)."""
    return db.execute("DELETE FROM drops WHERE id = ?", (drop_id,)).rowcount > 0


def delete_expired(db: sqlite3.Connection, now: int) -> list[bytes]:
    """Delete drops past their TTL and open uploads past their idle deadline."""
    rows = db.execute(
        "DELETE FROM drops WHERE expires <= ? "
        "OR (complete = 0 AND idle_expires IS NOT NULL AND idle_expires <= ?) "
        "RETURNING id", (now, now)).fetchall()
    return [bytes(r[0]) for r in rows]


def _forget(db: sqlite3.Connection, drop_id: bytes, gone: tuple[str, ...]) -> None:
    """Removed staff can never acknowledge: they no longer count towards "delivered"."""
    for staff_id in gone:
        db.execute("DELETE FROM drop_device_deliveries WHERE drop_id = ? AND staff_id = ?",
                   (drop_id, staff_id))
        if db.execute("DELETE FROM drop_deliveries WHERE drop_id = ? AND staff_id = ?",
                      (drop_id, staff_id)).rowcount:
            db.execute("UPDATE drops SET recipients = recipients - 1 WHERE id = ?", (drop_id,))


def _delete_if_delivered(db: sqlite3.Connection, drop_id: bytes) -> bool:
    """Delete a complete drop that no person and no device is waiting for any more."""
    return db.execute(
        "DELETE FROM drops WHERE id = ? AND complete = 1 AND NOT EXISTS "
        "(SELECT 1 FROM drop_deliveries WHERE drop_id = ?) AND NOT EXISTS "
        "(SELECT 1 FROM drop_device_deliveries WHERE drop_id = ?)",
        (drop_id, drop_id, drop_id)).rowcount > 0


def forget_device(db: sqlite3.Connection, staff_id: str, device: str) -> None:
    """A removed device need fetch nothing; drops thereby delivered go (their files are
    orphans the next purge deletes)."""
    waiting = [bytes(r[0]) for r in db.execute(
        "DELETE FROM drop_device_deliveries WHERE staff_id = ? AND device = ? "
        "RETURNING drop_id", (staff_id, device)).fetchall()]
    for drop_id in waiting:
        _delete_if_delivered(db, drop_id)
