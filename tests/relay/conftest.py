"""Relay test fixtures: an HTTP helper bound to the session relay, unique org ids."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.actors import Api
from tests.support.relayproc import RelayProcess

_counter = itertools.count()


def unique(prefix: str) -> str:
    """An org id no other test on the shared relay uses."""
    return f"{prefix}-{os.getpid() % 10000}-{next(_counter)}"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(shared_relay: RelayProcess, http: aiohttp.ClientSession) -> Api:
    """The HTTP helper against the session-wide relay."""
    return Api(shared_relay.url, http)
