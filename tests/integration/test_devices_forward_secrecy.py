"""Forward secrecy against a relay that keeps everything (SPEC.md sections 20.2 and 20.6).

The attacker holds every grant and envelope the relay ever served, and later a device's
keystore with its passphrase. Deleting old epoch secrets alone does not help against
them: the recorded grants of old epochs were sealed to the device's box key, and a box
key that never changes reopens them all. Each device therefore replaces its box key after
each rotation it takes part in and deletes the old box secret; these tests show the
recorded old epochs stay closed, and that a keystore taken before the window does open
them (the attack is real, not a test that cannot fail).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import nacl.exceptions

from client import Client
from client.keystore import Keystore
from protocol import BoxKeyPair, MessagePayload, b64decode, b64encode, seal_message
from protocol.errors import ProtocolError
from protocol.grants import open_grant
from protocol.keylog import KeyLog
from protocol.message import LogPosition
from protocol.sealedbox import open_sealed
from tests.support.lifecycle import PASSPHRASE, Network, shifted
from tests.support.relayproc import RelayProcess

WINDOW = 3700
"""Seconds after the rotation: past the relay's max TTL (5 s) + MAX_SKEW and BOX_KEY_GRACE."""


async def record_grants(client: Client, kept: dict[tuple[str, int], set[bytes]]) -> None:
    """What a relay that keeps everything keeps: every grant it ever handed out."""
    for raw in await (await client.api()).grants():
        kept.setdefault((str(raw["org_id"]), int(raw["epoch"])), set()).add(
            b64decode(str(raw["grant"])))


def what_a_keystore_opens(path: Path, staff_id: str, log: KeyLog,
                          grants: dict[tuple[str, int], set[bytes]],
                          envelopes: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Every recorded envelope a captured keystore (plus its passphrase) opens.

    The attacker tries every secret in it as an epoch secret, and as a box secret on every
    recorded grant (adding the epoch secrets those grants yield).
    """
    held = list(Keystore.open(path, PASSPHRASE).secrets.values())
    epoch_secrets = [s for s in held if len(s) == 32]
    for sealed_grants in grants.values():
        for sealed in sealed_grants:
            for secret in held:
                if len(secret) != 32:
                    continue
                try:
                    grant = open_grant(sealed, staff_id, BoxKeyPair.from_seed(secret), log)
                except ProtocolError:
                    continue
                epoch_secrets.append(grant.secret_key)
    opened = []
    for public, sealed in envelopes:
        for secret in epoch_secrets:
            try:
                open_sealed(public, secret, sealed)
            except (ProtocolError, nacl.exceptions.CryptoError):
                continue
            opened.append(sealed)
            break
    return opened


async def test_a_device_captured_after_the_window_opens_no_recorded_old_epoch(
        tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "relay", network_profile=True,
                               env={"KOK_RELAY_LIMITS_MAX_TTL": "5"})
    net = Network(relay, tmp_path / "home")
    try:
        nord, sued = await net.org("nord"), await net.org("sued")
        anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
        org_id, staff_id = str(sued.org_id), str(ben.staff_id)
        grants: dict[tuple[str, int], set[bytes]] = {}
        await ben.sync()
        await record_grants(ben, grants)
        await anna.sync_log()
        epoch1 = anna.directory.log.current_epoch(org_id)
        now = anna.now()
        old: list[tuple[bytes, bytes]] = []
        for n in range(3):
            payload = MessagePayload(
                id=secrets.token_bytes(16), from_org=str(nord.org_id),
                from_staff=str(anna.staff_id), to=(org_id,), sent=now,
                subject=f"Fall {n}", body="vor der Rotation", thread=secrets.token_bytes(16),
                expires=now + 5, log=LogPosition.of(anna.directory.log))
            sealed = seal_message(payload, anna.signing_key(), org_id, 1, epoch1.public_key,
                                  secrets.token_bytes(32))
            await (await anna.api()).send(secrets.token_bytes(16), 5, [
                {"to_org": org_id, "epoch": 1, "sealed": b64encode(sealed)}])
            old.append((epoch1.public_key, sealed))  # the relay keeps the envelope
        assert len((await ben.sync()).messages) == 3

        assert await sued.org.rotate() == 2
        await record_grants(ben, grants)  # epoch 2, sealed to ben's first box key
        first_box = ben.box_key().public
        await ben.sync()
        early = tmp_path / "captured-early"
        shutil.copy(ben.profile.keystore_path, early)

        ben = await net.reopen(ben, clock=shifted(WINDOW))
        report = await ben.sync()
        await record_grants(ben, grants)
        assert (org_id, 1) in grants and (org_id, 2) in grants
        log = ben.directory.log

        # captured after the window: nothing recorded from epoch 1 opens
        assert what_a_keystore_opens(ben.profile.keystore_path, staff_id, log, grants,
                                     old) == []
        # captured before it: the same recorded material opens every old message
        assert len(what_a_keystore_opens(early, staff_id, log, grants, old)) == 3
        # why: he took part in the rotation, so he replaced his box key, and after the
        # window deleted epoch 1's secret and the first box secret
        mine = log.device(staff_id, ben.signing_key().fingerprint)
        assert mine.box_key != first_box and len(mine.box_keys) == 2
        assert report.retired_keys == 2
        # and the late device still works: epoch 2 came in, a new message arrives
        await anna.sync_log()
        epoch2 = anna.directory.log.current_epoch(org_id)
        now = anna.now()
        payload = MessagePayload(
            id=secrets.token_bytes(16), from_org=str(nord.org_id), from_staff=str(anna.staff_id),
            to=(org_id,), sent=now, subject="nach der Rotation", body="lesbar",
            thread=secrets.token_bytes(16), expires=now + 2 * WINDOW,  # ben's clock is ahead
            log=LogPosition.of(anna.directory.log))
        sealed = seal_message(payload, anna.signing_key(), org_id, epoch2.number,
                              epoch2.public_key, secrets.token_bytes(32))
        await (await anna.api()).send(secrets.token_bytes(16), 5, [
            {"to_org": org_id, "epoch": epoch2.number, "sealed": b64encode(sealed)}])
        assert [m.subject for m in (await ben.sync()).messages] == ["nach der Rotation"]
    finally:
        await net.close()
        relay.stop()
