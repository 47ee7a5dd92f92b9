"""Fixtures shared by the whole suite: real relay processes on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Cheap Argon2 for every keystore the tests create (client/keystore.py honours these).
os.environ.setdefault("KOK_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("KOK_ARGON2_TIME", "1")

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
