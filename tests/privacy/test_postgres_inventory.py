"""The PostgreSQL store's live schema against docs/privacy.md, after a full exchange.

Section 3 of docs/privacy.md says the PostgreSQL store holds every table and column of the
SQLite store (section 2) except SQLite's own ``sqlite_sequence``, plus the rows of its own
table. This reads ``information_schema`` of a real PostgreSQL database the relay used and
checks both directions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.privacy.exchange import run_exchange
from tests.privacy.inventory import inventory, unlisted, unseen

SQLITE_ONLY = {"sqlite_sequence.name", "sqlite_sequence.seq"}


async def _columns(url: str) -> tuple[set[str], int]:
    """Every ``table.column`` of the relay's schema, and how many log entries it holds."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()")
        entries = await conn.fetchval("SELECT count(*) FROM log_entries")
    finally:
        await conn.close()
    return {f"{row['table_name']}.{row['column_name']}" for row in rows}, int(entries)


def test_postgres_columns_are_all_listed(pg_cluster: Any, tmp_path: Path) -> None:
    url = pg_cluster.new_database()
    run_exchange(tmp_path, store_url=url)
    found, entries = asyncio.run(_columns(url))
    assert entries > 10  # the exchange really went to PostgreSQL
    listed = (inventory("relay-sqlite") - SQLITE_ONLY) | inventory("relay-postgresql")
    missing = unlisted(found, listed)
    assert not missing, (
        f"the PostgreSQL store holds {sorted(missing)}, which docs/privacy.md (sections 2 and "
        "3) does not list: add a row saying what it holds, its form, who could link it and "
        "what deletes it")
    stale = unseen(listed, found)
    assert not stale, (f"docs/privacy.md lists {sorted(stale)} for PostgreSQL, which its "
                       "schema no longer has")
