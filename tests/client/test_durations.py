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


@pytest.mark.parametrize(("text", "minutes"), [("15m", 15), ("2h", 120), ("8h", 480),
                                                ("30", 30), ("1m", 1)])
def test_the_app_idle_lock_takes_a_duration_or_minutes(text: str, minutes: int) -> None:
    from client.cli_everyday import idle_lock_minutes

    assert idle_lock_minutes(text) == minutes


@pytest.mark.parametrize(("text", "code"), [("9h", "idle_lock_range"), ("0", "idle_lock_range"),
                                            ("1w", "idle_lock_range"), ("soon", "bad_duration")])
def test_an_idle_lock_outside_a_working_day_is_refused(text: str, code: str) -> None:
    from client.cli_everyday import idle_lock_minutes

    with pytest.raises(UsageError) as err:
        idle_lock_minutes(text)
    assert err.value.code == code and "--idle-lock" in str(err.value)


def test_the_app_command_refuses_a_bad_idle_lock_before_starting(tmp_path: Path) -> None:
    refused = kok("app", "--no-browser", "--idle-lock", "9h", home=tmp_path, profile="nobody")
    assert refused.code == 2
    assert refused.error_line.startswith("Error: --idle-lock: 9h is outside")
