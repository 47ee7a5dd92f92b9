"""File drops in process, with the clock moved by the test (no sleeping)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay import wire
from relay.errors import DropIncomplete, NotFound, OffsetMismatch, TooManyUploads
from relay.service.domain import CreatedDrop
from relay.service.sessions import Session
from tests.relay.inprocess import World, service_world


async def _pieces(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _files(world: World, drop_id: bytes) -> list[str]:
    return sorted(p.suffix for p in world.relay.config.blob_path.glob(drop_id.hex() + "*"))


async def _create(world: World, session: Session, size: int, ttl: int) -> CreatedDrop:
    request = wire.drop_create({"size": size, "to": ["org-b"], "ttl": ttl})
    return await world.relay.drops.create(session, request, world.now())


async def _uploaded(world: World, session: Session, data: bytes, ttl: int = 3600) -> CreatedDrop:
    drops = world.relay.drops
    created = await _create(world, session, len(data), ttl)
    end = await drops.upload(created.id, created.upload_token, 0, len(data), _pieces(data),
                             world.now())
    assert end == len(data)
    await drops.complete(created.id, created.upload_token, world.now())
    return created


async def _read(world: World, session: Session, drop_id: bytes) -> bytes:
    drops = world.relay.drops
    size = await drops.open_download(session, drop_id, world.now())
    return b"".join([piece async for piece in drops.read(drop_id, 0, size)])


async def test_a_drop_round_trip_ends_with_the_last_acknowledgement(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b", ("admin", "bob"))
        alice = await world.login(a.staff["org-a/admin"])
        data = os.urandom(5000)
        drops = world.relay.drops
        created = await _create(world, alice, len(data), 3600)
        assert _files(world, created.id) == [".part"]
        with pytest.raises(OffsetMismatch):
            await drops.upload(created.id, created.upload_token, 10, None, _pieces(data),
                               world.now())
        await drops.upload(created.id, created.upload_token, 0, 3000, _pieces(data[:3000]),
                           world.now())
        assert await drops.offset(created.id, created.upload_token, world.now()) == (3000, 5000)
        with pytest.raises(DropIncomplete):
            await drops.complete(created.id, created.upload_token, world.now())
        await drops.upload(created.id, created.upload_token, 3000, 2000, _pieces(data[3000:]),
                           world.now())
        await drops.complete(created.id, created.upload_token, world.now())
        assert _files(world, created.id) == [".blob"]

        admin, bob = [await world.login(s) for s in b.staff.values()]
        with pytest.raises(NotFound):  # not addressed to org-a
            await _read(world, alice, created.id)
        assert await _read(world, bob, created.id) == data
        assert await drops.acknowledge(bob, created.id, world.now()) is False
        assert await drops.acknowledge(admin, created.id, world.now()) is True
        assert _files(world, created.id) == []
        with pytest.raises(NotFound):
            await _read(world, bob, created.id)


async def test_a_drop_lives_exactly_its_ttl_and_is_wiped_by_the_purge(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b")
        alice = await world.login(a.staff["org-a/admin"])
        created = await _uploaded(world, alice, os.urandom(3000), ttl=100)
        world.advance(99)
        bob = await world.login(b.staff["org-b/alice"])
        assert len(await _read(world, bob, created.id)) == 3000
        assert (await world.relay.purge(world.now())).drops == 0
        assert _files(world, created.id) == [".blob"]
        world.advance(1)
        with pytest.raises(NotFound):
            await _read(world, bob, created.id)
        assert (await world.relay.purge(world.now())).drops == 1
        assert _files(world, created.id) == []


async def test_an_idle_upload_goes_after_the_idle_ttl_and_bytes_keep_it_alive(
        tmp_path: Path) -> None:
    async with service_world(tmp_path, drop_idle_ttl=50) as world:
        a = await world.setup_org("org-a")
        await world.setup_org("org-b")
        alice = await world.login(a.staff["org-a/admin"])
        drops = world.relay.drops
        created = await _create(world, alice, 3000, 3600)
        world.advance(40)
        await drops.upload(created.id, created.upload_token, 0, 1000,
                           _pieces(os.urandom(1000)), world.now())
        world.advance(49)  # 89 s after creation, 49 s after the last bytes
        assert (await world.relay.purge(world.now())).drops == 0
        assert await drops.offset(created.id, created.upload_token, world.now()) == (1000, 3000)
        world.advance(1)
        with pytest.raises(NotFound):
            await drops.offset(created.id, created.upload_token, world.now())
        assert (await world.relay.purge(world.now())).drops == 1
        assert _files(world, created.id) == []
        again = await _create(world, alice, 3000, 3600)  # the open upload no longer counts
        assert again.id != created.id


async def test_a_drop_nobody_current_waits_for_is_purged(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a")
        b = await world.setup_org("org-b", ("admin", "leaver"))
        alice = await world.login(a.staff["org-a/admin"])
        created = await _uploaded(world, alice, os.urandom(3000))
        admin = await world.login(b.staff["org-b/admin"])
        assert await world.relay.drops.acknowledge(admin, created.id, world.now()) is False
        await world.append(b.remove("org-b/leaver"))
        assert (await world.relay.purge(world.now())).drops == 1
        assert _files(world, created.id) == []


async def test_open_uploads_per_org_are_limited(tmp_path: Path) -> None:
    async with service_world(tmp_path, max_open_uploads_per_org=2) as world:
        a = await world.setup_org("org-a", ("admin", "alice"))
        await world.setup_org("org-b")
        admin = await world.login(a.staff["org-a/admin"])
        first = await _create(world, admin, 3000, 3600)
        await _create(world, await world.login(a.staff["org-a/alice"]), 3000, 3600)
        with pytest.raises(TooManyUploads):
            await _create(world, admin, 3000, 3600)
        await world.relay.drops.upload(first.id, first.upload_token, 0, 3000,
                                       _pieces(os.urandom(3000)), world.now())
        await world.relay.drops.complete(first.id, first.upload_token, world.now())
        await _create(world, admin, 3000, 3600)  # a finished upload frees its place
