"""A wrong clock on this computer is named as such, and what it made us refuse is kept.

The relay's ``Date`` header tells the client how far its own clock is off; beyond the
protocol's skew, ``sync`` and ``send`` stop with the difference in minutes instead of
producing records that look forged ("dated in the future") to everyone else. A message
refused because of our clock waits in quarantine and is opened once the clock is right.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import client.api
from client import Client
from client.errors import ClockError
from tests.integration.people import PASSPHRASE, close_all, new_org, new_staff, open_office


@pytest.fixture
async def pair(relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    office = await open_office(relay)
    nord = await new_org(relay, tmp_path, office, "nord")
    sued = await new_org(relay, tmp_path, office, "sued")
    anna = await new_staff(relay, tmp_path, nord, "anna")
    ben = await new_staff(relay, tmp_path, sued, "ben")
    yield {"anna": anna, "ben": ben, "home": tmp_path}
    await close_all(office, nord, sued, anna)


async def test_a_clock_an_hour_ahead_is_named_before_sending_or_syncing(
        pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    anna = pair["anna"]
    monkeypatch.setattr(client.api, "wall_clock", lambda: time.time() + 3600)
    with pytest.raises(ClockError) as ahead:
        await anna.send(to=["sued"], subject="s", body="b")
    assert ahead.value.code == "clock_ahead" and "60 min" in ahead.value.message
    assert await anna.store.quarantined() == []
    with pytest.raises(ClockError):
        await anna.sync()
    monkeypatch.setattr(client.api, "wall_clock", lambda: time.time() - 900)
    with pytest.raises(ClockError) as behind:
        await anna.sync()
    assert behind.value.code == "clock_behind" and "15 min" in behind.value.message
    monkeypatch.setattr(client.api, "wall_clock", time.time)
    await anna.send(to=["sued"], subject="s", body="b")  # right again: goes


async def test_a_message_refused_for_our_clock_is_kept_and_opened_once_it_is_right(
        pair: dict[str, Any]) -> None:
    anna, ben, home = pair["anna"], pair["ben"], pair["home"]
    await ben.sync()
    profile = ben.profile.name
    await ben.close()
    message_id = await anna.send(to=["sued"], subject="Termin", body="morgen")
    # ben's library clock an hour behind: the message looks dated in the future
    slow = await Client.open(home, profile, PASSPHRASE, clock=lambda: time.time() - 3600)
    try:
        report = await slow.sync()
        assert report.messages == () and [q.code for q in report.quarantined] == [
            "bad_timestamp"]
    finally:
        await slow.close()
    right = await Client.open(home, profile, PASSPHRASE)
    try:
        report = await right.sync()
        assert [m.id for m in report.messages] == [message_id]
        assert await right.quarantined() == []
    finally:
        await right.close()
