"""Relay test fixtures: an HTTP helper bound to the session relay, unique org ids.

``shared_relay`` is parametrised by store here: every test of tests/relay that uses it (or
``api``) runs against a relay on SQLite and again against one on a real PostgreSQL server
(a throw-away cluster, see tests/support/pgcluster.py; skipped with the reason where
PostgreSQL is missing, a failure under CI=true).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.support.actors import Api
from tests.support.pgcluster import PgCluster
from tests.support.relayproc import RelayProcess

_counter = itertools.count()


def unique(prefix: str) -> str:
    """An org id no other test on the shared relay uses."""
    return f"{prefix}-{os.getpid() % 10000}-{next(_counter)}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def shared_relay(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """One relay per store kind for the whole session (tests only add their own orgs)."""
    store_url = ""
    if request.param == "postgresql":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        store_url = cluster.new_database()
    process = RelayProcess.start(tmp_path_factory.mktemp(f"shared-relay-{request.param}"),
                                 network_profile=True, store_url=store_url)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(shared_relay: RelayProcess, http: aiohttp.ClientSession) -> Api:
    """The HTTP helper against the session-wide relay."""
    return Api(shared_relay.url, http)


def _placeholders(sql: str) -> str:
    """SQLite's ``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    parts = sql.split("?")
    return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))


async def db_rows(relay: RelayProcess, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows of a read-only query on the relay's store, whichever kind it is."""
    url = relay.env.get("KOK_RELAY_STORE_URL", "")
    if url:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(_placeholders(sql), *params)]
        finally:
            await conn.close()
    import sqlite3

    with sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True) as db:
        return [tuple(r) for r in db.execute(sql, params).fetchall()]


async def db_columns(relay: RelayProcess) -> dict[str, list[str]]:
    """Every table of the relay's store with its column names."""
    if relay.env.get("KOK_RELAY_STORE_URL"):
        rows = await db_rows(relay, "SELECT table_name, column_name FROM "
                                    "information_schema.columns WHERE table_schema = 'public'")
    else:
        tables = [r[0] for r in await db_rows(
            relay, "SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = [(t, r[1]) for t in tables
                for r in await db_rows(relay, f"PRAGMA table_info({t})")]
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(str(table), []).append(str(column))
    return out
