"""``kok relay migrate --to postgresql://...``: move a SQLite relay's rows to PostgreSQL.

Every row is copied as it is (cursors, expiries, hashes, sealed bytes), in one PostgreSQL
transaction: the copy lands completely or not at all. The SQLite database is held with a
write lock for the whole copy, so a relay that is still running cannot change it meanwhile
(its writes wait, then fail); stop the relay first. The target database must hold no relay
data yet. What the SQLite relay keeps only in memory at run time (removed staff, revoked
organisations) is rebuilt from the key log, exactly as a starting relay does. Afterwards
the row counts of both are compared, and the SQLite file is left as it was.

Each table's columns come from the SQLite file, not from a list here: a column a schema
adds is copied without anyone remembering to name it (one was forgotten before: the
per-device columns and tables of devices would have been lost).
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RelayConfig
from .postgres import PostgresStore

# The tables copied, in an order that satisfies the foreign keys. Their columns are read
# from the SQLite database itself, so a column a later schema adds is copied without being
# named here; a table this list does not know stops the migration (see ``plan``).
COPIED: tuple[str, ...] = (
    "log_entries", "challenges", "sessions", "grants", "messages", "deliveries",
    "device_deliveries", "status_tombstones", "receipts", "idempotency", "drops",
    "drop_orgs", "drop_deliveries", "drop_device_deliveries", "device_seen",
)
# The SQLite tables deliberately not copied, and why.
NOT_COPIED: dict[str, str] = {
    "schema_version": "the PostgreSQL schema has its own version",
    "sqlite_sequence": "SQLite's own; the message cursor sequence is set from it",
    "mailbox_usage": "recomputed from the copied messages",
    "link_mailboxes": "device-linking mailboxes live ten minutes; a link in progress is "
                      "started again after the move",
    "link_messages": "as link_mailboxes",
}
BYTES_KIND = (bytes, memoryview)


class MigrationError(Exception):
    """The migration cannot run; the message says why and how to fix it."""


@dataclass(frozen=True)
class Migrated:
    """Rows copied per table (equal in both databases afterwards)."""

    rows: dict[str, int]


def _value(boolean: bool, value: Any) -> Any:
    if boolean:
        return bool(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def sqlite_columns(source: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The columns of one SQLite table, in their order."""
    return tuple(row[1] for row in source.execute(f"PRAGMA table_info({table})"))


def plan(source: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """What will be copied: every table in ``COPIED`` with all its SQLite columns.

    A SQLite table that is neither copied nor in ``NOT_COPIED`` means a schema this code
    does not know (a newer relay's): refuse rather than leave its rows behind.
    """
    names = {row[0] for row in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    unknown = sorted(names - set(COPIED) - set(NOT_COPIED))
    if unknown:
        raise MigrationError(f"the SQLite database has tables this version cannot move "
                             f"({', '.join(unknown)}): migrate with the relay version that "
                             "wrote it")
    return {table: sqlite_columns(source, table) for table in COPIED if table in names}


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
    tables = plan(source)
    kinds = await _target_columns(target)
    for table, columns in tables.items():
        missing = [c for c in columns if (table, c) not in kinds]
        if missing:
            raise MigrationError(f"{table}: PostgreSQL has no column {', '.join(missing)}; "
                                 "its schema is older than the SQLite one")
    counts: dict[str, int] = {}

    async def job(db: Any) -> None:
        for table, columns in tables.items():
            booleans = [kinds[(table, c)] == "boolean" for c in columns]
            rows = [tuple(_value(b, v) for b, v in zip(booleans, row, strict=True))
                    for row in source.execute(
                        f"SELECT {', '.join(columns)} FROM {table}")]  # noqa: S608 (from the db)
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
    for table in tables:
        copied = (await target.fetch(f"SELECT count(*) FROM {table}"))[0][0]  # noqa: S608
        if copied != counts[table]:
            raise MigrationError(f"{table}: {counts[table]} rows in SQLite but {copied} in "
                                 "PostgreSQL after the copy")
    return Migrated(rows=counts)


async def _target_columns(target: PostgresStore) -> dict[tuple[str, str], str]:
    """(table, column) -> data type of every column in the PostgreSQL schema."""
    rows = await target.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema()")
    return {(str(t), str(c)): str(k) for t, c, k in rows}


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
