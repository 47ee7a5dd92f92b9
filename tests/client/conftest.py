"""Client unit tests: cheap Argon2 and an English locale unless a test asks otherwise."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOK_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("KOK_ARGON2_TIME", "1")
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "KOK_PASSPHRASE", "KOK_HOME", "KOK_PROFILE"):
        monkeypatch.delenv(var, raising=False)
