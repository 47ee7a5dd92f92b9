"""``kok relay migrate --to postgresql://...``: move a SQLite relay's rows to PostgreSQL.

Every row is copied as it is (cursors, expiries, hashes, sealed bytes), in one PostgreSQL
transaction: the copy lands completely or not at all. The SQLite database is held with a
write lock for the whole copy, so a relay that is still running cannot change it meanwhile
(its writes wait, then fail); stop the relay first. The target database must hold no relay
data yet. What the SQLite relay keeps only in memory at run time (removed staff, revoked
organisations) is rebuilt from the key log, exactly as a starting relay does. Afterwards
the row counts of both are compared, and the SQLite file is left as it was.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RelayConfig
from .postgres import PostgresStore

# (table, columns) in an order that satisfies the foreign keys.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("log_entries", ("idx", "record", "hash")),
    ("challenges", ("nonce_hash", "staff_id", "expires")),
    ("sessions", ("token_hash", "staff_id", "expires")),
    ("grants", ("org_id", "epoch", "staff_id", "sealed", "expires")),
    ("messages", ("cursor", "id", "to_org", "epoch", "sealed", "size", "received", "expires",
                  "status_hash", "recipients", "acknowledged")),
    ("deliveries", ("message", "staff_id")),
    ("status_tombstones", ("status_hash", "state", "acknowledged", "recipients", "expires",
                           "read_by")),
    ("receipts", ("message_id", "staff_id", "status_hash", "has_read", "expires")),
    ("idempotency", ("key_hash", "request_hash", "received", "expires")),
    ("drops", ("id", "size", "token_hash", "expires", "idle_expires", "complete",
               "recipients", "acknowledged")),
    ("drop_orgs", ("drop_id", "org_id")),
    ("drop_deliveries", ("drop_id", "staff_id")),
    ("device_seen", ("staff_id", "device", "day")),
)
BOOLEAN_COLUMNS = {("drops", "complete"), ("receipts", "has_read")}
BYTES_KIND = (bytes, memoryview)


class MigrationError(Exception):
    """The migration cannot run; the message says why and how to fix it."""


@dataclass(frozen=True)
class Migrated:
    """Rows copied per table (equal in both databases afterwards)."""

    rows: dict[str, int]


def _value(table: str, column: str, value: Any) -> Any:
    if (table, column) in BOOLEAN_COLUMNS:
        return bool(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def lock_sqlite(path: Path) -> sqlite3.Connection:
    """The relay's SQLite database, write-locked (nobody changes it while we copy)."""
    if not path.exists():
        raise MigrationError(f"there is no SQLite database at {path}")
    source = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None,
                             timeout=5.0)
    try:
        source.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        source.close()
        raise MigrationError(f"the SQLite database is busy ({exc}): stop the relay first"
                             ) from None
    return source


def migrate_sqlite_to_postgres(config: RelayConfig, url: str, now: int) -> Migrated:
    """Copy the relay's SQLite rows into the (empty) PostgreSQL database at ``url``."""
    source = lock_sqlite(config.database_path)
    try:
        return asyncio.run(_migrate(config, source, url, now))
    finally:
        source.execute("ROLLBACK")
        source.close()


async def _migrate(config: RelayConfig, source: sqlite3.Connection, url: str,
                   now: int) -> Migrated:
    target = PostgresStore(url, pool_size=2)
    await target.open()
    try:
        return await _copy(config, source, target, now)
    finally:
        await target.close()


async def _copy(config: RelayConfig, source: sqlite3.Connection, target: PostgresStore,
                now: int) -> Migrated:
    held = (await target.fetch(
        "SELECT (SELECT count(*) FROM log_entries) + (SELECT count(*) FROM messages) "
        "+ (SELECT count(*) FROM drops)"))[0][0]
    if held:
        raise MigrationError("the PostgreSQL database already holds relay data: migrate into "
                             "a new, empty database")
    removed, revoked = await _removals(config, source, now)
    counts: dict[str, int] = {}

    async def job(db: Any) -> None:
        for table, columns in TABLES:
            rows = [tuple(_value(table, c, v) for c, v in zip(columns, row, strict=True))
                    for row in source.execute(
                        f"SELECT {', '.join(columns)} FROM {table}")]  # noqa: S608 (constants)
            if rows:
                await db.copy_records_to_table(table, records=rows, columns=list(columns))
            counts[table] = len(rows)
        # Usage follows from the messages themselves (whatever triggers COPY fired).
        await db.execute("DELETE FROM mailbox_usage")
        await db.execute("INSERT INTO mailbox_usage (org_id, bytes, messages) "
                         "SELECT to_org, sum(size), count(*) FROM messages GROUP BY to_org")
        await db.execute("SELECT setval('message_cursor', greatest(1, $1::bigint))",
                         max(_sqlite_sequence(source), _max_cursor(source)))
        await db.executemany("INSERT INTO removed_staff (staff_id) VALUES ($1)",
                             [(s,) for s in sorted(removed)])
        await db.executemany("INSERT INTO revoked_orgs (org_id) VALUES ($1)",
                             [(o,) for o in sorted(revoked)])

    await target.transaction(job)
    for table, _ in TABLES:
        copied = (await target.fetch(f"SELECT count(*) FROM {table}"))[0][0]  # noqa: S608
        if copied != counts[table]:
            raise MigrationError(f"{table}: {counts[table]} rows in SQLite but {copied} in "
                                 "PostgreSQL after the copy")
    return Migrated(rows=counts)


def _sqlite_sequence(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
    return int(row[0]) if row else 0


def _max_cursor(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT coalesce(max(cursor), 0) FROM messages").fetchone()[0])


async def _removals(config: RelayConfig, source: sqlite3.Connection,
                    now: int) -> tuple[set[str], set[str]]:
    """Removed staff and revoked orgs, from the key log replayed as a starting relay does."""
    from protocol import SigningKeyPair

    from ..service.directory import Directory

    class _LogOnly:
        async def log_records(self, after: int = 0) -> list[tuple[bytes, bytes]]:
            return [(bytes(r[0]), bytes(r[1])) for r in source.execute(
                "SELECT record, hash FROM log_entries WHERE idx >= ? ORDER BY idx", (after,))]

    directory = Directory(_LogOnly(), config.network.network_key,  # type: ignore[arg-type]
                          SigningKeyPair.from_seed(config.log_seed),
                          max_ttl=config.limits.max_ttl, status_grace=config.limits.status_grace)
    await directory.load(now)
    return set(directory.removed_staff), set(directory.revoked_orgs)
