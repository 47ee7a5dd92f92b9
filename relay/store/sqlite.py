"""The SQLite implementation of the relay store (aiosqlite), with group commit.

Theory of operation
-------------------
One **writer** connection and a few **reader** connections open the same database file
in WAL mode with ``synchronous=FULL`` (a commit is on disk when it returns),
``secure_delete=ON`` (deleted bytes are overwritten) and foreign keys on.

Every write is a *job*: a plain function over the writer's ``sqlite3.Connection``. Jobs
queue up while the previous transaction is being committed; the writer then takes all of
them at once and runs them in **one** transaction (one fsync). A job's caller is answered
only after the shared commit returned, so every 2xx answer of the relay is durable, while
N concurrent sends cost one fsync instead of N. A job refuses (raises ``RelayError``) only
before its first write, so refusals need no undo; if a job fails any other way, the whole
transaction is rolled back and the batch redone with a savepoint around each job, so only
the failing job is lost and every other one is still answered.

Sends are stored all at once per batch (``_store_sends``: a handful of statements for the
whole batch), because the writer thread competes with the event loop for the GIL. WAL
checkpoints never run inside a commit: a separate connection checkpoints PASSIVE-ly every
half second on its own thread, so an answer never waits for pages being copied into the
database file (``purge`` still truncates the WAL on the writer, after deleting). Only a
write that finds every frame copied starts the WAL again from its beginning, so under
sustained load (commits landing while each background pass runs) the WAL would grow
without end, keeping old versions of deleted pages: once it is longer than
``wal_reset_frames``, the writer itself copies what the last background pass left, between
two batches, and its next write starts the WAL afresh (cut to ``journal_size_limit``).

The whole batch runs on aiosqlite's worker thread in a single hop (aiosqlite has no
public call for "run this function on your thread": ``_run_on_thread`` is the one place
that uses its private ``_execute``), so the event loop never blocks on SQLite and is not
woken once per statement.

Schema files ``schema/NNN_*.sql`` are applied in order, each in its own transaction, and
``schema_version`` records the last one applied: that is the upgrade path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from kokshared.private_files import make_private_dir

from ..errors import (
    IdempotencyConflict,
    NotReceived,
    NotRetractable,
    QuotaExceeded,
    RecipientUnknown,
    RelayError,
)
from . import sqlite_drops, sqlite_links
from .interface import LogIndexTaken
from .rows import (
    DropRow,
    GrantRow,
    LinkMailbox,
    LogAppend,
    MessageStatus,
    NewDrop,
    PurgeCounts,
    ReplayedSend,
    SendBatch,
    SessionRow,
    StoredMessage,
    StoreStats,
)
from .schema import schema_files
from .snapshot import BackupFacts, backup_sqlite

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], Any]

PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)
WRITER_PRAGMAS = (
    # Checkpoints run on their own connection and thread (see _checkpoint_loop), never
    # inside a commit that answers are waiting for.
    "PRAGMA wal_autocheckpoint=0",
    "PRAGMA journal_size_limit=67108864",
)
CHECKPOINT_INTERVAL = 0.5
WAL_RESET_FRAMES = 4096
"""WAL frames (16 MiB of 4 KiB pages) beyond which the writer finishes a checkpoint itself."""

_MESSAGE_COLUMNS = "cursor, id, to_org, epoch, sealed, received, expires"
_READERS = "(SELECT count(*) FROM receipts WHERE receipts.status_hash = ? AND has_read = 1)"
"""Readers of a message whose receipts are still kept (one ``?``: its status hash)."""


def _row_to_message(row: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(cursor=row[0], id=bytes(row[1]), to_org=row[2], epoch=row[3],
                         sealed=bytes(row[4]), received=row[5], expires=row[6])


class _PendingJob:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Job, future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.future = future


class _Unexpected(Exception):
    """A job failed other than by a refusal: the batch is redone with one savepoint per job."""


class _SendJob:
    """A send as a job; the writer stores all sends of a batch together (``_store_sends``)."""

    __slots__ = ("batch",)

    def __init__(self, batch: SendBatch) -> None:
        self.batch = batch

    def __call__(self, db: sqlite3.Connection) -> list[StoredMessage] | ReplayedSend:
        outcome = _store_sends(db, [self.batch])[0]
        if isinstance(outcome, RelayError):  # a refusal, raised before anything was written
            raise outcome
        return outcome


def _run_jobs(db: sqlite3.Connection, jobs: list[Job], isolated: bool) -> list[tuple[bool, Any]]:
    results: list[tuple[bool, Any] | None] = [None] * len(jobs)
    if not isolated:
        # Sends first and all at once: a handful of statements for the whole batch instead
        # of several per send (the writer thread competes with the event loop for the GIL).
        # Safe to reorder: no other job can concern a message whose send is not answered.
        sends = [(i, fn.batch) for i, fn in enumerate(jobs) if isinstance(fn, _SendJob)]
        if sends:
            try:
                outcomes = _store_sends(db, [batch for _, batch in sends])
            except Exception as exc:
                raise _Unexpected() from exc
            for (i, _), outcome in zip(sends, outcomes, strict=True):
                results[i] = (not isinstance(outcome, RelayError), outcome)
    for i, fn in enumerate(jobs):
        if results[i] is not None:
            continue
        if isolated:
            db.execute("SAVEPOINT job")
        try:
            value = fn(db)
        except RelayError as exc:  # a refusal: by contract raised before the job wrote
            if isolated:
                db.execute("ROLLBACK TO job")
                db.execute("RELEASE job")
            results[i] = (False, exc)
            continue
        except Exception as exc:
            if not isolated:
                raise _Unexpected() from exc
            db.execute("ROLLBACK TO job")
            db.execute("RELEASE job")
            results[i] = (False, exc)
            continue
        if isolated:
            db.execute("RELEASE job")
        results[i] = (True, value)
    return [r for r in results if r is not None]


def _run_batch(db: sqlite3.Connection, *, jobs: list[Job]) -> list[tuple[bool, Any]]:
    """Run jobs in one transaction and commit once. Runs on the DB thread.

    Jobs raise refusals (``RelayError``) only *before* their first write, so the fast path
    needs no savepoints. Any other exception may have left a job half done: then the whole
    transaction is rolled back and the batch redone with a savepoint around each job, so
    only the failing job is lost.
    """
    for isolated in (False, True):
        db.execute("BEGIN IMMEDIATE")
        try:
            results = _run_jobs(db, jobs, isolated)
            db.execute("COMMIT")
        except _Unexpected:
            db.execute("ROLLBACK")
            continue
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return results
    raise AssertionError("unreachable: the isolated pass never raises _Unexpected")


async def _run_on_thread(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn(sqlite3 connection)`` on the connection's own thread, in one hop."""
    return await conn._execute(lambda: fn(conn._conn))  # private: see module docstring


class SqliteStore:
    """``RelayStore`` over one SQLite file: a group-committing writer and pooled readers."""

    def __init__(self, path: Path, *, readers: int = 2, max_batch: int = 256,
                 wal_reset_frames: int = WAL_RESET_FRAMES,
                 checkpoint_interval: float = CHECKPOINT_INTERVAL) -> None:
        self.path = path
        self._reader_count = max(1, readers)
        self._max_batch = max(1, max_batch)
        self._wal_reset_frames = wal_reset_frames
        self._checkpoint_interval = checkpoint_interval
        self._writer_checkpoint = False
        """Set when the WAL is long: the writer checkpoints after its current batch."""
        self._writer: aiosqlite.Connection | None = None
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._jobs: asyncio.Queue[_PendingJob | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self.batches = 0
        self.jobs_done = 0
        # called with (jobs, seconds) after each group commit (metrics)
        self.commit_observer: Callable[[int, float], None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if not hasattr(aiosqlite.Connection, "_execute"):
            raise RuntimeError("this aiosqlite version lacks Connection._execute; pin aiosqlite")
        make_private_dir(self.path.parent)
        # created 0600 before SQLite opens it: SQLite gives its -wal and -shm files this mode
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._writer = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in (*PRAGMAS, *WRITER_PRAGMAS):
            await self._writer.execute(pragma)
        await _run_on_thread(self._writer, _upgrade_schema)
        self._checkpointer = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in PRAGMAS[1:]:
            await self._checkpointer.execute(pragma)
        for _ in range(self._reader_count):
            reader = await aiosqlite.connect(self.path, isolation_level=None)
            for pragma in PRAGMAS[2:]:
                await reader.execute(pragma)
            await reader.execute("PRAGMA query_only=ON")
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)
        loop = asyncio.get_running_loop()
        self._writer_task = loop.create_task(self._write_loop())
        self._checkpoint_task = loop.create_task(self._checkpoint_loop())

    async def close(self) -> None:
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoint_task
            self._checkpoint_task = None
        if self._checkpointer is not None:
            await self._checkpointer.close()
            self._checkpointer = None
        if self._writer_task is not None:
            self._jobs.put_nowait(None)
            await self._writer_task
            self._writer_task = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    # --- the writer --------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue a job; return its result once the transaction holding it has committed.

        Contract: a job raises a refusal (``RelayError``) only *before* its first write; any
        other exception makes the writer redo the batch with one savepoint per job.
        """
        if self._writer_task is None:
            raise RuntimeError("the store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait(_PendingJob(fn, future))
        return await future

    async def _write_loop(self) -> None:
        assert self._writer is not None
        stopping = False
        while not stopping:
            first = await self._jobs.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch and not self._jobs.empty():
                item = self._jobs.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            fns = [job.fn for job in batch]
            started = time.perf_counter()
            try:
                run = functools.partial(_run_batch, jobs=fns)
                results = await _run_on_thread(self._writer, run)
            except Exception as exc:  # the commit itself failed: nobody's write happened
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            self.batches += 1
            self.jobs_done += len(batch)
            if self.commit_observer is not None:
                self.commit_observer(len(batch), time.perf_counter() - started)
            for job, (ok, value) in zip(batch, results, strict=True):
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)
            if self._writer_checkpoint:  # after answering: only jobs queued meanwhile wait
                self._writer_checkpoint = False
                try:
                    await _run_on_thread(self._writer, _copy_wal)
                except sqlite3.Error:  # busy, or worse: never a reason to stop writing;
                    pass  # the background pass asks again

    async def _checkpoint_loop(self) -> None:
        """Copy committed WAL pages into the database in the background (PASSIVE: never
        blocks the writer or readers), so commits stay short and the WAL stays small."""
        while True:
            await asyncio.sleep(self._checkpoint_interval)
            await self._background_checkpoint()

    async def _background_checkpoint(self) -> None:
        assert self._checkpointer is not None
        try:
            rows = await self._checkpointer.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.OperationalError:  # busy: the next round catches up
            return
        frames = next(iter(rows))[1]
        if frames > self._wal_reset_frames:
            self._writer_checkpoint = True

    # --- readers -----------------------------------------------------------------------

    async def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        reader = await self._readers.get()
        try:
            rows = await reader.execute_fetchall(sql, params)
            return [tuple(row) for row in rows]
        finally:
            self._readers.put_nowait(reader)

    # --- key log -----------------------------------------------------------------------

    async def log_records(self, after: int = 0) -> list[tuple[bytes, bytes]]:
        rows = await self._read(
            "SELECT record, hash FROM log_entries WHERE idx >= ? ORDER BY idx", (after,))
        return [(bytes(r[0]), bytes(r[1])) for r in rows]

    async def append_log(self, append: LogAppend) -> None:
        def job(db: sqlite3.Connection) -> None:
            try:
                db.execute("INSERT INTO log_entries (idx, record, hash) VALUES (?, ?, ?)",
                           (append.index, append.record, append.hash))
            except sqlite3.IntegrityError:
                raise LogIndexTaken(append.index) from None
            if append.device_removed is not None:
                _forget_device(db, *append.device_removed, append.status_grace)
            if append.staff_removed is not None:
                _forget_staff(db, append.staff_removed, append.now, append.status_grace)
            if append.org_revoked is not None:
                _forget_org(db, append.org_revoked, append.now, append.status_grace)
            if append.epoch_of is not None and append.epoch is not None:
                db.execute(
                    "UPDATE grants SET expires = ? "
                    "WHERE org_id = ? AND epoch < ? AND expires IS NULL",
                    (append.retire_grants_at, append.epoch_of, append.epoch),
                )

        await self._write(job)

    # --- logins ------------------------------------------------------------------------

    async def add_challenge(self, nonce_hash: bytes, staff_id: str, expires: int) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO challenges (nonce_hash, staff_id, expires) VALUES (?, ?, ?)",
            (nonce_hash, staff_id, expires)))

    async def take_challenge(self, nonce_hash: bytes) -> tuple[str, int] | None:
        def job(db: sqlite3.Connection) -> tuple[str, int] | None:
            row = db.execute(
                "DELETE FROM challenges WHERE nonce_hash = ? RETURNING staff_id, expires",
                (nonce_hash,)).fetchone()
            return (row[0], row[1]) if row else None

        return await self._write(job)

    async def add_session(self, session: SessionRow) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO sessions (token_hash, staff_id, expires, device) VALUES (?, ?, ?, ?)",
            (session.token_hash, session.staff_id, session.expires, session.device)))

    async def delete_session(self, token_hash: bytes) -> None:
        await self._write(lambda db: db.execute(
            "DELETE FROM sessions WHERE token_hash = ?", (token_hash,)))

    async def live_sessions(self, now: int) -> list[SessionRow]:
        rows = await self._read(
            "SELECT token_hash, staff_id, expires, device FROM sessions WHERE expires > ?",
            (now,))
        return [SessionRow(bytes(r[0]), r[1], r[2], r[3]) for r in rows]

    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None:
        rows = await self._read(
            "SELECT token_hash, staff_id, expires, device FROM sessions "
            "WHERE token_hash = ? AND expires > ?", (token_hash, now))
        return SessionRow(bytes(rows[0][0]), rows[0][1], rows[0][2], rows[0][3]) if rows else None

    # --- grants ------------------------------------------------------------------------

    async def put_grants(self, org_id: str, epoch: int, grants: list[tuple[str, str, bytes]],
                         expires: int | None = None) -> int:
        def job(db: sqlite3.Connection) -> int:
            db.executemany(
                "INSERT INTO grants (org_id, epoch, staff_id, device, sealed, expires) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (org_id, epoch, staff_id, device) "
                "DO UPDATE SET sealed = excluded.sealed, "
                "expires = coalesce(grants.expires, excluded.expires)",
                [(org_id, epoch, staff_id, device, sealed, expires)
                 for staff_id, device, sealed in grants],
            )
            return len(grants)

        return await self._write(job)

    async def grants_for(self, staff_id: str, now: int, device: str = "") -> list[GrantRow]:
        rows = await self._read(
            "SELECT org_id, epoch, staff_id, sealed, device FROM grants "
            "WHERE staff_id = ? AND device IN (?, '') AND (expires IS NULL OR expires > ?) "
            "ORDER BY org_id, epoch, device", (staff_id, device, now))
        return [GrantRow(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    # --- messages ----------------------------------------------------------------------

    async def store_send(self, batch: SendBatch) -> list[StoredMessage] | ReplayedSend:
        return await self._write(_SendJob(batch))

    async def list_messages(
        self, org_id: str, after: int, limit: int, now: int
    ) -> list[StoredMessage]:
        rows = await self._read(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608 (constant column list)
            "WHERE to_org = ? AND cursor > ? AND expires > ? ORDER BY cursor LIMIT ?",
            (org_id, after, now, limit))
        return [_row_to_message(r) for r in rows]

    async def get_message(self, org_id: str, message_id: bytes, now: int) -> StoredMessage | None:
        rows = await self._read(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608 (constant column list)
            "WHERE id = ? AND to_org = ? AND expires > ?", (message_id, org_id, now))
        return _row_to_message(rows[0]) if rows else None

    async def acknowledge(
        self, org_id: str, message_id: bytes, staff_id: str, now: int, grace: int,
        device: str = ""
    ) -> bool | None:
        def job(db: sqlite3.Connection) -> bool | None:
            row = db.execute(
                "SELECT cursor, status_hash, expires FROM messages "
                "WHERE id = ? AND to_org = ? AND expires > ?",
                (message_id, org_id, now)).fetchone()
            if row is None:
                return None
            cursor, status_hash, expires = row
            db.execute("DELETE FROM device_deliveries WHERE message = ? AND staff_id = ? "
                       "AND device = ?", (cursor, staff_id, device))
            # the person counts once, with the first of their devices
            gone = db.execute("DELETE FROM deliveries WHERE message = ? AND staff_id = ?",
                              (cursor, staff_id)).rowcount
            if gone:
                db.execute("UPDATE messages SET acknowledged = acknowledged + 1 WHERE cursor = ?",
                           (cursor,))
                # from now on they may report it read, also after the envelope is gone
                db.execute("INSERT INTO receipts (message_id, staff_id, status_hash, expires) "
                           "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                           (message_id, staff_id, status_hash, expires))
            return _delete_if_delivered(db, cursor, grace) > 0

        return await self._write(job)

    async def message_status(self, status_hash: bytes, now: int) -> MessageStatus | None:
        rows = await self._read(
            f"SELECT acknowledged, recipients, expires, {_READERS} "  # noqa: S608 (constant)
            "FROM messages WHERE status_hash = ?", (status_hash, status_hash))
        if rows:
            acknowledged, recipients, expires, read = rows[0]
            state = "pending" if expires > now else "expired"
            return MessageStatus(state, acknowledged, recipients, read)
        rows = await self._read(
            f"SELECT state, acknowledged, recipients, read_by + {_READERS} "  # noqa: S608 (constant)
            "FROM status_tombstones WHERE status_hash = ? AND expires > ?",
            (status_hash, status_hash, now))
        return MessageStatus(*rows[0]) if rows else None

    async def report_read(self, staff_id: str, message_ids: tuple[bytes, ...], now: int) -> int:
        def job(db: sqlite3.Connection) -> int:
            found = {bytes(r[0]) for r in db.execute(
                "SELECT message_id FROM receipts "  # noqa: S608 (placeholders only)
                "WHERE staff_id = ? AND expires > ? AND message_id IN " + _in(list(message_ids)),
                (staff_id, now, *message_ids))}
            missing = [m for m in message_ids if m not in found]
            if missing:  # refused before the first write: nothing changes
                raise NotReceived(missing[0])
            return db.execute(
                "UPDATE receipts SET has_read = 1 "  # noqa: S608 (placeholders only)
                "WHERE staff_id = ? AND has_read = 0 AND message_id IN "
                + _in(list(message_ids)), (staff_id, *message_ids)).rowcount

        return await self._write(job)

    async def retract(self, status_hash: bytes, now: int, grace: int) -> MessageStatus | None:
        def job(db: sqlite3.Connection) -> MessageStatus | None:
            row = db.execute(
                "SELECT cursor, acknowledged, recipients, expires FROM messages "
                "WHERE status_hash = ?", (status_hash,)).fetchone()
            if row is not None:
                cursor, acknowledged, recipients, expires = row
                if expires <= now:
                    raise NotRetractable("The message has expired.")
                _tombstone(db, status_hash, "retracted", acknowledged, recipients, expires + grace)
                db.execute("DELETE FROM messages WHERE cursor = ?", (cursor,))
                read = db.execute(f"SELECT {_READERS}", (status_hash,)).fetchone()[0]
                return MessageStatus("retracted", acknowledged, recipients, read)
            row = db.execute(
                f"SELECT state, acknowledged, recipients, read_by + {_READERS} "  # noqa: S608 (constant)
                "FROM status_tombstones WHERE status_hash = ? AND expires > ?",
                (status_hash, status_hash, now)).fetchone()
            if row is None:
                return None
            if row[0] != "retracted":
                raise NotRetractable(f"The message can no longer be retracted: it is {row[0]}.")
            return MessageStatus(*row)

        return await self._write(job)

    # --- housekeeping ------------------------------------------------------------------

    async def purge(self, now: int, grace: int) -> PurgeCounts:
        counts = await self._write(lambda db: _purge(db, now, grace))
        await self._checkpoint()
        return counts

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, so deleted pages leave the WAL."""
        assert self._writer is not None

        def job(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

        # Queued like a job so it never runs inside the writer's open transaction.
        await self._write(lambda db: None)
        await _run_on_thread(self._writer, job)

    async def stats(self, now: int) -> StoreStats:
        queries = {
            "log_entries": "SELECT count(*) FROM log_entries",
            "messages": "SELECT count(*) FROM messages",
            "message_bytes": "SELECT coalesce(sum(size), 0) FROM messages",
            "pending_deliveries": "SELECT count(*) FROM deliveries",
            "tombstones": "SELECT count(*) FROM status_tombstones",
            "sessions": "SELECT count(*) FROM sessions WHERE expires > ?",
            "challenges": "SELECT count(*) FROM challenges WHERE expires > ?",
            "grants": "SELECT count(*) FROM grants",
            **sqlite_drops.STATS,
        }
        values = {name: (await self._read(sql, (now,) if "?" in sql else ()))[0][0]
                  for name, sql in queries.items()}
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        return StoreStats(database_bytes=size, **values)

    async def backup_to(self, target: Path,
                        keep_drop: Callable[[bytes], Awaitable[bool]]) -> BackupFacts:
        return await backup_sqlite(self.path, target, keep_drop)

    # --- file drops (SQL in sqlite_drops.py) ------------------------------------------

    async def create_drop(self, drop: NewDrop) -> None:
        await self._write(functools.partial(sqlite_drops.create, drop=drop))

    async def get_drop(self, drop_id: bytes) -> DropRow | None:
        rows = await self._read(sqlite_drops.SELECT_DROP, (drop_id,))
        if not rows:
            return None
        return sqlite_drops.drop_row(
            rows[0], await self._read(sqlite_drops.SELECT_DROP_ORGS, (drop_id,)))

    async def touch_drop(self, drop_id: bytes, idle_expires: int) -> None:
        await self._write(functools.partial(sqlite_drops.touch, drop_id=drop_id,
                                            idle_expires=idle_expires))

    async def complete_drop(self, drop_id: bytes, recipients: tuple[str, ...],
                            devices: tuple[tuple[str, str], ...] = ()) -> bool:
        return await self._write(functools.partial(sqlite_drops.complete, drop_id=drop_id,
                                                   recipients=recipients, devices=devices))

    async def delete_drop(self, drop_id: bytes) -> bool:
        return await self._write(functools.partial(sqlite_drops.delete, drop_id=drop_id))

    async def drop_pending(self, drop_id: bytes) -> list[str]:
        return [r[0] for r in await self._read(sqlite_drops.SELECT_PENDING, (drop_id,))]

    async def acknowledge_drop(self, drop_id: bytes, staff_id: str,
                               gone: tuple[str, ...], device: str = "") -> bool:
        return await self._write(functools.partial(
            sqlite_drops.acknowledge, drop_id=drop_id, staff_id=staff_id, gone=gone,
            device=device))

    async def drop_deliveries(self) -> list[tuple[bytes, str]]:
        return [(bytes(r[0]), r[1]) for r in await self._read(sqlite_drops.SELECT_ALL_PENDING)]

    async def forget_drop_deliveries(self, gone: list[tuple[bytes, str]]) -> list[bytes]:
        return await self._write(functools.partial(sqlite_drops.forget, gone=gone))

    async def delete_expired_drops(self, now: int) -> list[bytes]:
        return await self._write(functools.partial(sqlite_drops.delete_expired, now=now))

    async def drop_ids(self) -> set[bytes]:
        return {bytes(r[0]) for r in await self._read(sqlite_drops.SELECT_IDS)}

    # --- device-linking mailboxes (SQL in sqlite_links.py) -------------------------------

    async def open_link(self, nameplate: str, staff_id: str, device: str, expires: int,
                        now: int, max_open: int) -> bool:
        return await self._write(functools.partial(
            sqlite_links.open_link, nameplate=nameplate, staff_id=staff_id, device=device,
            expires=expires, now=now, max_open=max_open))

    async def post_link(self, nameplate: str, side: str, message: bytes, max_messages: int,
                        now: int) -> int | None:
        return await self._write(functools.partial(
            sqlite_links.post_link, nameplate=nameplate, side=side, message=message,
            max_messages=max_messages, now=now))

    async def read_link(self, nameplate: str, now: int) -> LinkMailbox | None:
        head = await self._read(sqlite_links.SELECT_MAILBOX, (nameplate, now))
        if not head:
            return None
        return sqlite_links.mailbox(nameplate, head[0],
                                    await self._read(sqlite_links.SELECT_MESSAGES, (nameplate,)))

    async def close_link(self, nameplate: str) -> bool:
        return await self._write(functools.partial(sqlite_links.close_link,
                                                   nameplate=nameplate))

    # --- when devices last logged in ------------------------------------------------------

    async def mark_device_seen(self, staff_id: str, device: str, day: int,
                               forget_before: int) -> None:
        def job(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO device_seen (staff_id, device, day) VALUES (?, ?, ?) "
                       "ON CONFLICT (staff_id, device) DO UPDATE SET day = max(day, excluded.day)",
                       (staff_id, device, day))
            db.execute("DELETE FROM device_seen WHERE day < ? AND staff_id <> ''",
                       (forget_before,))

        await self._write(job)

    async def devices_seen(self, staff_ids: list[str]) -> dict[tuple[str, str], int]:
        if not staff_ids:
            return {}
        places = _in(staff_ids)
        sql = "SELECT staff_id, device, day FROM device_seen WHERE staff_id IN " + places  # noqa: S608
        rows = await self._read(sql, tuple(staff_ids))
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}


# --- jobs (run on the writer thread, inside a savepoint) ------------------------------------


def _upgrade_schema(db: sqlite3.Connection) -> None:
    has_table = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    current = 0
    if has_table:
        row = db.execute("SELECT version FROM schema_version").fetchone()
        current = row[0] if row else 0
    files = schema_files()
    if current > len(files):
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this relay knows "
            f"({len(files)}): upgrade the relay software")
    for version, sql in files[current:]:
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(sql):
                db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _copy_wal(db: sqlite3.Connection) -> None:
    """Between two of its transactions, the only writer copies every WAL frame the readers
    allow into the database; the next write then starts the WAL from its beginning."""
    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _split_sql(script: str) -> list[str]:
    """Split a schema file into statements (triggers hold ``;`` inside BEGIN ... END)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer)
            buffer = ""
    if buffer.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buffer.splitlines()
    ):
        raise RuntimeError("a schema file ends with an incomplete statement")
    return statements


def _tombstone(db: sqlite3.Connection, status_hash: bytes, state: str, acknowledged: int,
               recipients: int, expires: int) -> None:
    db.execute(
        "INSERT INTO status_tombstones (status_hash, state, acknowledged, recipients, expires) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (status_hash) DO NOTHING",
        (status_hash, state, acknowledged, recipients, expires))


def _delete_if_delivered(db: sqlite3.Connection, cursor: int | None, grace: int) -> int:
    """Delete fully acknowledged messages (one, or all when ``cursor`` is None)."""
    where = ("recipients > 0 AND acknowledged >= recipients AND NOT EXISTS "
             "(SELECT 1 FROM device_deliveries WHERE message = messages.cursor)")
    params: tuple[int, ...] = (grace,)
    if cursor is not None:
        where += " AND cursor = ?"
        params = (grace, cursor)
    db.execute(
        "INSERT INTO status_tombstones (status_hash, state, acknowledged, recipients, expires) "
        "SELECT status_hash, 'delivered', acknowledged, recipients, expires + ? "
        "FROM messages WHERE " + where + " ON CONFLICT (status_hash) DO NOTHING", params)
    # ``where`` is one of the two constants above, never data.
    return db.execute("DELETE FROM messages WHERE " + where, params[1:]).rowcount  # noqa: S608


def _in(values: list[Any]) -> str:
    return "(" + ",".join("?" * len(values)) + ")"


def _store_sends(db: sqlite3.Connection, batches: list[SendBatch]
                 ) -> list[list[StoredMessage] | ReplayedSend | RelayError]:
    """Store several sends with a few statements; each send's refusal is its own outcome.

    Every check comes before the first write (see _run_batch): retries and conflicts by
    idempotency key (also between sends of this very batch), then each recipient's quota
    with the bytes already accepted in this batch counted.
    """
    keys = [b.key_hash for b in batches]
    known: dict[bytes, tuple[bytes, int, int]] = {
        bytes(r[0]): (bytes(r[1]), r[2], r[3]) for r in db.execute(
            "SELECT key_hash, request_hash, received, expires FROM idempotency "  # noqa: S608
            "WHERE key_hash IN " + _in(keys), keys)}
    orgs = sorted({m.to_org for b in batches for m in b.messages})
    usage: dict[str, int] = dict(db.execute(
        "SELECT org_id, bytes FROM mailbox_usage WHERE org_id IN " + _in(orgs),  # noqa: S608
        orgs).fetchall())
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
    next_cursor = (row[0] if row else 0) + 1
    outcomes: list[list[StoredMessage] | ReplayedSend | RelayError] = []
    idempotency, messages, deliveries, device_rows = [], [], [], []
    for batch in batches:
        seen = known.get(batch.key_hash)
        if seen is not None:
            outcomes.append(IdempotencyConflict() if seen[0] != batch.request_hash
                            else ReplayedSend(received=seen[1], expires=seen[2]))
            continue
        gone = [m.to_org for m in batch.messages if m.to_org in batch.revoked]
        if gone:  # revoked after the send was checked, before it was written
            outcomes.append(RecipientUnknown(f"{gone[0]} has been revoked from the network."))
            continue
        adding: dict[str, int] = {}
        for message in batch.messages:
            adding[message.to_org] = adding.get(message.to_org, 0) + len(message.sealed)
        full = [o for o, extra in adding.items() if usage.get(o, 0) + extra > batch.org_quota]
        if full:
            outcomes.append(QuotaExceeded(
                f"The mailbox of {full[0]} on this relay is full; try again later."))
            continue
        for org_id, extra in adding.items():
            usage[org_id] = usage.get(org_id, 0) + extra
        known[batch.key_hash] = (batch.request_hash, batch.received, batch.expires)
        idempotency.append((batch.key_hash, batch.request_hash, batch.received, batch.expires))
        stored = []
        for message in batch.messages:
            # A removal committed after the recipients were read must not leave them waiting.
            recipients = [s for s in message.recipients if s not in batch.removed]
            cursor, next_cursor = next_cursor, next_cursor + 1
            messages.append((cursor, message.id, message.to_org, message.epoch, message.sealed,
                             len(message.sealed), batch.received, batch.expires,
                             message.status_hash, len(recipients)))
            deliveries += [(cursor, staff_id) for staff_id in recipients]
            device_rows += [(cursor, staff_id, device) for staff_id, device in message.devices
                            if staff_id in recipients
                            and (staff_id, device) not in batch.removed_devices]
            stored.append(StoredMessage(cursor=cursor, id=message.id, to_org=message.to_org,
                                        epoch=message.epoch, sealed=message.sealed,
                                        received=batch.received, expires=batch.expires))
        outcomes.append(stored)
    db.executemany("INSERT INTO idempotency (key_hash, request_hash, received, expires) "
                   "VALUES (?, ?, ?, ?)", idempotency)
    # Explicit cursors continue the AUTOINCREMENT sequence (one writer: nobody races us).
    db.executemany("INSERT INTO messages (cursor, id, to_org, epoch, sealed, size, received, "
                   "expires, status_hash, recipients) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   messages)
    db.executemany("INSERT INTO deliveries (message, staff_id) VALUES (?, ?)", deliveries)
    db.executemany("INSERT INTO device_deliveries (message, staff_id, device) VALUES (?, ?, ?)",
                   device_rows)
    return outcomes


def _forget_device(db: sqlite3.Connection, staff_id: str, device: str, grace: int) -> None:
    """A removed device: end its sessions, drop its grants; it need no longer fetch anything."""
    db.execute("DELETE FROM sessions WHERE staff_id = ? AND device = ?", (staff_id, device))
    db.execute("DELETE FROM grants WHERE staff_id = ? AND device = ?", (staff_id, device))
    db.execute("DELETE FROM device_deliveries WHERE staff_id = ? AND device = ?",
               (staff_id, device))
    _delete_if_delivered(db, None, grace)
    sqlite_drops.forget_device(db, staff_id, device)


def _forget_staff(db: sqlite3.Connection, staff_id: str, now: int, grace: int) -> None:
    """A removed colleague: end their sessions, drop their grants and pending deliveries."""
    db.execute("DELETE FROM sessions WHERE staff_id = ?", (staff_id,))
    db.execute("DELETE FROM challenges WHERE staff_id = ?", (staff_id,))
    db.execute("DELETE FROM grants WHERE staff_id = ?", (staff_id,))
    # They can never acknowledge now, so they no longer count towards "delivered".
    db.execute("UPDATE messages SET recipients = recipients - 1 "
               "WHERE cursor IN (SELECT message FROM deliveries WHERE staff_id = ?)", (staff_id,))
    db.execute("DELETE FROM deliveries WHERE staff_id = ?", (staff_id,))
    db.execute("DELETE FROM device_deliveries WHERE staff_id = ?", (staff_id,))
    _delete_if_delivered(db, None, grace)


def _forget_org(db: sqlite3.Connection, org_id: str, now: int, grace: int) -> None:
    """A revoked organisation: end its sessions; drop its grants and its unreadable mailbox."""
    prefix = org_id + "/"
    for table in ("sessions", "challenges", "grants"):
        db.execute(f"DELETE FROM {table} WHERE substr(staff_id, 1, ?) = ?",  # noqa: S608
                   (len(prefix), prefix))
    db.execute(
        "INSERT INTO status_tombstones (status_hash, state, acknowledged, recipients, expires) "
        "SELECT status_hash, 'expired', acknowledged, recipients, expires + ? FROM messages "
        "WHERE to_org = ? ON CONFLICT (status_hash) DO NOTHING", (grace, org_id))
    db.execute("DELETE FROM messages WHERE to_org = ?", (org_id,))
    _retire_receipts(db, "substr(staff_id, 1, ?) = ?", (len(prefix), prefix))


def _retire_receipts(db: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> int:
    """Move the readers of the receipts ``where`` selects onto their tombstones, then delete
    those receipts: from then on nothing names who fetched or read those messages."""
    # ``where`` is a constant of this module, never data.
    db.execute(
        "UPDATE status_tombstones SET read_by = read_by + (SELECT count(*) FROM receipts "  # noqa: S608
        "WHERE receipts.status_hash = status_tombstones.status_hash AND has_read = 1 AND "
        + where + ") WHERE status_hash IN (SELECT status_hash FROM receipts WHERE has_read = 1 "
        "AND " + where + ")", params + params)
    return db.execute("DELETE FROM receipts WHERE " + where, params).rowcount  # noqa: S608


def _purge(db: sqlite3.Connection, now: int, grace: int) -> PurgeCounts:
    db.execute(
        "INSERT INTO status_tombstones (status_hash, state, acknowledged, recipients, expires) "
        "SELECT status_hash, 'expired', acknowledged, recipients, expires + ? FROM messages "
        "WHERE expires <= ? ON CONFLICT (status_hash) DO NOTHING", (grace, now))

    def delete(sql: str) -> int:
        return db.execute(sql, (now,)).rowcount

    messages = delete("DELETE FROM messages WHERE expires <= ?")
    return PurgeCounts(
        messages=messages,
        receipts=_retire_receipts(db, "expires <= ?", (now,)),
        tombstones=delete("DELETE FROM status_tombstones WHERE expires <= ?"),
        idempotency=delete("DELETE FROM idempotency WHERE expires <= ?"),
        challenges=delete("DELETE FROM challenges WHERE expires <= ?"),
        sessions=delete("DELETE FROM sessions WHERE expires <= ?"),
        grants=delete("DELETE FROM grants WHERE expires IS NOT NULL AND expires <= ?"),
        links=delete("DELETE FROM link_mailboxes WHERE expires <= ?"),
    )
