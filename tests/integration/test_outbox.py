"""The offline outbox: a send while the relay is away is kept, encrypted, and sent once.

Against a real relay process that is stopped and started again: the message waits in the
mailbox (no plaintext on disk), goes with the next sync under the same idempotency key (a
second flush of the same entry stores nothing twice), and one whose keeping time passed
is reported and not sent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from client import Client
from tests.integration.people import PASSPHRASE, close_all, new_org, new_staff, open_office


@pytest.fixture
async def pair(relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    office = await open_office(relay)
    nord = await new_org(relay, tmp_path, office, "nord")
    sued = await new_org(relay, tmp_path, office, "sued")
    anna = await new_staff(relay, tmp_path, nord, "anna")
    ben = await new_staff(relay, tmp_path, sued, "ben")
    yield {"relay": relay, "anna": anna, "ben": ben, "home": tmp_path}
    await close_all(office, nord, sued, anna, ben)


async def test_a_send_while_the_relay_is_away_is_kept_and_sent_once_by_the_next_sync(
        pair: dict[str, Any]) -> None:
    relay, anna, ben = pair["relay"], pair["anna"], pair["ben"]
    await ben.sync()
    await anna.sync()
    relay.stop()
    message_id = await anna.send(to=["sued"], subject="Notfallplan Frau K.", body="Bitte rasch")
    assert await anna.queued() == [message_id]
    on_disk = b"".join(p.read_bytes() for p in anna.profile.state_path.parent.glob("state.db*"))
    assert b"Notfallplan" not in on_disk  # encrypted at rest, like the mailbox
    [(_, _, _, kept)] = await anna.store.outbox()

    relay._spawn()  # the relay is back (same directory and port)
    report = await anna.sync()
    assert report.outbox_sent == (message_id,) and await anna.queued() == []
    assert (await anna.status(message_id)).recipients[0].org == "sued"
    # the same entry flushed once more (as if the first answer had been lost): stored once
    await anna.store.add_outbox(message_id, anna.now(), anna.now() + 3600, kept)
    assert (await anna.sync()).outbox_sent == (message_id,)
    got = (await ben.sync()).messages
    assert [m.id for m in got] == [message_id]
    assert (await ben.sync()).messages == ()


async def test_a_queued_message_past_its_keeping_time_is_reported_not_sent(
        pair: dict[str, Any]) -> None:
    relay, anna, ben, home = pair["relay"], pair["anna"], pair["ben"], pair["home"]
    await ben.sync()
    await anna.sync()
    relay.stop()
    message_id = await anna.send(to=["sued"], subject="kurz", body="b", ttl=60)
    profile = anna.profile.name
    await anna.close()
    relay._spawn()
    later = await Client.open(home, profile, PASSPHRASE, clock=lambda: time.time() + 120)
    try:
        report = await later.sync()
        assert report.outbox_expired == (message_id,) and report.outbox_sent == ()
        assert await later.queued() == []
    finally:
        await later.close()
    assert (await ben.sync()).messages == ()
