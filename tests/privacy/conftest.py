"""One full exchange for the whole privacy package (it takes a few seconds)."""

from __future__ import annotations

import pytest

from tests.privacy.exchange import Exchange, run_exchange


@pytest.fixture(scope="session")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Exchange:
    return run_exchange(tmp_path_factory.mktemp("privacy-exchange"))
