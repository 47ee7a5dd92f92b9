"""Epoch grants in process, with the clock moved by the test (no sleeping)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import wire
from relay.errors import InvalidRequest, NotAdmin, NotFound
from tests.relay.inprocess import service_world


async def test_only_an_admin_of_the_org_uploads_and_each_reads_their_own(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        a = await world.setup_org("org-a", ("admin", "alice"))
        b = await world.setup_org("org-b")
        grants = world.relay.grants
        upload = wire.grant_upload("org-a", "1", {"grants": a.grants()})
        alice = await world.login(a.staff["org-a/alice"])
        with pytest.raises(NotAdmin):
            await grants.upload(alice, upload, world.now())
        other_admin = await world.login(b.staff["org-b/admin"])
        with pytest.raises(NotFound):  # another org's: as if it did not exist
            await grants.upload(other_admin, upload, world.now())
        admin = await world.login(a.staff["org-a/admin"])
        with pytest.raises(NotFound):
            await grants.upload(admin, wire.grant_upload("org-a", "7", {"grants": a.grants()}),
                                world.now())
        with pytest.raises(InvalidRequest):  # org-b's staff are not org-a's to grant
            await grants.upload(admin, wire.grant_upload("org-a", "1", {"grants": b.grants()}),
                                world.now())
        assert await grants.upload(admin, upload, world.now()) == 2
        mine = await grants.mine(alice, world.now())
        assert [(g.org_id, g.epoch, g.staff_id) for g in mine] == [("org-a", 1, "org-a/alice")]


async def test_grants_of_a_retired_epoch_go_max_ttl_after_it_was_replaced(
        tmp_path: Path) -> None:
    async with service_world(tmp_path, max_ttl=1000) as world:
        org = await world.setup_org("org-a", ("admin", "alice"))
        alice = await world.login(org.staff["org-a/alice"])
        grants = world.relay.grants
        world.advance(50)
        replaced_at = world.now()
        await world.append(org.new_epoch())
        admin = await world.login(org.staff["org-a/admin"])
        await grants.upload(admin, wire.grant_upload("org-a", "2", {"grants": org.grants(2)}),
                            world.now())
        epochs = [g.epoch for g in await grants.mine(alice, replaced_at + 999)]
        assert epochs == [1, 2]
        assert [g.epoch for g in await grants.mine(alice, replaced_at + 1000)] == [2]
        # uploaded late for the retired epoch: it still goes by the same deadline
        await grants.upload(admin, wire.grant_upload("org-a", "1", {"grants": org.grants(1)}),
                            world.advance(10))
        assert [g.epoch for g in await grants.mine(alice, replaced_at + 1000)] == [2]
        await world.relay.purge(replaced_at + 1000)
        assert [g.epoch for g in await grants.mine(alice, world.now())] == [2]


async def test_a_malformed_upload_path_is_not_found(tmp_path: Path) -> None:
    for org_text, epoch_text in (("Org-A", "1"), ("org-a", "x"), ("org-a", "1" * 16),
                                 ("org-a", "\u0661")):  # an Arabic-Indic digit one
        with pytest.raises(NotFound):
            wire.grant_upload(org_text, epoch_text, {"grants": []})
