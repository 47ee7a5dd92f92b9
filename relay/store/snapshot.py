"""Backing up and restoring the SQLite store's database file (``relay backup`` / ``restore``).

``backup_sqlite`` copies the live database with SQLite's online backup API in one step: one
read transaction, so the copy is the state of one instant, and in WAL mode the relay's
writer is not held up. Every drop complete in that state is handed to ``keep_drop`` (which
copies its file); drops it answers False for (deleted meanwhile) are removed from the copy.
The copy is then compacted (``VACUUM``), switched to a rollback journal (one
self-contained file) and fsynced, under a temporary name until it is whole.

``restore_sqlite`` puts such a copy in place of a stopped relay's database and moves the
message cursor sequence forward, so that clients which read cursors issued after the
backup was taken still see every message stored after the restore.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CURSOR_GAP", "BackupFacts", "BackupUnsupported", "backup_sqlite", "restore_sqlite"]

# Far more messages than a relay stores between two backups: cursors after a restore are
# larger than any a client saw before it.
CURSOR_GAP = 1 << 32


class BackupUnsupported(Exception):
    """This store is backed up with its own tools; the message names them."""


@dataclass(frozen=True)
class BackupFacts:
    """What a database copy holds (aggregate only), for the backup's manifest."""

    schema_version: int
    log_size: int
    log_head_hash: str
    messages: int
    drops: int


@contextlib.contextmanager
def _connect(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    db = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_live(live: Path, temp: Path) -> None:
    temp.unlink(missing_ok=True)
    with _connect(live) as src, _connect(temp) as dst:
        src.execute("PRAGMA busy_timeout=10000")
        src.backup(dst)  # pages=-1: everything in one step, so one instant's state


async def backup_sqlite(live: Path, target: Path,
                        keep_drop: Callable[[bytes], Awaitable[bool]]) -> BackupFacts:
    """Copy the database at ``live`` to the new file ``target`` (see the module docstring)."""
    import asyncio

    temp = target.with_name(target.name + ".tmp")
    await asyncio.to_thread(_copy_live, live, temp)
    with _connect(temp) as copy:
        complete = [bytes(r[0]) for r in copy.execute(
            "SELECT id FROM drops WHERE complete = 1 ORDER BY id")]
    gone = [drop_id for drop_id in complete if not await keep_drop(drop_id)]

    def finish() -> BackupFacts:
        with _connect(temp) as copy:
            copy.execute("PRAGMA foreign_keys=ON")
            copy.executemany("DELETE FROM drops WHERE id = ?", [(d,) for d in gone])
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("VACUUM")
            version = copy.execute("SELECT version FROM schema_version").fetchone()
            size, head = copy.execute(
                "SELECT count(*), (SELECT hash FROM log_entries ORDER BY idx DESC LIMIT 1) "
                "FROM log_entries").fetchone()
            messages = copy.execute("SELECT count(*) FROM messages").fetchone()[0]
        os.chmod(temp, 0o600)
        _fsync(temp)
        os.replace(temp, target)
        return BackupFacts(schema_version=int(version[0]) if version else 0,
                           log_size=int(size), log_head_hash=bytes(head or b"").hex(),
                           messages=int(messages), drops=len(complete) - len(gone))

    return await asyncio.to_thread(finish)


def restore_sqlite(copy: Path, target: Path) -> None:
    """Put the database ``copy`` at ``target`` (the relay is stopped; ``copy`` is consumed)."""
    with _connect(copy) as db:
        db.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'messages'",
                   (CURSOR_GAP,))
        db.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', ? WHERE NOT "
                   "EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages')",
                   (CURSOR_GAP,))
    _fsync(copy)
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(copy, target)
    _fsync(target.parent)
