"""Integration tests: the client library and the ``kok`` command against a real relay.

The relay fixtures (``relay``, ``shared_relay``) come from tests/conftest.py and start a
real relay process on a free loopback port; ``own_world`` (here) starts one for a test that
kills or stops it. Keystores use cheap Argon2 settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.people import close_all
from tests.integration.test_drops import World, make_world
from tests.support.relayproc import RelayProcess


@pytest.fixture(autouse=True)
def _client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOK_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("KOK_ARGON2_TIME", "1")
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "KOK_PASSPHRASE", "KOK_HOME", "KOK_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
async def own_world(tmp_path: Path) -> AsyncIterator[World]:
    """A relay of its own, for a test that kills or stops it, with the two orgs of
    ``test_drops.make_world``; expiry runs hourly, so nothing expires under the test."""
    relay = RelayProcess.start(tmp_path / "relay-own", network_profile=True,
                               env={"KOK_RELAY_EXPIRY_INTERVAL": "3600"})
    try:
        w = await make_world(relay, tmp_path / "home")
        yield w
        await close_all(*w.clients.values())
    finally:
        relay.stop(check_log=False)
    relay.assert_log_clean()
