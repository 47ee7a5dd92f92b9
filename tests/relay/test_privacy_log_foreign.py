"""Other libraries' log records and the pseudonym table keep the relay's log promises.

aiohttp and asyncio log through stdlib ``logging``; their messages can carry a peer's address
and their exceptions can quote request bytes (a header with a token). The relay's filter
must leave neither in the log, only the exception's type.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from relay.config import LoggingConfig
from relay.privacylog import Pseudonyms, configure_logging

TOKEN = "Bearer c2Vzc2lvbi10b2tlbi1zZWNyZXQ"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging(LoggingConfig(level="info", format="json"), stream=stream)
    yield stream
    root.handlers, root.level = saved
    structlog.reset_defaults()


def test_a_foreign_error_keeps_neither_address_nor_exception_text(log_stream: io.StringIO
                                                                 ) -> None:
    try:
        raise ValueError(f"bad header Authorization: {TOKEN}")
    except ValueError:
        logging.getLogger("aiohttp.server").error(
            "Error handling request from %s", "192.168.17.4", exc_info=True)
    logging.getLogger("asyncio").warning("connection lost to 2001:db8::7:1")
    text = log_stream.getvalue()
    assert TOKEN not in text and "c2Vzc2lvbi" not in text
    assert "192.168.17.4" not in text and "2001:db8::7:1" not in text
    assert "Traceback" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["event"] == "Error handling request from [address] (ValueError)"
    assert lines[1]["event"] == "connection lost to [address]"
    assert {"event", "level", "timestamp"} >= set(lines[0]) - {"logger"}


def test_pseudonyms_are_stable_within_a_day_and_unlinkable_across_days() -> None:
    pseudonym = Pseudonyms()
    day = 20_000 * 86400
    first = pseudonym("nord/anna", day + 10)
    assert pseudonym("nord/anna", day + 80_000) == first
    assert pseudonym("nord/ben", day + 10) != first
    assert pseudonym("nord/anna", day + 86400) != first  # a new day: a new key


def test_the_pseudonym_table_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pseudonyms, "CACHE", 3)
    pseudonym = Pseudonyms()
    names = [pseudonym(f"nord/s{i}", 100.0) for i in range(10)]
    assert len(pseudonym._cache) <= 3
    assert pseudonym("nord/s0", 100.0) == names[0]  # recomputed under the same day's key
