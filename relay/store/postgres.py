"""The PostgreSQL implementation of the relay store (asyncpg), for several relay processes.

Theory of operation
-------------------
Every store method is **one transaction** on a pooled connection. A method returns only
after PostgreSQL has committed, and ``open`` refuses a server whose ``fsync`` or
``synchronous_commit`` is off, so a 2xx answer is on disk (or, with synchronous
replication, on the standbys too). Concurrent commits share WAL flushes inside PostgreSQL
itself, so there is no writer queue here.

Several relay processes, on one host or many, may use one database at once. The invariants
the SQLite store gets from its single writer are kept by the database:

- **Idempotency keys**: ``idempotency.key_hash`` is a primary key. Two processes storing
  one key at once cannot both commit; the loser retries and finds the winner's row, so it
  answers as a replay (or a conflict).
- **Quota and cursor order**: a send locks its recipients' ``mailbox_usage`` rows (in
  org order, ``FOR UPDATE``) before checking the quota and before taking cursors from the
  sequence. A second send to the same org waits until the first committed, so within one
  mailbox cursors become visible in increasing order and nobody catching up by cursor can
  skip a message that commits later.
- **k-of-n deletion, retraction**: the message row is locked (``FOR UPDATE``) before an
  acknowledgement or retraction changes it, so the last of n acknowledgements, from
  whichever process, is the one that deletes it and writes the tombstone.
- **Single-use challenges**: ``DELETE ... RETURNING``: of two concurrent takes only one
  gets the row.
- **Removal racing a send**: a key-log append holds the directory lock exclusively
  (a transaction advisory lock); sends and new drops hold it shared and read
  ``removed_staff``/``revoked_orgs`` under it. So a send either commits before the removal
  (whose transaction then deletes its deliveries) or reads the removal and skips the
  removed staff (or refuses a revoked org).
- **Key log**: ``log_entries.idx`` is a primary key; an append by a process whose copy of
  the log is behind fails with ``LogIndexTaken`` and the directory catches up and retries.

Deadlocks (several orgs locked in different orders by a send and a purge's trigger) and
serialisation failures are retried a few times; refusals (``RelayError``) roll back.

After a purge that deleted rows the store runs ``VACUUM`` on the tables that hold
ciphertext or secrets' hashes, so deleted tuples are pruned at once rather than at
autovacuum's leisure (schema_pg sets aggressive per-table autovacuum too).

Schema files ``schema_pg/NNN_*.sql`` are applied in order under a session advisory lock
(two processes starting together do not both migrate); ``schema_version`` records the
last one applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import (
    DropQuotaExceeded,
    IdempotencyConflict,
    NotReceived,
    NotRetractable,
    QuotaExceeded,
    RecipientUnknown,
    RelayError,
)
from . import postgres_links
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
from .snapshot import BackupFacts, BackupUnsupported

try:
    import asyncpg
except ImportError:  # the optional extra `postgresql` is not installed
    asyncpg = None

T = TypeVar("T")
Conn = Any  # asyncpg.Connection (asyncpg ships no type hints)

# Advisory lock keys (any 64-bit numbers no other application on the database uses).
MIGRATION_LOCK = 0x6B6F6B5F6D696772  # "kok_migr"
DIRECTORY_LOCK = 0x6B6F6B5F64697265  # "kok_dire"
RETRIES = 8
MAX_SEND_BATCH = 256
# Every committed change other relay processes must act on is announced on this channel
# (delivered at commit, never for a rolled-back transaction); see relay/pushbus.py.
CHANNEL = "kok_relay"
# Tables holding ciphertext or hashes of secrets: vacuumed after a purge deleted rows.
VACUUMED = ("messages", "deliveries", "device_deliveries", "status_tombstones", "idempotency",
            "challenges", "sessions", "grants", "drops", "drop_orgs", "drop_deliveries",
            "drop_device_deliveries", "receipts", "link_mailboxes", "link_messages")
# A send's recipients are read per batch from these, under the directory lock.
_MESSAGE_COLUMNS = "cursor, id, to_org, epoch, sealed, received, expires"
_READERS = "(SELECT count(*) FROM receipts WHERE receipts.status_hash = $1 AND has_read)"
"""Readers of a message whose receipts are still kept (``$1``: its status hash)."""


class PostgresUnavailable(RuntimeError):
    """asyncpg is not installed, or the server is unusable for the relay (says why)."""


def _message(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(cursor=row[0], id=bytes(row[1]), to_org=row[2], epoch=row[3],
                         sealed=bytes(row[4]), received=row[5], expires=row[6])


def _retryable(exc: BaseException) -> bool:
    return asyncpg is not None and isinstance(
        exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError)


class PostgresStore:
    """``RelayStore`` over one PostgreSQL database shared by any number of relay processes."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = max(2, pool_size)
        self._pool: Any = None
        self.retries = 0
        self.vacuum_after_purge = True
        self.instance = secrets.token_hex(8)
        self._sends: asyncio.Queue[tuple[SendBatch, asyncio.Future[Any]] | None] = (
            asyncio.Queue())
        self._sender: asyncio.Task[None] | None = None
        self.send_batches = 0
        """Names this process in its notifications (it acts on its own changes directly)."""

    # --- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if asyncpg is None:
            raise PostgresUnavailable(
                "a postgresql:// store needs asyncpg: pip install 'kok-relay[postgresql]'")
        try:
            # reset: asyncpg would send RESET ALL / UNLISTEN * / advisory unlock on every
            # release (a round trip per store call, ~12 % of the relay's CPU in a profile);
            # the store never changes session state (its advisory locks are per transaction,
            # the migration lock is released explicitly), so there is nothing to reset.
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size,
                                                   reset=_no_reset)
        except (OSError, asyncpg.PostgresError) as exc:
            raise PostgresUnavailable(
                f"cannot connect to the PostgreSQL store: {type(exc).__name__}: "
                f"{_without_secrets(str(exc), self.url)}") from None
        try:
            async with self._pool.acquire() as conn:
                await _require_durable(conn)
                await _upgrade_schema(conn)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._sender is not None:
            self._sends.put_nowait(None)  # queued sends finish first
            await self._sender
            self._sender = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    async def transaction(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn(connection)`` in one committed transaction, retrying on deadlock."""
        for attempt in range(RETRIES):
            async with self.pool.acquire() as conn:
                try:
                    async with conn.transaction():
                        return await fn(conn)
                except Exception as exc:
                    if not _retryable(exc) or attempt == RETRIES - 1:
                        raise
            self.retries += 1
            await asyncio.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Rows of one read-only query (sees every committed write)."""
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    # --- key log -----------------------------------------------------------------------

    async def log_records(self, after: int = 0) -> list[tuple[bytes, bytes]]:
        rows = await self.fetch(
            "SELECT record, hash FROM log_entries WHERE idx >= $1 ORDER BY idx", after)
        return [(bytes(r[0]), bytes(r[1])) for r in rows]

    async def append_log(self, append: LogAppend) -> None:
        async def job(db: Conn) -> None:
            await db.execute("SELECT pg_advisory_xact_lock($1)", DIRECTORY_LOCK)
            try:
                await db.execute("INSERT INTO log_entries (idx, record, hash) VALUES ($1, $2, $3)",
                                 append.index, append.record, append.hash)
            except asyncpg.UniqueViolationError:
                raise LogIndexTaken(append.index) from None
            if append.device_removed is not None:
                await _forget_device(db, *append.device_removed, append.status_grace)
            if append.staff_removed is not None:
                await _forget_staff(db, append.staff_removed, append.status_grace)
            if append.org_revoked is not None:
                await _forget_org(db, append.org_revoked, append.status_grace)
            if append.org_admitted is not None:
                await db.execute("DELETE FROM revoked_orgs WHERE org_id = $1",
                                 append.org_admitted)
            if append.epoch_of is not None and append.epoch is not None:
                await db.execute(
                    "UPDATE grants SET expires = $1 "
                    "WHERE org_id = $2 AND epoch < $3 AND expires IS NULL",
                    append.retire_grants_at, append.epoch_of, append.epoch)
            await _notify(db, {"k": "log", "i": self.instance, "n": append.index})

        await self.transaction(job)

    # --- logins ------------------------------------------------------------------------

    async def add_challenge(self, nonce_hash: bytes, staff_id: str, expires: int) -> None:
        await self.transaction(lambda db: db.execute(
            "INSERT INTO challenges (nonce_hash, staff_id, expires) VALUES ($1, $2, $3)",
            nonce_hash, staff_id, expires))

    async def take_challenge(self, nonce_hash: bytes) -> tuple[str, int] | None:
        row = await self.transaction(lambda db: db.fetchrow(
            "DELETE FROM challenges WHERE nonce_hash = $1 RETURNING staff_id, expires",
            nonce_hash))
        return (row[0], row[1]) if row else None

    async def add_session(self, session: SessionRow) -> None:
        await self.transaction(lambda db: db.execute(
            "INSERT INTO sessions (token_hash, staff_id, expires, device) "
            "VALUES ($1, $2, $3, $4)",
            session.token_hash, session.staff_id, session.expires, session.device))

    async def delete_session(self, token_hash: bytes) -> None:
        async def job(db: Conn) -> None:
            await db.execute("DELETE FROM sessions WHERE token_hash = $1", token_hash)
            await _notify(db, {"k": "logout", "i": self.instance, "h": token_hash.hex()})

        await self.transaction(job)

    async def live_sessions(self, now: int) -> list[SessionRow]:
        rows = await self.fetch(
            "SELECT token_hash, staff_id, expires, device FROM sessions WHERE expires > $1",
            now)
        return [SessionRow(bytes(r[0]), r[1], r[2], r[3]) for r in rows]

    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None:
        """One live session by its token's hash (another process may have created it)."""
        rows = await self.fetch(
            "SELECT token_hash, staff_id, expires, device FROM sessions "
            "WHERE token_hash = $1 AND expires > $2", token_hash, now)
        return SessionRow(bytes(rows[0][0]), rows[0][1], rows[0][2], rows[0][3]) if rows else None

    # --- grants ------------------------------------------------------------------------

    async def put_grants(self, org_id: str, epoch: int, grants: list[tuple[str, str, bytes]],
                         expires: int | None = None) -> int:
        async def job(db: Conn) -> int:
            await db.executemany(
                "INSERT INTO grants (org_id, epoch, staff_id, device, sealed, expires) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, epoch, staff_id, device) "
                "DO UPDATE SET sealed = excluded.sealed, "
                "expires = coalesce(grants.expires, excluded.expires)",
                [(org_id, epoch, staff_id, device, sealed, expires)
                 for staff_id, device, sealed in grants])
            return len(grants)

        return await self.transaction(job)

    async def grants_for(self, staff_id: str, now: int, device: str = "") -> list[GrantRow]:
        rows = await self.fetch(
            "SELECT org_id, epoch, staff_id, sealed, device FROM grants "
            "WHERE staff_id = $1 AND device IN ($3, '') AND (expires IS NULL OR expires > $2) "
            "ORDER BY org_id, epoch, device", staff_id, now, device)
        return [GrantRow(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    # --- messages ----------------------------------------------------------------------

    async def store_send(self, batch: SendBatch) -> list[StoredMessage] | ReplayedSend:
        """Queue a send; the sender loop stores every queued send in one transaction."""
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        future: asyncio.Future[list[StoredMessage] | ReplayedSend] = (
            asyncio.get_running_loop().create_future())
        self._sends.put_nowait((batch, future))
        return await future

    async def _send_loop(self) -> None:
        """Group commit: the sends that queued while the last commit ran share the next one
        (one WAL flush and one turn of each mailbox lock for all of them)."""
        stopping = False
        while not stopping:
            first = await self._sends.get()
            if first is None:
                return
            queued = [first]
            while len(queued) < MAX_SEND_BATCH and not self._sends.empty():
                item = self._sends.get_nowait()
                if item is None:
                    stopping = True
                    break
                queued.append(item)
            try:
                outcomes = await self._store_sends([b for b, _ in queued])
            except Exception as exc:  # the transaction failed: nobody's send happened
                for _, future in queued:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.send_batches += 1
            for (_, future), outcome in zip(queued, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, RelayError):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _store_sends(self, batches: list[SendBatch]
                           ) -> list[list[StoredMessage] | ReplayedSend | RelayError]:
        for _ in range(RETRIES):
            try:
                return await self.transaction(
                    lambda db: _store_sends(db, batches, self.instance))
            except asyncpg.UniqueViolationError:
                # Another process stored one of these idempotency keys a moment ago: the
                # retry finds its row and answers that send as a replay (or a conflict).
                self.retries += 1
                continue
        raise RuntimeError("sends kept colliding with concurrent writes")

    async def list_messages(
        self, org_id: str, after: int, limit: int, now: int
    ) -> list[StoredMessage]:
        rows = await self.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608 (constant column list)
            "WHERE to_org = $1 AND cursor > $2 AND expires > $3 ORDER BY cursor LIMIT $4",
            org_id, after, now, limit)
        return [_message(r) for r in rows]

    async def messages_at(self, cursors: list[int]) -> list[StoredMessage]:
        """Envelopes by cursor (for pushing what another process stored)."""
        rows = await self.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608 (constant column list)
            "WHERE cursor = ANY($1::bigint[]) ORDER BY cursor", cursors)
        return [_message(r) for r in rows]

    async def get_message(self, org_id: str, message_id: bytes, now: int) -> StoredMessage | None:
        rows = await self.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages "  # noqa: S608 (constant column list)
            "WHERE id = $1 AND to_org = $2 AND expires > $3", message_id, org_id, now)
        return _message(rows[0]) if rows else None

    async def acknowledge(
        self, org_id: str, message_id: bytes, staff_id: str, now: int, grace: int,
        device: str = ""
    ) -> bool | None:
        async def job(db: Conn) -> bool | None:
            row = await db.fetchrow(
                "SELECT cursor, status_hash, expires FROM messages "
                "WHERE id = $1 AND to_org = $2 AND expires > $3 FOR UPDATE",
                message_id, org_id, now)
            if row is None:
                return None
            cursor, status_hash, expires = row
            await db.execute("DELETE FROM device_deliveries WHERE message = $1 "
                             "AND staff_id = $2 AND device = $3", cursor, staff_id, device)
            # the person counts once, with the first of their devices
            gone = await db.fetchval(
                "DELETE FROM deliveries WHERE message = $1 AND staff_id = $2 RETURNING 1",
                cursor, staff_id)
            if gone:
                await db.execute(
                    "UPDATE messages SET acknowledged = acknowledged + 1 WHERE cursor = $1",
                    cursor)
                # from now on they may report it read, also after the envelope is gone
                await db.execute(
                    "INSERT INTO receipts (message_id, staff_id, status_hash, expires) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    message_id, staff_id, status_hash, expires)
            return await _delete_if_delivered(db, cursor, grace) > 0

        return await self.transaction(job)

    async def message_status(self, status_hash: bytes, now: int) -> MessageStatus | None:
        rows = await self.fetch(
            f"SELECT acknowledged, recipients, expires, {_READERS} "  # noqa: S608 (constant)
            "FROM messages WHERE status_hash = $1", status_hash)
        if rows:
            acknowledged, recipients, expires, read = rows[0]
            return MessageStatus("pending" if expires > now else "expired", acknowledged,
                                 recipients, read)
        rows = await self.fetch(
            f"SELECT state, acknowledged, recipients, read_by + {_READERS} "  # noqa: S608 (constant)
            "FROM status_tombstones WHERE status_hash = $1 AND expires > $2", status_hash, now)
        return MessageStatus(*rows[0]) if rows else None

    async def report_read(self, staff_id: str, message_ids: tuple[bytes, ...], now: int) -> int:
        async def job(db: Conn) -> int:
            rows = await db.fetch(
                "SELECT message_id FROM receipts WHERE staff_id = $1 AND expires > $2 "
                "AND message_id = ANY($3::bytea[]) FOR UPDATE", staff_id, now, list(message_ids))
            found = {bytes(r[0]) for r in rows}
            missing = [m for m in message_ids if m not in found]
            if missing:  # refused before the first write: nothing changes
                raise NotReceived(missing[0])
            status = await db.execute(
                "UPDATE receipts SET has_read = TRUE WHERE staff_id = $1 AND NOT has_read "
                "AND message_id = ANY($2::bytea[])", staff_id, list(message_ids))
            return int(status.rsplit(" ", 1)[-1])

        return await self.transaction(job)

    async def retract(self, status_hash: bytes, now: int, grace: int) -> MessageStatus | None:
        async def job(db: Conn) -> MessageStatus | None:
            row = await db.fetchrow(
                "SELECT cursor, acknowledged, recipients, expires FROM messages "
                "WHERE status_hash = $1 FOR UPDATE", status_hash)
            if row is not None:
                cursor, acknowledged, recipients, expires = row
                if expires <= now:
                    raise NotRetractable("The message has expired.")
                await _tombstone(db, status_hash, "retracted", acknowledged, recipients,
                                 expires + grace)
                await db.execute("DELETE FROM messages WHERE cursor = $1", cursor)
                read = await db.fetchval(f"SELECT {_READERS}", status_hash)
                return MessageStatus("retracted", acknowledged, recipients, read)
            row = await db.fetchrow(
                f"SELECT state, acknowledged, recipients, read_by + {_READERS} "  # noqa: S608 (constant)
                "FROM status_tombstones WHERE status_hash = $1 AND expires > $2",
                status_hash, now)
            if row is None:
                return None
            if row[0] != "retracted":
                raise NotRetractable(f"The message can no longer be retracted: it is {row[0]}.")
            return MessageStatus(*row)

        return await self.transaction(job)

    # --- housekeeping ------------------------------------------------------------------

    async def purge(self, now: int, grace: int) -> PurgeCounts:
        counts = await self.transaction(lambda db: _purge(db, now, grace))
        if counts.total() and self.vacuum_after_purge:
            await self.vacuum()
        return counts

    async def vacuum(self, *, full: bool = False) -> None:
        """Prune deleted rows now (VACUUM cannot run inside a transaction).

        ``full``: rewrite the tables into new files (VACUUM FULL), so no freed space with old
        bytes is left in them; it locks each table while it is rewritten.
        """
        async with self.pool.acquire() as conn:
            await conn.execute(("VACUUM FULL " if full else "VACUUM ") + ", ".join(VACUUMED))

    async def stats(self, now: int) -> StoreStats:
        row = await self.fetch(
            "SELECT (SELECT count(*) FROM log_entries), (SELECT count(*) FROM messages), "
            "(SELECT coalesce(sum(size), 0) FROM messages), (SELECT count(*) FROM deliveries), "
            "(SELECT count(*) FROM status_tombstones), "
            "(SELECT count(*) FROM sessions WHERE expires > $1), "
            "(SELECT count(*) FROM challenges WHERE expires > $1), "
            "(SELECT count(*) FROM grants), pg_database_size(current_database()), "
            "(SELECT count(*) FROM drops), (SELECT count(*) FROM drops WHERE complete), "
            "(SELECT coalesce(sum(size), 0) FROM drops)", now)
        values = [int(v) for v in row[0]]
        return StoreStats(*values)


    async def backup_to(self, target: Path,
                        keep_drop: Callable[[bytes], Awaitable[bool]]) -> BackupFacts:
        raise BackupUnsupported(
            "the relay's rows are in PostgreSQL: back them up with pg_dump (deploy/OPERATOR.md, "
            "Scaling out), and the blob folder with the file system's tools")

    # --- file drops ---------------------------------------------------------------------

    async def create_drop(self, drop: NewDrop) -> None:
        """Insert a drop after checking every recipient org's drop storage quota."""

        async def job(db: Conn) -> None:
            await db.execute("SELECT pg_advisory_xact_lock_shared($1)", DIRECTORY_LOCK)
            revoked = {r[0] for r in await db.fetch(
                "SELECT org_id FROM revoked_orgs WHERE org_id = ANY($1::text[])",
                list(drop.orgs))}
            gone = [o for o in drop.orgs if o in drop.revoked or o in revoked]
            if gone:  # revoked after the recipients were checked, before this write
                raise RecipientUnknown(f"{gone[0]} has been revoked from the network.")
            for org_id in sorted(drop.orgs):
                # One creator per org at a time, in any process: the sum below stays true.
                await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 "kok-drops/" + org_id)
                used = await db.fetchval(
                    "SELECT coalesce(sum(d.size), 0) FROM drops d "
                    "JOIN drop_orgs o ON o.drop_id = d.id WHERE o.org_id = $1", org_id)
                if used + drop.size > drop.org_quota:
                    raise DropQuotaExceeded(
                        f"The file storage for {org_id} on this relay is full "
                        f"({drop.org_quota} bytes); try again when earlier files are fetched.")
            await db.execute(
                "INSERT INTO drops (id, size, token_hash, expires, idle_expires) "
                "VALUES ($1, $2, $3, $4, $5)",
                drop.id, drop.size, drop.token_hash, drop.expires, drop.idle_expires)
            await db.executemany("INSERT INTO drop_orgs (drop_id, org_id) VALUES ($1, $2)",
                                 [(drop.id, org_id) for org_id in drop.orgs])

        await self.transaction(job)

    async def get_drop(self, drop_id: bytes) -> DropRow | None:
        """One drop, whatever its state (the service decides what the caller may see)."""
        rows = await self.fetch(
            "SELECT id, size, token_hash, expires, idle_expires, complete, "
            "array(SELECT org_id FROM drop_orgs WHERE drop_id = d.id ORDER BY org_id) "
            "FROM drops d WHERE id = $1", drop_id)
        if not rows:
            return None
        r = rows[0]
        return DropRow(id=bytes(r[0]), size=r[1], token_hash=bytes(r[2]), expires=r[3],
                       idle_expires=r[4], complete=bool(r[5]), orgs=tuple(r[6]))

    async def touch_drop(self, drop_id: bytes, idle_expires: int) -> None:
        """Bytes arrived: push the open upload's idle deadline out (never past its TTL)."""
        await self.transaction(lambda db: db.execute(
            "UPDATE drops SET idle_expires = least($1, expires) WHERE id = $2 AND NOT complete",
            idle_expires, drop_id))

    async def complete_drop(self, drop_id: bytes, recipients: tuple[str, ...],
                            devices: tuple[tuple[str, str], ...] = ()) -> bool:
        """Mark a drop complete with the staff and devices who must acknowledge it."""

        async def job(db: Conn) -> bool:
            done = await db.fetchval(
                "UPDATE drops SET complete = TRUE, idle_expires = NULL, recipients = $1 "
                "WHERE id = $2 AND NOT complete RETURNING 1", len(recipients), drop_id)
            if done:
                await db.executemany(
                    "INSERT INTO drop_deliveries (drop_id, staff_id) VALUES ($1, $2)",
                    [(drop_id, staff_id) for staff_id in recipients])
                await db.executemany(
                    "INSERT INTO drop_device_deliveries (drop_id, staff_id, device) "
                    "VALUES ($1, $2, $3)",
                    [(drop_id, s, d) for s, d in devices if s in recipients])
                return True
            return await db.fetchval("SELECT 1 FROM drops WHERE id = $1", drop_id) is not None

        return bool(await self.transaction(job))

    async def drop_pending(self, drop_id: bytes) -> list[str]:
        """Staff who have not acknowledged a complete drop yet."""
        rows = await self.fetch(
            "SELECT staff_id FROM drop_deliveries WHERE drop_id = $1", drop_id)
        return [r[0] for r in rows]

    async def acknowledge_drop(self, drop_id: bytes, staff_id: str,
                               gone: tuple[str, ...], device: str = "") -> bool:
        """Record one device's acknowledgement and forget ``gone``; True if it was deleted."""

        async def job(db: Conn) -> bool:
            await db.execute("SELECT 1 FROM drops WHERE id = $1 FOR UPDATE", drop_id)
            await db.execute("DELETE FROM drop_device_deliveries WHERE drop_id = $1 "
                             "AND staff_id = $2 AND device = $3", drop_id, staff_id, device)
            if await db.fetchval("DELETE FROM drop_deliveries WHERE drop_id = $1 "
                                 "AND staff_id = $2 RETURNING 1", drop_id, staff_id):
                await db.execute(
                    "UPDATE drops SET acknowledged = acknowledged + 1 WHERE id = $1", drop_id)
            await _forget_drop_staff(db, drop_id, gone)
            return await _delete_drop_if_delivered(db, drop_id)

        return bool(await self.transaction(job))

    async def drop_deliveries(self) -> list[tuple[bytes, str]]:
        """Every (drop, staff) delivery still outstanding (for the removed-staff sweep)."""
        rows = await self.fetch("SELECT drop_id, staff_id FROM drop_deliveries")
        return [(bytes(r[0]), r[1]) for r in rows]

    async def forget_drop_deliveries(self, gone: list[tuple[bytes, str]]) -> list[bytes]:
        """Drop deliveries to staff who can no longer fetch; returns the drops now delivered."""

        async def job(db: Conn) -> list[bytes]:
            deleted = []
            for drop_id in sorted(dict.fromkeys(d for d, _ in gone)):
                await db.execute("SELECT 1 FROM drops WHERE id = $1 FOR UPDATE", drop_id)
                await _forget_drop_staff(db, drop_id, tuple(s for d, s in gone if d == drop_id))
                if await _delete_drop_if_delivered(db, drop_id):
                    deleted.append(drop_id)
            return deleted

        return list(await self.transaction(job))

    async def delete_drop(self, drop_id: bytes) -> bool:
        """Delete a drop and its deliveries whatever its state (its uploader withdrew it)."""
        gone = await self.transaction(lambda db: db.fetchval(
            "DELETE FROM drops WHERE id = $1 RETURNING 1", drop_id))
        return gone is not None

    async def delete_expired_drops(self, now: int) -> list[bytes]:
        """Delete drops past their TTL and open uploads past their idle deadline."""
        rows = await self.transaction(lambda db: db.fetch(
            "DELETE FROM drops WHERE expires <= $1 "
            "OR (NOT complete AND idle_expires IS NOT NULL AND idle_expires <= $1) "
            "RETURNING id", now))
        return [bytes(r[0]) for r in rows]

    async def drop_ids(self) -> set[bytes]:
        """Every drop id with a row (for the orphaned-file sweep)."""
        return {bytes(r[0]) for r in await self.fetch("SELECT id FROM drops")}

    # --- device-linking mailboxes (SQL in postgres_links.py) -------------------------------

    async def open_link(self, nameplate: str, staff_id: str, device: str, expires: int,
                        now: int, max_open: int) -> bool:
        return await self.transaction(functools.partial(
            postgres_links.open_link, nameplate=nameplate, staff_id=staff_id, device=device,
            expires=expires, now=now, max_open=max_open))

    async def post_link(self, nameplate: str, side: str, message: bytes, max_messages: int,
                        now: int) -> int | None:
        return await self.transaction(functools.partial(
            postgres_links.post_link, nameplate=nameplate, side=side, message=message,
            max_messages=max_messages, now=now))

    async def read_link(self, nameplate: str, now: int) -> LinkMailbox | None:
        # one transaction, so the mailbox and its messages are of the same instant
        return await self.transaction(functools.partial(
            postgres_links.read_link, nameplate=nameplate, now=now))

    async def close_link(self, nameplate: str) -> bool:
        gone = await self.transaction(lambda db: db.fetchval(
            "DELETE FROM link_mailboxes WHERE nameplate = $1 RETURNING 1", nameplate))
        return gone is not None

    # --- when devices last logged in ------------------------------------------------------

    async def mark_device_seen(self, staff_id: str, device: str, day: int,
                               forget_before: int) -> None:
        async def job(db: Conn) -> None:
            await db.execute(
                "INSERT INTO device_seen (staff_id, device, day) VALUES ($1, $2, $3) "
                "ON CONFLICT (staff_id, device) DO UPDATE "
                "SET day = greatest(device_seen.day, excluded.day)", staff_id, device, day)
            await db.execute("DELETE FROM device_seen WHERE day < $1 AND staff_id <> ''",
                             forget_before)

        await self.transaction(job)

    async def devices_seen(self, staff_ids: list[str]) -> dict[tuple[str, str], int]:
        rows = await self.fetch("SELECT staff_id, device, day FROM device_seen "
                                "WHERE staff_id = ANY($1::text[])", staff_ids)
        return {(r[0], r[1]): int(r[2]) for r in rows}


# --- transactions ----------------------------------------------------------------------------


async def _require_durable(db: Conn) -> None:
    """Refuse a server on which a commit could be lost after the relay answered 2xx."""
    fsync = await db.fetchval("SHOW fsync")
    commit = await db.fetchval("SHOW synchronous_commit")
    if fsync != "on":
        raise PostgresUnavailable(
            "the PostgreSQL server runs with fsync=off: a crash could lose messages the relay "
            "has acknowledged; turn fsync on")
    if commit == "off":
        raise PostgresUnavailable(
            "the PostgreSQL server runs with synchronous_commit=off: a crash could lose "
            "messages the relay has acknowledged; set it to on (or remote_apply)")


async def _upgrade_schema(db: Conn) -> None:
    await db.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        exists = await db.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        current = 0
        if exists:
            current = await db.fetchval("SELECT version FROM schema_version") or 0
        files = schema_files("schema_pg")
        if current > len(files):
            raise PostgresUnavailable(
                f"the database is at schema version {current}, newer than this relay knows "
                f"({len(files)}): upgrade the relay software")
        for version, sql in files[current:]:
            async with db.transaction():
                await db.execute(sql)
                await db.execute("DELETE FROM schema_version")
                await db.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
    finally:
        await db.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


async def _no_reset(_conn: Conn) -> None:
    """A pooled connection needs no reset (see ``PostgresStore.open``)."""


async def _notify(db: Conn, event: dict[str, Any]) -> None:
    """Announce ``event`` to every relay process once this transaction commits."""
    await db.execute("SELECT pg_notify($1, $2)", CHANNEL,
                     json.dumps(event, separators=(",", ":")))


async def _tombstone(db: Conn, status_hash: bytes, state: str, acknowledged: int,
                     recipients: int, expires: int) -> None:
    await db.execute(
        "INSERT INTO status_tombstones (status_hash, state, acknowledged, recipients, expires) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (status_hash) DO NOTHING",
        status_hash, state, acknowledged, recipients, expires)


async def _delete_if_delivered(db: Conn, cursor: int | None, grace: int) -> int:
    """Delete fully acknowledged messages (one, or all when ``cursor`` is None)."""
    where = ("recipients > 0 AND acknowledged >= recipients AND NOT EXISTS "
             "(SELECT 1 FROM device_deliveries WHERE message = messages.cursor)")
    args: tuple[Any, ...] = ()
    if cursor is not None:
        where += " AND cursor = $2"
        args = (cursor,)
    return int(await db.fetchval(
        "WITH gone AS (DELETE FROM messages WHERE " + where + " "  # noqa: S608 (constants)
        "RETURNING status_hash, acknowledged, recipients, expires), "
        "kept AS (INSERT INTO status_tombstones "
        "(status_hash, state, acknowledged, recipients, expires) "
        "SELECT status_hash, 'delivered', acknowledged, recipients, expires + $1 FROM gone "
        "ON CONFLICT (status_hash) DO NOTHING) SELECT count(*) FROM gone", grace, *args))


async def _store_sends(db: Conn, batches: list[SendBatch], instance: str
                       ) -> list[list[StoredMessage] | ReplayedSend | RelayError]:
    """Several sends in one transaction; each send's refusal is its own outcome.

    Every check comes before the first write: retries and conflicts by idempotency key
    (also between sends of this very batch), revoked recipients, then each recipient's
    quota with the bytes already accepted in this batch counted, all under the locks that
    order this transaction with every other process's.
    """
    keys = [b.key_hash for b in batches]
    known: dict[bytes, tuple[bytes, int, int]] = {
        bytes(r[0]): (bytes(r[1]), r[2], r[3]) for r in await db.fetch(
            "SELECT key_hash, request_hash, received, expires FROM idempotency "
            "WHERE key_hash = ANY($1::bytea[])", keys)}
    # Shared directory lock: a removal or revocation commits wholly before or after us.
    await db.execute("SELECT pg_advisory_xact_lock_shared($1)", DIRECTORY_LOCK)
    orgs = sorted({m.to_org for b in batches for m in b.messages})
    staff = sorted({s for b in batches for m in b.messages for s in m.recipients})
    revoked = {r[0] for r in await db.fetch(
        "SELECT org_id FROM revoked_orgs WHERE org_id = ANY($1::text[])", orgs)}
    removed = {r[0] for r in await db.fetch(
        "SELECT staff_id FROM removed_staff WHERE staff_id = ANY($1::text[])", staff)}
    # Lock the recipients' usage rows in org order: the quota check and the cursors below
    # are then ordered with every other transaction storing to these orgs.
    await db.execute(
        "INSERT INTO mailbox_usage (org_id, bytes, messages) "
        "SELECT unnest($1::text[]), 0, 0 ON CONFLICT (org_id) DO NOTHING", orgs)
    usage: dict[str, int] = {r[0]: r[1] for r in await db.fetch(
        "SELECT org_id, bytes FROM mailbox_usage WHERE org_id = ANY($1::text[]) "
        "ORDER BY org_id FOR UPDATE", orgs)}
    outcomes: list[list[StoredMessage] | ReplayedSend | RelayError] = []
    accepted: list[SendBatch] = []
    for batch in batches:
        seen = known.get(batch.key_hash)
        if seen is not None:
            outcomes.append(IdempotencyConflict() if seen[0] != batch.request_hash
                            else ReplayedSend(received=seen[1], expires=seen[2]))
            continue
        gone = [m.to_org for m in batch.messages
                if m.to_org in batch.revoked or m.to_org in revoked]
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
        accepted.append(batch)
        outcomes.append([])  # filled in below, once cursors are taken
    if not accepted:
        return outcomes
    count = sum(len(b.messages) for b in accepted)
    cursors = iter(sorted(await db.fetchval(
        "SELECT array_agg(nextval('message_cursor')) FROM generate_series(1, $1)", count)))
    messages, deliveries, device_rows = [], [], []
    slots = iter(o for o in outcomes if isinstance(o, list))
    for batch in accepted:
        stored = next(slots)
        for message in batch.messages:
            cursor = next(cursors)
            # A removal committed after the recipients were read must not leave them waiting.
            recipients = [s for s in message.recipients
                          if s not in batch.removed and s not in removed]
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
    await db.copy_records_to_table(
        "idempotency", records=[(b.key_hash, b.request_hash, b.received, b.expires)
                                for b in accepted],
        columns=["key_hash", "request_hash", "received", "expires"])
    await db.copy_records_to_table(
        "messages", records=messages,
        columns=["cursor", "id", "to_org", "epoch", "sealed", "size", "received", "expires",
                 "status_hash", "recipients"])
    if deliveries:
        await db.copy_records_to_table("deliveries", records=deliveries,
                                       columns=["message", "staff_id"])
    if device_rows:
        await db.copy_records_to_table("device_deliveries", records=device_rows,
                                       columns=["message", "staff_id", "device"])
    pushed = [[m[2], m[0]] for m in messages]
    for start in range(0, len(pushed), 100):  # NOTIFY payloads stay well under 8000 bytes
        await _notify(db, {"k": "sent", "i": instance, "m": pushed[start:start + 100]})
    return outcomes


async def _forget_staff(db: Conn, staff_id: str, grace: int) -> None:
    """A removed colleague: end their sessions, drop their grants and pending deliveries."""
    await db.execute("INSERT INTO removed_staff (staff_id) VALUES ($1) ON CONFLICT DO NOTHING",
                     staff_id)
    for table in ("sessions", "challenges", "grants"):
        await db.execute(f"DELETE FROM {table} WHERE staff_id = $1", staff_id)  # noqa: S608
    # They can never acknowledge now, so they no longer count towards "delivered".
    await db.execute(
        "WITH gone AS (DELETE FROM deliveries WHERE staff_id = $1 RETURNING message) "
        "UPDATE messages SET recipients = recipients - 1 "
        "WHERE cursor IN (SELECT message FROM gone)",
        staff_id)
    await db.execute("DELETE FROM device_deliveries WHERE staff_id = $1", staff_id)
    await _delete_if_delivered(db, None, grace)


async def _forget_device(db: Conn, staff_id: str, device: str, grace: int) -> None:
    """A removed device: end its sessions, drop its grants; it need no longer fetch anything.

    Drops thereby delivered go too (their files are orphans the next purge deletes)."""
    for table in ("sessions", "grants", "device_deliveries"):
        await db.execute(f"DELETE FROM {table} WHERE staff_id = $1 AND device = $2",  # noqa: S608
                         staff_id, device)
    await _delete_if_delivered(db, None, grace)
    waiting = await db.fetch(
        "DELETE FROM drop_device_deliveries WHERE staff_id = $1 AND device = $2 "
        "RETURNING drop_id", staff_id, device)
    for row in waiting:
        await _delete_drop_if_delivered(db, bytes(row[0]))


async def _forget_org(db: Conn, org_id: str, grace: int) -> None:
    """A revoked organisation: end its sessions; drop its grants and its unreadable mailbox."""
    await db.execute("INSERT INTO revoked_orgs (org_id) VALUES ($1) ON CONFLICT DO NOTHING",
                     org_id)
    prefix = org_id + "/"
    for table in ("sessions", "challenges", "grants"):
        await db.execute(f"DELETE FROM {table} WHERE starts_with(staff_id, $1)",  # noqa: S608
                         prefix)
    await db.execute(
        "WITH gone AS (DELETE FROM messages WHERE to_org = $1 "
        "RETURNING status_hash, acknowledged, recipients, expires) "
        "INSERT INTO status_tombstones (status_hash, state, acknowledged, recipients, expires) "
        "SELECT status_hash, 'expired', acknowledged, recipients, expires + $2 FROM gone "
        "ON CONFLICT (status_hash) DO NOTHING", org_id, grace)
    await _retire_receipts(db, "starts_with(staff_id, $1)", prefix)


async def _retire_receipts(db: Conn, where: str, arg: Any) -> int:
    """Move the readers of the receipts ``where`` selects (``$1``: ``arg``) onto their
    tombstones, then delete those receipts: from then on nothing names who fetched or read."""
    # ``where`` is a constant of this module, never data.
    await db.execute(
        "UPDATE status_tombstones t SET read_by = t.read_by + r.n FROM "  # noqa: S608
        "(SELECT status_hash, count(*) AS n FROM receipts WHERE has_read AND " + where + " "
        "GROUP BY status_hash) r WHERE t.status_hash = r.status_hash", arg)
    status = await db.execute("DELETE FROM receipts WHERE " + where, arg)  # noqa: S608
    return int(status.rsplit(" ", 1)[-1])


async def _purge(db: Conn, now: int, grace: int) -> PurgeCounts:
    expired = await db.fetchval(
        "WITH gone AS (DELETE FROM messages WHERE expires <= $1 "
        "RETURNING status_hash, acknowledged, recipients, expires), "
        "kept AS (INSERT INTO status_tombstones "
        "(status_hash, state, acknowledged, recipients, expires) "
        "SELECT status_hash, 'expired', acknowledged, recipients, expires + $2 FROM gone "
        "ON CONFLICT (status_hash) DO NOTHING) SELECT count(*) FROM gone", now, grace)

    async def delete(sql: str) -> int:
        status = await db.execute(sql, now)
        return int(status.rsplit(" ", 1)[-1])

    return PurgeCounts(
        messages=int(expired),
        receipts=await _retire_receipts(db, "expires <= $1", now),
        tombstones=await delete("DELETE FROM status_tombstones WHERE expires <= $1"),
        idempotency=await delete("DELETE FROM idempotency WHERE expires <= $1"),
        challenges=await delete("DELETE FROM challenges WHERE expires <= $1"),
        sessions=await delete("DELETE FROM sessions WHERE expires <= $1"),
        grants=await delete("DELETE FROM grants WHERE expires IS NOT NULL AND expires <= $1"),
        links=await delete("DELETE FROM link_mailboxes WHERE expires <= $1"),
    )


def _without_secrets(text: str, url: str) -> str:
    """An error text with the URL's password (if any) cut out."""
    with contextlib.suppress(Exception):
        from urllib.parse import urlsplit

        password = urlsplit(url).password
        if password:
            text = text.replace(password, "***")
    return text


async def _forget_drop_staff(db: Conn, drop_id: bytes, gone: tuple[str, ...]) -> None:
    """Removed staff can never acknowledge: they no longer count towards "delivered"."""
    if not gone:
        return
    await db.execute("DELETE FROM drop_device_deliveries WHERE drop_id = $1 "
                     "AND staff_id = ANY($2::text[])", drop_id, list(gone))
    await db.execute(
        "WITH g AS (DELETE FROM drop_deliveries WHERE drop_id = $1 AND staff_id = ANY($2::text[]) "
        "RETURNING 1) UPDATE drops SET recipients = recipients - (SELECT count(*) FROM g) "
        "WHERE id = $1", drop_id, list(gone))


async def _delete_drop_if_delivered(db: Conn, drop_id: bytes) -> bool:
    """Delete a complete drop that nobody is waiting for any more."""
    return await db.fetchval(
        "DELETE FROM drops WHERE id = $1 AND complete AND NOT EXISTS "
        "(SELECT 1 FROM drop_deliveries WHERE drop_id = $1) AND NOT EXISTS "
        "(SELECT 1 FROM drop_device_deliveries WHERE drop_id = $1) RETURNING 1",
        drop_id) is not None
