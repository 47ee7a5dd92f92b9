"""Delivered and read, per person, against a real relay (protocol/SPEC.md section 21).

Fetching a message (sync, listen) makes it *delivered*; only opening it (``Client.read``,
``kok read``, the app's message page) makes it *read*, reported with the next sync. A person
counts once however many of their devices open it, a message can be reported read after its
envelope is gone, a report for a message never received is refused and changes nothing, and
an organisation that switched read reports off sends none.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import RelayRefused
from client.models import RecipientStatus
from protocol import b64encode
from tests.integration.kokcli import kok, kok_env, ok
from tests.integration.test_devices import link_laptop
from tests.support.lifecycle import Network


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


async def counts(sender: Client, message_id: str) -> tuple[str, int, int, int | None]:
    """The sender's view of its one recipient org: state, delivered, of, read."""
    (recipient,) = (await sender.status(message_id)).recipients
    return recipient.state, recipient.acknowledged, recipient.of, recipient.read


async def relay_id_of(reader: Client, message_id: str) -> str:
    row = await reader.store.message(message_id)
    assert row is not None
    return str(row[0]["relay_id"])


async def test_delivered_is_fetched_read_is_opened_and_a_person_counts_once(
        net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    laptop = await link_laptop(net, ben)
    await sued.sync()  # the admin renews the key so the laptop gets it too
    await ben.sync()
    await laptop.sync()
    message_id = await anna.send(to=[str(sued.org_id)], subject="Rückfrage", body="…")

    await ben.sync()  # fetched (and acknowledged), not opened
    assert await counts(anna, message_id) == ("pending", 1, 2, 0)
    # looking it up (as the reply form does) is not opening it
    assert not (await ben.message(message_id[:8])).read
    assert await ben.store.owed_read_reports() == []
    await ben.read(message_id)
    # the report waits for the next sync: opening alone tells the relay nothing
    assert await counts(anna, message_id) == ("pending", 1, 2, 0)
    await ben.sync()
    assert await counts(anna, message_id) == ("pending", 1, 2, 1)

    # the same person on the laptop: fetched and opened there too, still one reader
    await laptop.sync()
    await laptop.read(message_id)
    await laptop.sync()
    assert await counts(anna, message_id) == ("pending", 1, 2, 1)

    # the admin's only device fetches it last, so the relay deletes the envelope; reading
    # it afterwards still counts
    await sued.sync()
    assert await counts(anna, message_id) == ("delivered", 2, 2, 1)
    await sued.read(message_id)
    await sued.sync()
    assert await counts(anna, message_id) == ("delivered", 2, 2, 2)
    status = await anna.status(message_id)
    assert status.to_json()["read"] == 2


async def _report(client: Client, relay_id: str) -> tuple[int, Any]:
    """A read report sent by hand (what the client would send at its next sync)."""
    try:
        counted = await (await client.api()).report_read([relay_id])
    except RelayRefused as exc:
        return exc.status, exc.code
    return 200, counted


async def test_a_report_for_a_message_never_received_is_refused_and_changes_nothing(
        net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    message_id = await anna.send(to=[str(sued.org_id)], subject="Rückfrage", body="…")
    await ben.sync()
    relay_id = await relay_id_of(ben, message_id)
    # the sender, the admin who has not fetched it yet: refused, nothing counted
    assert await _report(anna, relay_id) == (404, "not_received")
    assert await _report(sued, relay_id) == (404, "not_received")
    assert await counts(anna, message_id) == ("pending", 1, 2, 0)
    # a report the relay refuses (here: an id it never gave) is dropped by the client, and
    # the others sent with it still count
    other = await anna.send(to=[str(sued.org_id)], subject="Zweite", body="…")
    await sued.sync()
    await sued.read(message_id)
    await sued.read(other)
    await sued.store._db.execute("UPDATE messages SET relay_id = ? WHERE id = ?",
                                 (b64encode(secrets.token_bytes(16)), message_id))
    await sued.sync()
    assert await sued.store.owed_read_reports() == []
    assert await counts(anna, message_id) == ("delivered", 2, 2, 0)
    assert await counts(anna, other) == ("pending", 1, 2, 1)


async def test_an_org_with_read_reports_off_sends_none_and_the_sender_sees_off(
        net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    await sued.set_org_settings(read_reports=False)
    message_id = await anna.send(to=[str(sued.org_id)], subject="Rückfrage", body="…")
    await ben.sync()
    await ben.read(message_id)
    assert await ben.store.owed_read_reports() == []
    await ben.sync()
    (recipient,) = (await anna.status(message_id)).recipients
    assert recipient == RecipientStatus(str(sued.org_id), "pending", 1, 2, read=0,
                                        read_reports=False)
    assert recipient.delivery_words()[0] == "status.delivered_reports_off"
    # a client that sent one anyway is refused by the relay too
    assert await _report(ben, await relay_id_of(ben, message_id)) == (409, "read_reports_off")

    # switched on again: opening owes a report again, and it counts
    await sued.set_org_settings(read_reports=True)
    await ben.sync()
    other = await anna.send(to=[str(sued.org_id)], subject="Zweite", body="…")
    await ben.sync()
    await ben.read(other)
    await ben.sync()
    assert await counts(anna, other) == ("pending", 1, 2, 1)


async def test_kok_read_reports_with_the_next_sync_and_kok_status_says_so(
        net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna = await net.staff(nord, "anna")
    ben = await net.staff(sued, "ben")
    message_id = await anna.send(to=[str(sued.org_id)], subject="Rückfrage", body="Hallo")
    home, anna_profile, ben_profile = net.home, anna.profile.name, ben.profile.name
    await ben.close()
    net.people.pop(ben_profile)
    ok(kok("sync", home=home, profile=ben_profile))
    shown = ok(kok("read", message_id[:8], home=home, profile=ben_profile))
    assert "Hallo" in shown.out
    status = ok(kok("--json", "status", message_id[:8], home=home, profile=anna_profile))
    assert json.loads(status.out)["recipients"][0]["read"] == 0
    ok(kok("sync", home=home, profile=ben_profile))
    status = ok(kok("status", message_id[:8], home=home, profile=anna_profile,
                    env=kok_env(LANG="de_DE.UTF-8")))
    assert "zugestellt an 1 von 2, von 1 gelesen" in status.out
