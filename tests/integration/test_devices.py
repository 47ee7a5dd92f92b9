"""Several devices of one person against a real relay (protocol/SPEC.md section 6.6).

Each device is its own profile with its own keys. The relay keeps an envelope until every
current device of every recipient has fetched it, so the office PC and the laptop both
receive every message while the other is off; a lost device is removed on its own, its
sessions end at once, and what is sent afterwards is sealed to an epoch it never gets.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import AccessError
from client.profile import NetworkAnchor
from protocol import MessagePayload, b64encode, seal_message
from protocol.message import LogPosition
from tests.integration.kokcli import kok, ok
from tests.support.lifecycle import PASSPHRASE, Network, relay_call, secrets_that_open


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


async def link_laptop(net: Network, person: Client) -> Client:
    """Make a second device of ``person``, link it from the first, and open it."""
    anchor = NetworkAnchor.from_json(net.relay.network_anchor)
    name = f"{person.profile.name}.laptop"
    _, request = await Client.new_device(net.home, name, PASSPHRASE,
                                         staff_id=str(person.staff_id), relay=net.relay.url,
                                         network=anchor)
    await person.add_device(request)
    laptop = await Client.open(net.home, name, PASSPHRASE)
    net.people[name] = laptop
    return laptop


async def send(sender: Client, org_id: str, subject: str) -> tuple[dict[str, Any], bytes]:
    """Seal and send one message by hand; returns the relay's answer and the sealed bytes."""
    await sender.sync_log()
    epoch = sender.directory.log.current_epoch(org_id)
    now = sender.now()
    payload = MessagePayload(
        id=secrets.token_bytes(16), from_org=str(sender.org_id),
        from_staff=str(sender.staff_id), to=(org_id,), sent=now, subject=subject, body="…",
        thread=secrets.token_bytes(16), expires=now + 3600,
        log=LogPosition.of(sender.directory.log))
    sealed = seal_message(payload, sender.signing_key(), org_id, epoch.number,
                          epoch.public_key, secrets.token_bytes(32))
    answer = await (await sender.api()).send(secrets.token_bytes(16), 3600, [
        {"to_org": org_id, "epoch": epoch.number, "sealed": b64encode(sealed)}])
    return answer[0], sealed


async def status(net: Network, answer: dict[str, Any]) -> dict[str, Any]:
    code, body = await relay_call(net.relay.url, "POST", "/v1/status",
                                  body={"token": answer["status_token"]})
    assert code == 200
    return dict(body)


async def test_two_devices_of_one_person_each_receive_every_message(net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    org_id = str(sued.org_id)
    laptop = await link_laptop(net, ben)
    assert [d.this_device for d in await ben.devices()] == [True, False]
    report = await sued.sync()  # the admin renews the key so the laptop gets it too
    assert (report.rotated, report.rotation_reason) == (2, "device")
    await ben.sync()
    assert (await laptop.sync()).epoch_keys == 1

    # the laptop is off: the office PC fetches, the relay keeps it for the laptop
    laptop = await net.reopen(laptop)  # (a closed client holds no session)
    first, _ = await send(anna, org_id, "erste")
    assert [m.subject for m in (await ben.sync()).messages] == ["erste"]
    await sued.sync()  # the org's other person (its admin) has it too
    # every person has it (delivered counts people, not devices), yet the relay keeps it
    # for the laptop; before devices it was deleted here and the laptop never saw it
    one = await status(net, first)
    assert (one["state"], one["acknowledged"], one["of"]) == ("pending", 2, 2)
    # now the office PC is off and the laptop comes back
    second, _ = await send(anna, org_id, "zweite")
    assert sorted(m.subject for m in (await laptop.sync()).messages) == ["erste", "zweite"]
    assert (await status(net, first))["state"] == "delivered"
    await sued.sync()
    assert (await status(net, second))["state"] == "pending"  # the office PC has not yet
    assert [m.subject for m in (await ben.sync()).messages] == ["zweite"]
    assert (await status(net, second))["state"] == "delivered"

async def test_a_lost_device_is_removed_and_the_person_keeps_working(net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    org_id = str(sued.org_id)
    laptop = await link_laptop(net, ben)
    await sued.sync()
    await laptop.sync()
    token = (await laptop.api()).token
    lost = laptop.signing_key().fingerprint

    # the laptop is stolen: ben removes it from the office PC
    assert await ben.remove_device(lost) is None  # not an admin: the admin renews
    status_code, _ = await relay_call(net.relay.url, "GET", "/v1/grants", token=token)
    assert status_code == 401  # its session ended at once
    with pytest.raises(AccessError) as refused:
        await laptop.sync()
    assert refused.value.code == "not_enrolled"
    report = await sued.sync()
    assert report.rotation_reason == "removal"

    # ben keeps working on the office PC; the laptop's own keystore opens nothing new
    _, sealed = await send(anna, org_id, "nach dem Verlust")
    assert [m.subject for m in (await ben.sync()).messages] == ["nach dem Verlust"]
    epoch = ben.directory.log.current_epoch(org_id)
    assert secrets_that_open(laptop.profile.keystore_path, epoch.public_key, sealed) == []
    assert secrets_that_open(ben.profile.keystore_path, epoch.public_key, sealed) == [
        f"epoch/{org_id}/{epoch.number}"]
    assert [d.removed is not None for d in await ben.devices()] == [False, True]


async def test_kok_device_commands_link_list_and_remove(net: Network) -> None:
    """The CLI is a skin over the library: new (on the new device), add, list, remove."""
    sued = await net.org("sued")
    ben = await net.staff(sued, "ben")
    await ben.sync()
    home, name = ben.profile.home, ben.profile.name
    request = net.home / "laptop.request"
    made = json.loads(ok(kok("--json", "device", "new", "--staff", str(ben.staff_id),
                             "--relay", net.relay.url, "--network", str(net.relay.anchor_path),
                             "--out", str(request), home=home, profile="laptop")).out)
    added = json.loads(ok(kok("--json", "device", "add", str(request), "--yes", home=home,
                              profile=name)).out)
    assert added["fingerprint"] == made["fingerprint"]
    listed = json.loads(ok(kok("--json", "device", "list", home=home, profile=name)).out)
    assert [(d["device"] == added["device"], d["this_device"]) for d in listed] == [
        (False, True), (True, False)]
    # a request for somebody else is refused and changes nothing
    other = await net.staff(sued, "cem")
    refused = kok("device", "add", str(request), "--yes", home=other.profile.home,
                  profile=other.profile.name)
    assert refused.code != 0 and "ben" in refused.error_line
    removed = json.loads(ok(kok("--json", "device", "remove", added["device"], "--yes",
                                home=home, profile=name)).out)
    assert removed == {"device": added["device"], "removed": True, "rotated": None}
    listed = json.loads(ok(kok("--json", "device", "list", home=home, profile=name)).out)
    assert [d["removed"] is not None for d in listed] == [False, True]
    again = kok("device", "remove", added["device"], "--yes", home=home, profile=name)
    assert again.code != 0


async def test_an_attachment_waits_for_every_device_too(net: Network, tmp_path: Path) -> None:
    """A file drop is kept until each device of each recipient has fetched it."""
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    laptop = await link_laptop(net, ben)
    await sued.sync()
    await ben.sync()
    await laptop.sync()
    laptop = await net.reopen(laptop)  # off while the others fetch the file
    source = tmp_path / "Bescheid.pdf"
    source.write_bytes(secrets.token_bytes(70_000))
    await anna.sync()
    sent = await anna.send([str(sued.org_id)], "mit Anhang", "siehe Datei",
                           attachments=[source])
    for person in (ben, sued):  # every person fetches and saves it
        (message,) = (await person.sync()).messages
        (tmp_path / "saved" / person.profile.name).mkdir(parents=True)
        await person.save(message.id, tmp_path / "saved" / person.profile.name)
    (message,) = (await laptop.sync()).messages  # the laptop was off meanwhile
    (tmp_path / "saved" / "laptop").mkdir(parents=True)
    await laptop.save(message.id, tmp_path / "saved" / "laptop")
    assert (tmp_path / "saved" / "laptop" / "Bescheid.pdf").read_bytes() == source.read_bytes()
    assert sent
