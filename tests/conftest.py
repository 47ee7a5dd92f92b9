"""Fixtures shared by the whole suite: real relay processes on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Cheap Argon2 for every keystore the tests create (client/keystore.py honours these).
os.environ.setdefault("KOK_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("KOK_ARGON2_TIME", "1")
os.environ.setdefault("KOK_TEST_WEAK_KDF", "1")  # without it the cheap costs are refused

from tests.support.pgcluster import PgCluster, find_bin_dir
from tests.support.relayproc import RelayProcess


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """A fresh relay for one test (use where the test changes state others would see)."""
    process = RelayProcess.start(tmp_path / "relay-base", network_profile=True)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def shared_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """One relay for the whole session (for tests that only add their own orgs)."""
    process = RelayProcess.start(tmp_path_factory.mktemp("shared-relay"), network_profile=True)
    try:
        yield process
    finally:
        process.stop()


def _postgres_missing() -> str:
    """Why PostgreSQL tests cannot run here ('' when they can)."""
    if find_bin_dir() is None:
        return "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin)"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed (pip install -e '.[dev]')"
    return ""


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throw-away PostgreSQL cluster for the whole session (Unix socket, fsync on).

    Skipped with the reason where PostgreSQL is missing; under CI=true that is a failure.
    """
    missing = _postgres_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}: CI must run the PostgreSQL store tests")
        pytest.skip(missing)
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    cluster = PgCluster.start(bin_dir)
    try:
        yield cluster
    finally:
        cluster.stop()
