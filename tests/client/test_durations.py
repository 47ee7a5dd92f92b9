"""One parser for every duration ``kok`` asks for; its error names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.cli_common import parse_duration
from client.errors import UsageError
from tests.integration.kokcli import kok


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("12h", 43200), ("2d", 172800), ("7d", 604800), ("1w", 604800),
    (" 3w ", 1814400)])
def test_the_units_people_write(text: str, seconds: int) -> None:
    assert parse_duration(text, "--ttl") == seconds


@pytest.mark.parametrize("text", ["7", "1y", "d", "-1d", "1.5d", "1 week", "١d", ""])
def test_anything_else_is_refused_naming_the_setting(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_duration(text, "--rotate-every")
    assert err.value.code == "bad_duration"
    assert "--rotate-every" in str(err.value) and "1w" in str(err.value)


@pytest.mark.parametrize(("args", "setting"), [
    (("send", "--to", "sued", "--subject", "s", "--body", "b", "--ttl", "5y"), "--ttl"),
    (("org", "config", "--rotate-every", "5y"), "--rotate-every")])
def test_the_cli_error_names_the_option(tmp_path: Path, args: tuple[str, ...],
                                        setting: str) -> None:
    refused = kok(*args, home=tmp_path, profile="nobody")
    assert refused.code == 2
    assert refused.error_line.startswith("Error: " + setting + ": 5y is not a duration")
