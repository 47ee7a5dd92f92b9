"""The relay's receipt time against backdating by a removed member (SPEC 9.3 step 6).

A removed staff member still holds their signing key. Their own session ends at once, but
a colleague's session (a shared office computer, a colleague who helps) can still post to
an honest relay, which cannot tell who signed what it stores. The message claims a time
before the removal and is sealed to another org's epoch that predates the removal; only
the relay's receipt time shows that it arrived after the removal.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client import Client
from protocol import MessagePayload, b64encode, seal_message
from protocol.message import RECEIPT_MARGIN, LogPosition
from tests.integration.people import anchor_of
from tests.support.lifecycle import PASSPHRASE, Network, shifted

HOUR = 3600


@pytest.fixture
async def past(relay: Any, tmp_path: Path) -> AsyncIterator[Network]:
    """A fresh relay; the network is built two hours "ago". Every client the test opened is
    closed before the test's event loop ends (an open one leaves its database thread behind)."""
    network = Network(relay, tmp_path, clock=shifted(-2 * HOUR))
    try:
        yield network
    finally:
        await network.close()


async def test_removed_member_backdating_through_a_colleagues_session_is_quarantined(
        past: Network) -> None:
    """A fresh relay; the network is built two hours "ago", the removal one hour ago."""
    nord, sued = await past.org("nord"), await past.org("sued")
    anna, carl = await past.staff(nord, "anna"), await past.staff(nord, "carl")
    ben = await past.staff(sued, "ben")
    await ben.sync()
    org_id = str(sued.org_id)
    removal = int(past.clock()) + HOUR
    nord = await past.reopen(nord, clock=shifted(-HOUR))
    assert await nord.org.remove(str(anna.staff_id)) == 2
    assert anna.staff_id is not None
    carl = await past.reopen(carl, clock=time.time)  # clients of today
    ben = await past.reopen(ben, clock=time.time)

    async def post_as_anna(sent: int, subject: str) -> None:
        """anna signs with her kept key and posts through carl's valid session."""
        await carl.sync_log()
        epoch = carl.directory.log.current_epoch(org_id)
        assert epoch.number == 1 and epoch.created < removal  # sued did not rotate
        payload = MessagePayload(id=secrets.token_bytes(16), from_org=str(nord.org_id),
                                 from_staff=str(anna.staff_id), to=(org_id,), sent=sent,
                                 subject=subject, body="rückdatiert",
                                 thread=secrets.token_bytes(16), expires=sent + 24 * HOUR,
                                 log=LogPosition.of(carl.directory.log))
        sealed = seal_message(payload, anna.signing_key(), org_id, epoch.number,
                              epoch.public_key, secrets.token_bytes(32))
        await (await carl.api()).send(secrets.token_bytes(16), 3600, [
            {"to_org": org_id, "epoch": epoch.number, "sealed": b64encode(sealed)}])

    # dated half an hour before the removal, posted now: the relay stamps "now"
    await post_as_anna(removal - HOUR // 2, "vor dem Weggang")
    report = await ben.sync()
    assert list(report.messages) == []
    assert [q.code for q in report.quarantined] == ["sender_invalid"]
    assert "received" in report.quarantined[0].detail

    # carl's own messages through the same session are fine
    await carl.send(to=[org_id], subject="von carl", body="echt")
    assert [m.subject for m in (await ben.sync()).messages] == ["von carl"]
    assert RECEIPT_MARGIN < HOUR  # the removal lies well outside the margin


async def test_a_removed_devices_key_backdating_through_the_owners_session_is_quarantined(
        past: Network) -> None:
    """The same for one removed device (SPEC 9.3 step 8): anna's laptop was removed an hour
    ago, she stays a member. Its key signs a message dated before the removal, posted
    through her office PC's valid session; the relay's receipt time shows the device had
    already gone, so ben refuses it, while a message anna's PC signs goes through."""
    relay = past.relay
    nord, sued = await past.org("nord"), await past.org("sued")
    anna, ben = await past.staff(nord, "anna"), await past.staff(sued, "ben")
    await ben.sync()
    org_id = str(sued.org_id)
    anchor = anchor_of(relay)
    name = f"{anna.profile.name}.laptop"
    _, request = await Client.new_device(past.home, name, PASSPHRASE,
                                         staff_id=str(anna.staff_id), relay=relay.url,
                                         network=anchor)
    await anna.add_device(request)
    laptop = await Client.open(past.home, name, PASSPHRASE, clock=shifted(-2 * HOUR))
    past.people[name] = laptop
    lost = laptop.signing_key()
    removal = int(past.clock()) + HOUR
    anna = await past.reopen(anna, clock=shifted(-HOUR))
    await anna.remove_device(lost.fingerprint)
    anna = await past.reopen(anna, clock=time.time)  # clients of today
    ben = await past.reopen(ben, clock=time.time)

    await anna.sync_log()
    epoch = anna.directory.log.current_epoch(org_id)
    assert epoch.number == 1 and epoch.created < removal  # sued did not rotate
    sent = removal - HOUR // 2  # dated half an hour before the removal
    payload = MessagePayload(id=secrets.token_bytes(16), from_org=str(nord.org_id),
                             from_staff=str(anna.staff_id), to=(org_id,), sent=sent,
                             subject="vom Laptop", body="rückdatiert",
                             thread=secrets.token_bytes(16), expires=sent + 24 * HOUR,
                             log=LogPosition.of(anna.directory.log))
    sealed = seal_message(payload, lost, org_id, epoch.number, epoch.public_key,
                          secrets.token_bytes(32))
    await (await anna.api()).send(secrets.token_bytes(16), 3600, [
        {"to_org": org_id, "epoch": epoch.number, "sealed": b64encode(sealed)}])
    report = await ben.sync()
    assert list(report.messages) == []
    assert [q.code for q in report.quarantined] == ["wrong_signer"]
    assert "received" in report.quarantined[0].detail

    await anna.send(to=[org_id], subject="vom Büro-PC", body="echt")
    assert [m.subject for m in (await ben.sync()).messages] == ["vom Büro-PC"]
