"""Epoch grants: an epoch secret sealed to one staff member and signed by the org."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import labels
from protocol.encoding import Signature, SignedItem, b64encode, canonical_json
from protocol.errors import (
    BadField,
    DecryptFailed,
    GrantKeyMismatch,
    GrantUnknownEpoch,
    GrantWrongRecipient,
    LogOrgUnknown,
    MissingField,
    SignatureError,
    UnknownField,
    WrongSigner,
)
from protocol.grants import (
    Grant,
    grant_log_lag,
    grant_upload_parts,
    make_grant,
    open_grant,
    verify_grant_upload,
)
from protocol.keys import BoxKeyPair, SigningKeyPair, box_public_from_secret
from protocol.message import EMPTY_LOG, LogPosition
from protocol.records import DeviceAdd, sign_record
from protocol.sealedbox import seal

from .world import Org, Staff, World, seed, standard_world


def _open(world: World, staff: Staff, sealed: bytes) -> Grant:
    return open_grant(sealed, staff.staff_id, staff.box, world.log)


def _forge(org: Org, staff: Staff, body: dict[str, object],
           signer: SigningKeyPair | None = None) -> bytes:
    data = canonical_json(body)
    key = signer or org.identity
    item = SignedItem(data, (Signature(key.fingerprint, key.sign(labels.GRANT, data)),))
    return seal(staff.box.public, item.to_bytes(), seed("forged-grant")) + bytes(64)


def _body(org: Org, staff: Staff, number: int, secret: bytes) -> dict[str, object]:
    return {"v": 1, "org_id": org.org_id, "epoch": number, "staff_id": staff.staff_id,
            "public_key": b64encode(box_public_from_secret(secret)),
            "secret_key": b64encode(secret), "log": EMPTY_LOG.to_json()}


def test_grant_round_trip() -> None:
    world, a, _b, alice, _bob = standard_world()
    grant = _open(world, alice, world.grant(a, alice))
    assert (grant.org_id, grant.epoch, grant.staff_id) == ("org-a", 1, alice.staff_id)
    assert grant.secret_key == a.epochs[1].secret
    assert a.epochs[1].secret.hex() not in repr(grant)


def test_every_flipped_bit_is_caught() -> None:
    """In the sealed box by the recipient; in the upload signature by the relay."""
    world, a, _b, alice, _bob = standard_world()
    grant = world.grant(a, alice)
    for index in range(0, len(grant), 3):
        damaged = bytearray(grant)
        damaged[index] ^= 0x10
        if index < len(grant) - 64:
            with pytest.raises(DecryptFailed):
                _open(world, alice, bytes(damaged))
        with pytest.raises((WrongSigner, BadField)):
            verify_grant_upload(bytes(damaged), "org-a", a.epoch, alice.staff_id,
                                alice.signing.fingerprint, world.log)


def test_only_an_identity_key_can_sign_a_grant_the_relay_stores() -> None:
    """An admin by role without the identity key cannot overwrite a colleague's grant."""
    world, a, _b, alice, _bob = standard_world()
    carol = world.add_staff(a, "carol")
    device = carol.signing.fingerprint
    grant = world.grant(a, carol)
    verify_grant_upload(grant, "org-a", a.epoch, carol.staff_id, device, world.log)
    sealed = grant[:-64]
    by_alice = sealed + alice.signing.sign(labels.GRANT_UPLOAD, *grant_upload_parts(
        "org-a", a.epoch, carol.staff_id, device, carol.box.public, sealed))
    with pytest.raises(WrongSigner):
        verify_grant_upload(by_alice, "org-a", a.epoch, carol.staff_id, device, world.log)
    with pytest.raises(WrongSigner):  # the signature names the member it is for
        verify_grant_upload(grant, "org-a", a.epoch, alice.staff_id,
                            alice.signing.fingerprint, world.log)
    world.new_epoch(a)
    with pytest.raises(WrongSigner):  # and the epoch
        verify_grant_upload(grant, "org-a", a.epoch, carol.staff_id, device, world.log)


def test_a_grant_cannot_be_moved_to_another_device_of_the_same_person() -> None:
    """Grants are per device: the upload signature names the device and its box key, so a
    relay cannot file carol's phone's grant under her laptop (or the reverse)."""
    world, a, _b, _alice, _bob = standard_world()
    carol = world.add_staff(a, "carol")
    laptop = SigningKeyPair.from_seed(seed("carol-laptop"))
    laptop_box = BoxKeyPair.from_seed(seed("carol-laptop-box"))
    world.apply(sign_record(DeviceAdd(carol.staff_id, laptop.public, laptop_box.public,
                                      world.now), carol.signing))
    to_phone = world.grant(a, carol)
    verify_grant_upload(to_phone, "org-a", a.epoch, carol.staff_id, carol.signing.fingerprint,
                        world.log)
    with pytest.raises(WrongSigner):
        verify_grant_upload(to_phone, "org-a", a.epoch, carol.staff_id, laptop.fingerprint,
                            world.log)
    with pytest.raises(WrongSigner):  # a device the member never had
        verify_grant_upload(to_phone, "org-a", a.epoch, carol.staff_id, "AAAA", world.log)


def test_a_grant_states_the_admins_log_position() -> None:
    """The position is signed inside; one that does not hold the granted epoch, or that
    disagrees with our chain, cannot come from an admin who saw our history."""
    world, a, _b, alice, _bob = standard_world()
    grant = _open(world, alice, world.grant(a, alice))
    assert grant.log == LogPosition.of(world.log)
    assert grant_log_lag(world.log, grant) == 0
    world.add_staff(a, "carol")
    assert grant_log_lag(world.log, grant) == 1  # granted before carol came: behind, agrees
    forked = dataclasses.replace(grant, log=LogPosition(grant.log.size, bytes(32)))
    assert grant_log_lag(world.log, forked) is None
    blind = dataclasses.replace(grant, log=EMPTY_LOG)  # never saw the epoch it grants
    assert grant_log_lag(world.log, blind) is None
    ahead = dataclasses.replace(grant, log=LogPosition(world.log.size + 3, bytes(32)))
    assert grant_log_lag(world.log, ahead) == -3
    with pytest.raises(MissingField):
        body = _body(a, alice, 1, a.epochs[1].secret)
        del body["log"]
        _open(world, alice, _forge(a, alice, body))


def test_a_relay_cannot_hand_out_a_key_of_its_own() -> None:
    world, a, _b, alice, _bob = standard_world()
    rogue = BoxKeyPair.from_seed(seed("rogue-epoch")).secret
    with pytest.raises(GrantKeyMismatch):  # signed by the org, but not the logged key
        _open(world, alice, _forge(a, alice, _body(a, alice, 1, rogue)))
    body = _body(a, alice, 1, a.epochs[1].secret)
    body["public_key"] = _body(a, alice, 1, rogue)["public_key"]
    with pytest.raises(GrantKeyMismatch):  # public and secret half do not match
        _open(world, alice, _forge(a, alice, body))


def test_grant_for_someone_else() -> None:
    world, a, _b, alice, _bob = standard_world()
    carol = world.add_staff(a, "carol")
    with pytest.raises(GrantWrongRecipient):
        _open(world, alice, _forge(a, alice, _body(a, carol, 1, a.epochs[1].secret)))


def test_grant_signed_by_someone_else() -> None:
    world, a, b, alice, _bob = standard_world()
    body = _body(a, alice, 1, a.epochs[1].secret)
    with pytest.raises(WrongSigner):
        _open(world, alice, _forge(a, alice, body, signer=b.identity))
    with pytest.raises(WrongSigner):
        _open(world, alice, _forge(a, alice, body, signer=alice.signing))


def test_grant_with_a_broken_signature() -> None:
    world, a, _b, alice, _bob = standard_world()
    data = canonical_json(_body(a, alice, 1, a.epochs[1].secret))
    sig = a.identity.sign(labels.RECORD, data)  # the org's key, another label
    item = SignedItem(data, (Signature(a.identity.fingerprint, sig),))
    with pytest.raises(SignatureError):
        _open(world, alice, seal(alice.box.public, item.to_bytes(), seed("g")) + bytes(64))


def test_grant_for_an_epoch_not_in_the_log() -> None:
    world, a, _b, alice, _bob = standard_world()
    with pytest.raises(GrantUnknownEpoch):
        _open(world, alice, _forge(a, alice, _body(a, alice, 7, a.epochs[1].secret)))


def test_grant_of_an_unknown_org() -> None:
    world, _a, _b, _alice, _bob = standard_world()
    ghost = Org("org-q", SigningKeyPair.from_seed(seed("q")))
    member = Staff("org-q/eve", SigningKeyPair.from_seed(seed("eve")),
                   BoxKeyPair.from_seed(seed("eve-box")))
    with pytest.raises(LogOrgUnknown):
        _open(world, member, _forge(ghost, member, _body(ghost, member, 1, seed("s"))))


def test_grant_reissued_after_rekey_is_accepted_but_not_by_a_retired_key() -> None:
    world, a, _b, alice, _bob = standard_world()
    old = a.identity
    world.rekey(a, "second")
    assert _open(world, alice, world.grant(a, alice)).epoch == 1  # new key, older epoch: ok
    world.new_epoch(a)
    body = _body(a, alice, 2, a.epochs[2].secret)
    with pytest.raises(WrongSigner):  # the retired key cannot speak for the new epoch
        _open(world, alice, _forge(a, alice, body, signer=old))


def test_unknown_grant_fields_are_refused() -> None:
    world, a, _b, alice, _bob = standard_world()
    body = _body(a, alice, 1, a.epochs[1].secret) | {"note": "x"}
    with pytest.raises(UnknownField):
        _open(world, alice, _forge(a, alice, body))


def test_make_grant_refuses_a_member_of_another_org() -> None:
    _world, a, _b, _alice, bob = standard_world()
    with pytest.raises(BadField):
        make_grant(a.identity, "org-a", 1, a.epochs[1].secret, bob.staff_id, bob.box.public,
                   seed("x"), device_id=bob.signing.fingerprint, log=EMPTY_LOG)


def test_a_grant_to_a_low_order_box_key_is_a_clear_error() -> None:
    """Not a library crash: the caller can skip that member and grant the others."""
    from protocol.errors import BadField

    _world, a, *_ = standard_world()
    with pytest.raises(BadField):
        make_grant(a.identity, "org-a", 1, a.epochs[1].secret, "org-a/alice", bytes(32),
                   seed("eph"), device_id="AAAA", log=EMPTY_LOG)
