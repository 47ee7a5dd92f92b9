"""The app's unlocked state: the idle lock forgets the keys; words per language."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client.app.rendering import foreign
from client.app.state import AppState
from client.app.words import Words, negotiate
from client.errors import ProfileError
from tests.app.conftest import World
from tests.integration.people import PASSPHRASE


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_idle_lock_forgets_the_keys_and_activity_postpones_it(world: World) -> None:
    clock = FakeClock()
    state = AppState(world.home, world.ben, idle_minutes=1, clock=clock)
    with pytest.raises(ProfileError):
        await state.unlock("wrong")
    assert not state.unlocked
    client = await state.unlock(PASSPHRASE)
    keystore = client.keystore
    assert keystore.secrets
    state.start_watch()
    try:
        clock.now += 50
        state.touch()  # a page request
        clock.now += 50
        await asyncio.sleep(2.5)
        assert state.unlocked and state.seconds_left() == pytest.approx(10)
        clock.now += 11
        for _ in range(20):
            await asyncio.sleep(0.25)
            if not state.unlocked:
                break
        assert not state.unlocked and state.locked_for_idle
        assert keystore.secrets == {}  # the decrypted keys are gone from memory
    finally:
        await state.close()


def test_language_comes_from_the_browser_unless_the_person_chose() -> None:
    assert negotiate("de-DE,de;q=0.9,en;q=0.8", None) == "de"
    assert negotiate("en-GB,de;q=0.5", None) == "en"
    assert negotiate("fr-FR, de;q=0.3", None) == "de"
    assert negotiate("fr-FR", None) == "en"
    assert negotiate(None, None) == "en"
    assert negotiate("en", "de") == "de"
    assert negotiate("de", "xx") == "de"


def test_counts_times_and_sizes_in_each_language() -> None:
    en, de = Words("en"), Words("de")
    assert en.n("app.live.new", 1) == "1 new message"
    assert de.n("app.live.new", 1) == "1 neue Nachricht"
    assert de.n("app.live.new", 3) == "3 neue Nachrichten"
    assert de.size(57_600_000) == "57,6\u00a0MB" and en.size(57_600_000) == "57.6\u00a0MB"
    assert en.size(200_000_000) == "200\u00a0MB" and de.size(512) == "512\u00a0B"
    assert en.time(0).endswith(("UTC", "GMT")) or en.time(0)[-3:].isalpha()
    assert de.time(86400 * 365).startswith("01.01.1971")


def test_foreign_text_shows_bidi_and_control_characters_harmlessly() -> None:
    shown = foreign("Rechnung \u202eexe.pdf\x1b[31m\r\nZeile 2")
    assert shown == "Rechnung \\u202eexe.pdf\\u001b[31m\nZeile 2"


def test_the_app_command_names_its_options(world: World) -> Any:
    from tests.integration.kokcli import kok

    result = kok("app", "--help", home=world.home)
    assert result.code == 0
    for option in ("--port", "--no-browser", "--idle-lock"):
        assert option in result.out
