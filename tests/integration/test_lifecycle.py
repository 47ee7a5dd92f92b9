"""Key lifecycle against a real relay: rotation, removal, lost devices, forward secrecy.

Each test names the protection it exercises; removing that protection makes it fail.
Identity rekey, verification and revocation are in ``test_lifecycle_identity.py``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import AccessError
from protocol import MessagePayload, b64decode, b64encode, seal_message
from protocol.message import LogPosition
from tests.integration.kokcli import kok, ok
from tests.support.lifecycle import (
    PASSPHRASE,
    Network,
    relay_call,
    secrets_that_open,
    shifted,
)
from tests.support.relayproc import RelayProcess

HOUR = 3600


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


async def test_scheduled_rotation_follows_the_profiles_period(relay: Any, tmp_path: Path
                                                              ) -> None:
    """Checks ``lifecycle.rotation_reason`` (schedule) and ``kok org config``.

    The network is built two hours "ago" on a fresh relay, so its epoch is two hours old
    without any record dated in the future.
    """
    past = Network(relay, tmp_path, clock=shifted(-2 * HOUR))
    admin = await past.org("nord")
    anna = await past.staff(admin, "anna")
    assert (await anna.sync()).epoch_keys == 1
    org_id = str(admin.org_id)
    await past.close()

    def run(*args: str) -> Any:
        return json.loads(ok(kok("--json", *args, home=tmp_path, profile=org_id)).out)

    assert run("sync")["rotated"] is None  # the default period is 7 days
    shown = run("org", "show")
    assert shown["rotation"]["every"] == 7 * 86400 and shown["epoch"] == 1

    refused = kok("org", "config", "--rotate-every", "10m", home=tmp_path, profile=org_id)
    assert refused.code == 2 and "1 hour" in refused.error_line
    assert run("org", "show")["rotation"]["every"] == 7 * 86400  # nothing changed

    text = ok(kok("org", "config", "--rotate-every", "1h", home=tmp_path, profile=org_id)).out
    assert "every 1 hour" in text and "1 hours" not in text
    report = run("sync")
    assert (report["rotated"], report["rotation_reason"]) == (2, "schedule")
    assert run("sync")["rotated"] is None  # the new epoch is young
    ok(kok("org", "config", "--rotate-every", "2w", home=tmp_path, profile=org_id))
    assert run("org", "show")["rotation"]["every"] == 14 * 86400  # weeks, as people write them

    async with await Client.open(tmp_path, anna.profile.name, PASSPHRASE) as again:
        assert (await again.sync()).epoch_keys == 1
        assert f"epoch/{org_id}/2" in again.keystore.secrets


async def test_a_removed_colleague_can_read_nothing_sent_after(net: Network,
                                                               tmp_path: Path) -> None:
    """Checks removal = staff_remove + a new epoch granted to the others only, sessions end.

    The envelope sent after the removal is tried with every secret in the removed person's
    own keystore file (their epoch keys, box key, signing and storage keys): none opens it.
    """
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    await ben.sync()
    old_token = (await ben.api()).token
    assert old_token is not None
    removed = json.loads(ok(kok("--json", "org", "remove", str(ben.staff_id), home=tmp_path,
                                profile=str(sued.org_id))).out)
    assert removed["epoch"] == 2

    status, answer = await relay_call(net.relay.url, "GET", "/v1/grants", token=old_token)
    assert (status, answer["code"]) == (401, "session_invalid")  # ended at once
    status, answer = await relay_call(net.relay.url, "POST", "/v1/auth/challenge",
                                      body={"staff_id": ben.staff_id})
    assert (status, answer["code"]) == (403, "not_enrolled")
    with pytest.raises(AccessError) as refused:
        await ben.sync()
    assert refused.value.code == "staff_removed"

    await anna.send(to=[str(sued.org_id)], subject="nach dem Weggang", body="vertraulich")
    # the admin's library client syncs after ``kok`` stored entries in the same profile
    await sued.sync_log()
    stored = (await (await sued.api()).messages(after=0))["messages"]
    envelope = next(m for m in stored if m["epoch"] == 2)
    sealed = b64decode(envelope["sealed"])
    epoch2 = sued.directory.log.epoch(str(sued.org_id), 2)
    assert epoch2 is not None
    assert secrets_that_open(ben.profile.keystore_path, epoch2.public_key, sealed) == []
    # the same test on the admin's keystore opens it: the envelope is not simply unreadable
    assert secrets_that_open(sued.profile.keystore_path, epoch2.public_key, sealed) == [
        f"epoch/{sued.org_id}/2"]


async def test_lost_device_revoke_self_from_a_backup(net: Network, tmp_path: Path) -> None:
    """Checks ``staff revoke-self`` (signed by the staff key) and rotation on the admin's sync."""
    sued = await net.org("sued")
    ben = await net.staff(sued, "ben")
    await ben.sync()
    token = (await ben.api()).token
    backup = tmp_path / "backup"
    shutil.copytree(ben.profile.dir, backup / ben.profile.name)  # e.g. a USB stick at home

    done = json.loads(ok(kok("--json", "staff", "revoke-self", home=backup,
                             profile=ben.profile.name)).out)
    assert done == {"staff_id": ben.staff_id, "removed": True}
    status, _ = await relay_call(net.relay.url, "GET", "/v1/grants", token=token)
    assert status == 401  # the lost device's session ended at once
    with pytest.raises(AccessError) as refused:
        await ben.sync()
    assert refused.value.code == "staff_removed"
    again = kok("staff", "revoke-self", home=backup, profile=ben.profile.name)
    assert again.code == 1 and "removed" in again.error_line

    report = await sued.sync()
    assert (report.rotated, report.rotation_reason) == (2, "removal")
    assert (await sued.sync()).rotated is None
    info = await sued.org.show()
    assert [s.removed is not None for s in info.staff if s.staff_id == ben.staff_id] == [True]


async def test_forward_secrecy_old_epoch_keys_are_deleted(tmp_path: Path) -> None:
    """Checks ``lifecycle.retire_epoch_secrets`` and the relay's retirement of grants.

    A relay whose max TTL is 5 s: once the newer epoch is older than that plus MAX_SKEW
    (the receiving client's clock is moved 400 s ahead; it appends nothing), the old secret
    is deleted. A keystore copied before still opens a recorded envelope of the old epoch;
    the keystore afterwards does not.
    """
    relay = RelayProcess.start(tmp_path / "relay", network_profile=True,
                               env={"KOK_RELAY_LIMITS_MAX_TTL": "5",
                                    "KOK_RELAY_EXPIRY_INTERVAL": "1"})
    net = Network(relay, tmp_path / "home")
    try:
        nord, sued = await net.org("nord"), await net.org("sued")
        anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
        org_id = str(sued.org_id)
        await ben.sync()
        await anna.sync_log()
        epoch1 = anna.directory.log.current_epoch(org_id)
        now = anna.now()
        payload = MessagePayload(id=secrets.token_bytes(16), from_org=str(nord.org_id),
                                 from_staff=str(anna.staff_id), to=(org_id,), sent=now,
                                 subject="vor der Rotation", body="aufgezeichnet",
                                 thread=secrets.token_bytes(16), expires=now + 5,
                                 log=LogPosition.of(anna.directory.log))
        recorded = seal_message(payload, anna.signing_key(), org_id, 1, epoch1.public_key,
                                secrets.token_bytes(32))  # what an eavesdropper records
        await (await anna.api()).send(secrets.token_bytes(16), 5, [
            {"to_org": org_id, "epoch": 1, "sealed": b64encode(recorded)}])
        assert [m.subject for m in (await ben.sync()).messages] == ["vor der Rotation"]
        before = tmp_path / "keystore-before"
        shutil.copy(ben.profile.keystore_path, before)

        assert await sued.org.rotate() == 2
        report = await ben.sync()
        assert report.epoch_keys == 1 and report.retired_keys == 0  # too early
        assert f"epoch/{org_id}/1" in ben.keystore.secrets

        ben = await net.reopen(ben, clock=shifted(400))
        assert (await ben.sync()).retired_keys == 1
        assert (await ben.sync()).retired_keys == 0  # a grant still listed never brings it back
        assert set(n for n in ben.keystore.secrets if n.startswith("epoch/")) == {
            f"epoch/{org_id}/2"}
        assert secrets_that_open(before, epoch1.public_key, recorded) == [f"epoch/{org_id}/1"]
        assert secrets_that_open(ben.profile.keystore_path, epoch1.public_key, recorded) == []

        # the relay deleted the old epoch's grants (expiry task), the current ones stay
        db = sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True)
        try:
            for _ in range(100):
                grants = dict(db.execute("SELECT epoch, count(*) FROM grants WHERE org_id = ? "
                                         "GROUP BY epoch", (org_id,)).fetchall())
                if 1 not in grants:
                    break
                await asyncio.sleep(0.1)
        finally:
            db.close()
        assert grants == {2: 2}
    finally:
        await net.close()
        relay.stop()
