"""Integration tests: the client library and the ``kok`` command against a real relay.

The relay fixtures (``relay``, ``shared_relay``) come from tests/conftest.py and start a
real relay process on a free loopback port. Keystores use cheap Argon2 settings.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOK_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("KOK_ARGON2_TIME", "1")
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "KOK_PASSPHRASE", "KOK_HOME", "KOK_PROFILE"):
        monkeypatch.delenv(var, raising=False)
