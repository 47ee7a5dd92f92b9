"""Device-linking mailboxes in the relay service, with a clock the test moves (SPEC 6.9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.errors import LinkSideDone, NotFound, TooManyLinks
from relay.service.link import LINK_MAX_OPEN, LINK_TTL
from tests.relay.inprocess import service_world


async def test_only_the_opening_device_reads_the_new_side_and_the_mailbox_expires(
        tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        org = await world.setup_org("org-a", ("admin", "alice", "bob"))
        alice = await world.login(org.staff["org-a/alice"])
        bob = await world.login(org.staff["org-a/bob"])
        links = world.relay.links
        nameplate, expires = await links.open(alice, world.now())
        assert len(nameplate) == 4 and nameplate.isdigit()
        assert expires == world.now() + LINK_TTL
        assert await links.post(nameplate, "a", b"a0", alice, world.now()) == 1
        # the new side: no session, reads a's messages, posts its own
        assert (await links.read(nameplate, "a", 0, None, world.now()))[0] == [b"a0"]
        assert await links.post(nameplate, "b", b"b0", None, world.now()) == 1
        assert await links.post(nameplate, "b", b"b1", None, world.now()) == 2
        with pytest.raises(LinkSideDone):  # one answer per code
            await links.post(nameplate, "b", b"b2", None, world.now())
        # b's messages only for the device that opened it; anyone else: "no such mailbox"
        assert (await links.read(nameplate, "b", 1, alice, world.now()))[0] == [b"b1"]
        for session in (None, bob):
            with pytest.raises(NotFound):
                await links.read(nameplate, "b", 0, session, world.now())
            with pytest.raises(NotFound):
                await links.post(nameplate, "a", b"a1", session, world.now())

        world.advance(LINK_TTL)
        for call in (links.read(nameplate, "a", 0, None, world.now()),
                     links.post(nameplate, "a", b"a1", alice, world.now()),
                     links.close(nameplate, world.now())):
            with pytest.raises(NotFound):
                await call
        assert (await world.relay.purge(world.now())).links == 1


async def test_a_person_has_few_mailboxes_open_and_a_closed_one_is_gone(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        org = await world.setup_org("org-a")
        alice = await world.login(org.staff["org-a/alice"])
        links = world.relay.links
        opened = [(await links.open(alice, world.now()))[0] for _ in range(LINK_MAX_OPEN)]
        with pytest.raises(TooManyLinks):
            await links.open(alice, world.now())
        await links.close(opened[0], world.now())
        with pytest.raises(NotFound):
            await links.read(opened[0], "a", 0, None, world.now())
        assert (await links.open(alice, world.now()))[0] not in opened[1:]
