"""A device silent for longer than a message may be kept no longer holds new envelopes.

The relay keeps an envelope until every current device of every recipient fetched it
(SPEC.md section 18). A laptop left in a drawer would hold every message until its TTL;
once it has not logged in for ``limits.max_ttl`` it stops counting, and counts again at
its next login. The person still counts (k of n).
"""

from __future__ import annotations

import os
from pathlib import Path

from protocol import BoxKeyPair, DeviceAdd, SigningKeyPair, sign_record
from relay.store import MessageStatus
from tests.relay.inprocess import World, service_world
from tests.relay.test_service_drops import _uploaded
from tests.support.actors import Org, Staff, envelope, rand

MAX_TTL = 10 * 86400


async def add_laptop(world: World, person: Staff) -> Staff:
    laptop = Staff(person.staff_id, SigningKeyPair.from_seed(rand()),
                   BoxKeyPair.from_seed(rand()))
    await world.append(sign_record(DeviceAdd(person.staff_id, laptop.signing.public,
                                             laptop.box.public, world.now()), person.signing))
    return laptop


async def send_and_fetch(world: World, sender: Staff, to: Org, fetcher: Staff) -> bytes:
    """Send one envelope to ``to``; ``fetcher``'s device acknowledges it; its status token."""
    session = await world.login(sender)
    sent = (await world.send(session, [envelope(sender, to)], ttl=3600))[0]
    reader = await world.login(fetcher)
    await world.relay.mailbox.acknowledge(reader, sent.id, world.now())
    return sent.status_token


async def test_an_abandoned_device_stops_holding_new_messages_until_it_returns(
        tmp_path: Path) -> None:
    async with service_world(tmp_path, max_ttl=MAX_TTL) as world:
        a = await world.setup_org("org-a", ("admin",))
        b = await world.setup_org("org-b", ("bob",))
        sender, bob = a.staff["org-a/admin"], b.staff["org-b/bob"]
        laptop = await add_laptop(world, bob)
        await world.login(laptop)

        # the laptop was here recently: the office PC's fetch leaves the message waiting
        token = await send_and_fetch(world, sender, b, bob)
        assert await world.relay.mailbox.status(token, world.now()) == MessageStatus(
            "pending", 1, 1, 0)

        # the laptop stays off for longer than any message may be kept
        world.advance(MAX_TTL + 86400)
        token = await send_and_fetch(world, sender, b, bob)
        assert (await world.relay.mailbox.status(token, world.now())).state == "delivered"

        # it comes back: from its next login on it counts again
        await world.login(laptop)
        token = await send_and_fetch(world, sender, b, bob)
        assert (await world.relay.mailbox.status(token, world.now())).state == "pending"


async def test_a_new_device_counts_before_its_first_login_and_the_day_is_all_that_is_kept(
        tmp_path: Path) -> None:
    async with service_world(tmp_path, max_ttl=MAX_TTL) as world:
        a = await world.setup_org("org-a", ("admin",))
        b = await world.setup_org("org-b", ("bob",))
        sender, bob = a.staff["org-a/admin"], b.staff["org-b/bob"]
        laptop = await add_laptop(world, bob)  # just linked, not logged in yet
        token = await send_and_fetch(world, sender, b, bob)
        assert (await world.relay.mailbox.status(token, world.now())).state == "pending"
        seen = await world.relay.store.devices_seen(["org-b/bob"])
        assert set(seen) == {("org-b/bob", bob.signing.fingerprint)}
        assert all(day % 86400 == 0 and day <= world.now() for day in seen.values())
        assert laptop.signing.fingerprint not in {d for _, d in seen}


async def test_a_remembered_all_active_answer_ends_the_second_a_device_is_abandoned(
        tmp_path: Path) -> None:
    async with service_world(tmp_path, max_ttl=MAX_TTL) as world:
        await world.setup_org("org-b", ("bob",))
        laptop = await add_laptop(world, (await world.setup_org("org-c", ("carl",))).staff[
            "org-c/carl"])
        activity, keylog = world.relay.mailbox.activity, world.relay.directory.keylog
        assert activity is not None
        devices = ((laptop.staff_id, laptop.signing.fingerprint),)
        added = world.now()  # never logged in: it counts for max_ttl from being added
        assert activity.all_active(devices, keylog, added)  # remembered from here on
        assert activity.all_active(devices, keylog, added + MAX_TTL)
        assert not activity.all_active(devices, keylog, added + MAX_TTL + 1)
        assert await activity.counted(devices, keylog, added + MAX_TTL + 1) == ()


async def test_a_login_through_another_process_counts_at_once(tmp_path: Path) -> None:
    """Memory says abandoned, the shared store says seen today: the store wins."""
    async with service_world(tmp_path, max_ttl=MAX_TTL) as world:
        a = await world.setup_org("org-a", ("admin",))
        b = await world.setup_org("org-b", ("bob",))
        sender, bob = a.staff["org-a/admin"], b.staff["org-b/bob"]
        laptop = await add_laptop(world, bob)
        world.advance(MAX_TTL + 86400)
        day = world.now() - world.now() % 86400
        # as another relay process would write it, bypassing this process's memory
        await world.relay.store.mark_device_seen(bob.staff_id, laptop.signing.fingerprint,
                                                 day, day - MAX_TTL)
        token = await send_and_fetch(world, sender, b, bob)
        assert (await world.relay.mailbox.status(token, world.now())).state == "pending"


async def test_an_abandoned_device_does_not_hold_a_file_drop_either(tmp_path: Path) -> None:
    async with service_world(tmp_path, max_ttl=MAX_TTL) as world:
        a = await world.setup_org("org-a", ("admin",))
        b = await world.setup_org("org-b", ("bob",))
        sender, bob = a.staff["org-a/admin"], b.staff["org-b/bob"]
        await add_laptop(world, bob)
        world.advance(MAX_TTL + 86400)
        created = await _uploaded(world, await world.login(sender), os.urandom(3000))
        # the office PC fetches it; nobody waits for the laptop: the drop goes
        assert await world.relay.drops.acknowledge(await world.login(bob), created.id,
                                                   world.now()) is True
        assert await world.relay.store.get_drop(created.id) is None


async def test_a_relay_upgraded_to_the_rule_gives_every_device_max_ttl_to_log_in(
        tmp_path: Path) -> None:
    """Devices added long before the relay recorded logins count from that first start."""
    async with service_world(tmp_path, max_ttl=MAX_TTL) as world:
        a = await world.setup_org("org-a", ("admin",))
        b = await world.setup_org("org-b", ("bob",))
        sender, bob = a.staff["org-a/admin"], b.staff["org-b/bob"]
        await add_laptop(world, bob)
        activity = world.relay.activity
        # as if the laptop had been added long before this relay version first started
        since = activity._since
        activity._since = since + 5 * 86400
        world.advance(MAX_TTL + 86400)  # past its addition, within max_ttl of the start
        token = await send_and_fetch(world, sender, b, bob)
        assert (await world.relay.mailbox.status(token, world.now())).state == "pending"
        world.advance(5 * 86400)
        token = await send_and_fetch(world, sender, b, bob)
        assert (await world.relay.mailbox.status(token, world.now())).state == "delivered"
        assert (await world.relay.store.devices_seen([""]))[("", "")] == since

