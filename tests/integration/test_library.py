"""The client library against a real relay: the whole consultation flow and its guards."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest

from client import Client, KokError
from client.api import RelayApi
from client.errors import AccessError, ProfileError, RelayRefused, RelayUnreachable
from protocol import Head, MessagePayload, b64encode, seal_message
from protocol.message import LogPosition
from tests.integration.people import (
    PASSPHRASE,
    anchor_of,
    close_all,
    new_org,
    new_staff,
    open_office,
    unique,
)
from tests.support.relayproc import free_port

SUBJECT = "Rückfrage zu Fall 17"
BODY = "Frau K. hat einen Termin bei der Ausländerbehörde am 3. März. Wer kennt sich aus?"


@pytest.fixture
async def world(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two orgs (nord, sued), each with an admin and one staff member (anna, ben)."""
    office = await open_office(shared_relay)
    nord = await new_org(shared_relay, tmp_path, office, unique("nord"))
    sued = await new_org(shared_relay, tmp_path, office, unique("sued"))
    anna = await new_staff(shared_relay, tmp_path, nord, "anna")
    ben = await new_staff(shared_relay, tmp_path, sued, "ben")
    people = {"office": office, "nord": nord, "sued": sued, "anna": anna, "ben": ben,
              "home": tmp_path, "relay": shared_relay}
    yield people
    await close_all(office, nord, sued, anna, ben)


async def test_consultation_reply_and_delivery_status(world: dict[str, Any]) -> None:
    anna, ben, sued, nord = world["anna"], world["ben"], world["sued"], world["nord"]
    message_id = await anna.send(to=[sued.org_id], subject=SUBJECT, body=BODY, ttl=3600)

    report = await ben.sync()
    assert [m.id for m in report.messages] == [message_id]
    assert report.quarantined == ()
    got = await ben.read(message_id[:6])
    assert (got.from_staff, got.from_org, got.subject, got.body) == (
        anna.staff_id, nord.org_id, SUBJECT, BODY)
    assert got.read and (await ben.inbox())[0].read

    status = await anna.status(message_id)
    assert (status.state, status.acknowledged, status.of) == ("pending", 1, 2)
    await sued.sync()  # the org's admin is a staff member too and must read it
    status = await anna.status(message_id[:8])
    assert (status.state, status.acknowledged, status.of) == ("delivered", 2, 2)
    # too late for the relay to delete it: a signed notice withdraws it on their devices
    withdrawn = await anna.retract(message_id)
    assert withdrawn.state == "delivered" and withdrawn.notified == (sued.org_id,)
    assert [w.id for w in (await ben.sync()).withdrawn] == [message_id]
    assert (await ben.read(message_id)).withdrawn

    reply_id = await ben.send(to=[nord.org_id], subject="Re: " + SUBJECT, body="Ja, wir.",
                              reply_to=message_id[:8])
    reply = (await anna.sync()).messages[0]
    assert reply.id == reply_id and reply.reply_to == message_id
    assert reply.thread == got.thread

    decomposed = "Mu\u0308ller"  # as some systems store "Müller"
    nfd_id = await anna.send(to=[sued.org_id], subject=decomposed, body=decomposed)
    nfd = next(m for m in (await ben.sync()).messages if m.id == nfd_id)
    assert nfd.subject == nfd.body == "M\u00fcller"

    again = await ben.sync()  # nothing twice
    assert again.messages == () and len(await ben.inbox()) == 2


async def test_one_message_to_two_orgs(world: dict[str, Any]) -> None:
    anna, ben, nord, sued = world["anna"], world["ben"], world["nord"], world["sued"]
    message_id = await anna.send(to=[sued.org_id, nord.org_id], subject="Rundfrage", body="?")
    assert [m.id for m in (await ben.sync()).messages] == [message_id]
    assert [m.id for m in (await nord.sync()).messages] == [message_id]
    status = await anna.status(message_id)
    assert {r.org for r in status.recipients} == {sued.org_id, nord.org_id}
    assert status.of == 4


async def test_listen_yields_a_message_as_it_arrives(world: dict[str, Any]) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    stream = ben.listen()

    async def first() -> Any:
        return await stream.__anext__()

    waiting = asyncio.create_task(first())
    await asyncio.sleep(0.2)  # either path must deliver: catch-up sync or the socket
    message_id = await anna.send(to=[sued.org_id], subject="live", body="jetzt")
    message = await asyncio.wait_for(waiting, timeout=10)
    assert message.id == message_id and message.body == "jetzt"
    await stream.aclose()
    assert (await ben.sync()).messages == ()  # it was stored and acknowledged


async def test_retracted_message_never_arrives(world: dict[str, Any]) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    message_id = await anna.send(to=[sued.org_id], subject="oops", body="falsch adressiert")
    assert (await anna.retract(message_id)).state == "retracted"
    assert (await ben.sync()).messages == ()
    assert await ben.inbox() == []


async def test_rotation_and_removal(world: dict[str, Any]) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    assert (await ben.sync()).epoch_keys == 1
    assert await sued.org.rotate() == 2
    assert (await ben.sync()).epoch_keys == 1
    first = await anna.send(to=[sued.org_id], subject="nach Rotation", body="eins")
    assert [m.id for m in (await ben.sync()).messages] == [first]

    assert await sued.org.remove(ben.staff_id) == 3
    with pytest.raises(AccessError) as removed:
        await ben.sync()
    assert removed.value.code == "staff_removed"
    await anna.send(to=[sued.org_id], subject="nach Entfernung", body="zwei")
    assert f"epoch/{sued.org_id}/3" not in ben.keystore.secrets
    assert [m.subject for m in (await sued.sync()).messages] == ["nach Rotation",
                                                                 "nach Entfernung"]
    info = await anna.whois(sued.org_id)
    assert info.epoch == 3
    assert [s.removed is not None for s in info.staff if s.staff_id == ben.staff_id] == [True]


async def test_forged_sender_is_quarantined_never_shown(world: dict[str, Any]) -> None:
    """Anna signs a message that claims to come from her admin: refused as wrong_signer."""
    anna, ben, nord, sued = world["anna"], world["ben"], world["nord"], world["sued"]
    await anna.sync_log()
    epoch = anna.directory.log.current_epoch(str(sued.org_id))
    payload = MessagePayload(id=secrets.token_bytes(16), from_org=str(nord.org_id),
                             from_staff=str(nord.staff_id), to=(str(sued.org_id),),
                             sent=anna.now(), subject="Ich bin die Leitung", body="...",
                             thread=secrets.token_bytes(16), expires=anna.now() + 3600,
                             log=LogPosition.of(anna.directory.log))
    sealed = seal_message(payload, anna.signing_key(), str(sued.org_id), epoch.number,
                          epoch.public_key, secrets.token_bytes(32))
    api: RelayApi = await anna.api()
    await api.send(secrets.token_bytes(16), 3600, [
        {"to_org": sued.org_id, "epoch": epoch.number, "sealed": b64encode(sealed)}])
    report = await ben.sync()
    assert report.messages == ()
    assert [q.code for q in report.quarantined] == ["wrong_signer"]
    assert await ben.inbox() == []
    assert [q.code for q in await ben.quarantined()] == ["wrong_signer"]


async def test_replayed_envelope_is_quarantined(world: dict[str, Any]) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    message_id = await anna.send(to=[sued.org_id], subject="einmal", body="nur einmal")
    await ben.sync()
    # The relay (or anyone with a session) stores the very same sealed bytes again.
    stored = (await (await sued.api()).messages(after=0))["messages"]
    original = next(m for m in stored if m["to_org"] == sued.org_id)
    api: RelayApi = await anna.api()
    await api.send(secrets.token_bytes(16), 3600, [
        {"to_org": sued.org_id, "epoch": original["epoch"], "sealed": original["sealed"]}])
    report = await ben.sync()
    assert report.messages == ()
    assert [q.code for q in report.quarantined] == ["replayed"]
    assert [m.id for m in await ben.inbox()] == [message_id]


async def test_people_get_specific_errors(world: dict[str, Any]) -> None:
    home, relay, anna, sued = world["home"], world["relay"], world["anna"], world["sued"]
    with pytest.raises(AccessError) as unknown:
        await anna.send(to=["no-such-org"], subject="x", body="y")
    assert unknown.value.code == "unknown_org"

    _, _ = await Client.new_staff(home, "carla", PASSPHRASE, org_id=str(sued.org_id),
                                  name="Carla", relay=relay.url, network=anchor_of(relay))
    async with await Client.open(home, "carla", PASSPHRASE) as carla:
        with pytest.raises(AccessError) as waiting:
            await carla.sync()
        assert waiting.value.code == "not_enrolled"

    with pytest.raises(ProfileError) as wrong:
        await Client.open(home, "carla", "not the passphrase")
    assert wrong.value.code == "wrong_passphrase"

    with pytest.raises(AccessError) as no_org:
        await Client.new_staff(home, "dora", PASSPHRASE, org_id="no-such-org", name="Dora",
                               relay=relay.url, network=anchor_of(relay))
    assert no_org.value.code == "unknown_org"
    assert not (home / "dora").exists()  # nothing left behind

    down = f"http://127.0.0.1:{free_port()}"
    async with await Client.open(home, "carla", PASSPHRASE, relay=down) as offline:
        with pytest.raises(RelayUnreachable) as unreachable:
            await offline.sync()
        assert isinstance(unreachable.value, KokError)
        assert down in unreachable.value.message


async def test_the_client_tells_the_relay_which_log_head_it_verified(
        world: dict[str, Any]) -> None:
    """A client whose verified head the relay's log does not extend is refused by the relay."""
    anna = world["anna"]
    await anna.sync()
    real = anna.directory.head
    assert real is not None
    anna.directory.head = Head(size=real.size + 3, hash=bytes(32), time=real.time,
                               signature=real.signature)
    with pytest.raises(RelayRefused) as refused:
        await anna.sync()
    assert refused.value.code == "log_head_mismatch"
    assert "network office" in refused.value.message
    anna.directory.head = real
    await anna.sync()
