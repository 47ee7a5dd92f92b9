"""Devices in the key log: who may add, remove and re-key them, and what a removal ends."""

from __future__ import annotations

import pytest

from protocol import BoxKeyPair, SigningKeyPair, open_grant, open_message, sign_record
from protocol.devices import BOX_KEY_GRACE, BOX_KEY_PERIOD, box_key_due, deletable_box_keys
from protocol.errors import (
    BadField,
    DecryptFailed,
    LogDeviceLast,
    LogDeviceLimit,
    LogDeviceRemoved,
    LogDeviceUnknown,
    LogKeyReused,
    LogStaffRemoved,
    WrongSigner,
)
from protocol.keylog import MAX_DEVICES
from protocol.keys import check_box_public
from protocol.records import BoxKey, DeviceAdd, DeviceRemove, StaffRemove

from .world import Staff, World, seed, standard_world

# Points of small order on Curve25519 (and non-canonical encodings of them): a box sealed
# to one has a shared secret everyone can compute.
LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    ((2**255 - 19) - 1).to_bytes(32, "little"),
    (2**255 - 19).to_bytes(32, "little"),
    (2**255 - 19 + 1).to_bytes(32, "little"),
]


def link(world: World, owner: Staff, name: str, signer: SigningKeyPair | None = None) -> Staff:
    """Add a device for ``owner`` (signed by ``signer``, default the owner's first device)."""
    device = Staff(owner.staff_id, SigningKeyPair.from_seed(seed(f"device/{name}")),
                   BoxKeyPair.from_seed(seed(f"device-box/{name}")))
    world.apply(sign_record(DeviceAdd(owner.staff_id, device.signing.public, device.box.public,
                                      world.now), signer or owner.signing))
    return device


@pytest.mark.parametrize("point", LOW_ORDER)
def test_low_order_box_keys_are_refused(point: bytes) -> None:
    with pytest.raises(BadField, match="low-order"):
        check_box_public(point)


def test_real_box_keys_pass() -> None:
    for n in range(50):
        public = BoxKeyPair.from_seed(seed(f"ok/{n}")).public
        assert check_box_public(public) == public


def test_a_linked_device_counts_for_its_member_until_removed() -> None:
    world, _, b, alice, _ = standard_world()
    laptop = link(world, alice, "laptop")
    assert [d.device_id for d in world.log.devices(alice.staff_id)] == [
        alice.signing.fingerprint, laptop.signing.fingerprint]
    sent = world.seal(world.payload(alice, ("org-b",)), laptop, b)
    opened = open_message(sent, to_org="org-b", epoch=b.epoch,
                          epoch_secret=b.epochs[b.epoch].secret, keylog=world.log, now=world.now)
    assert opened.payload.from_staff == alice.staff_id
    world.now += 10
    world.apply(sign_record(DeviceRemove(alice.staff_id, laptop.signing.fingerprint, world.now),
                            alice.signing))
    removed = world.now
    world.now += 10
    assert [d.device_id for d in world.log.devices(alice.staff_id)] == [
        alice.signing.fingerprint]
    late = world.seal(world.payload(alice, ("org-b",)), laptop, b)
    with pytest.raises(WrongSigner):
        open_message(late, to_org="org-b", epoch=b.epoch, epoch_secret=b.epochs[b.epoch].secret,
                     keylog=world.log, now=world.now)
    assert laptop.signing.fingerprint not in world.log.signing_keys_at(alice.staff_id, removed)
    # the removed device can no longer act for alice in the log either
    for record in (DeviceAdd(alice.staff_id, SigningKeyPair.from_seed(seed("x")).public,
                             BoxKeyPair.from_seed(seed("x")).public, world.now),
                   StaffRemove(alice.staff_id, world.now)):
        with pytest.raises(WrongSigner):
            world.log.check(sign_record(record, laptop.signing).to_bytes(), world.now)
    with pytest.raises(LogDeviceRemoved):
        world.log.check(sign_record(BoxKey(alice.staff_id, laptop.signing.fingerprint,
                                           BoxKeyPair.from_seed(seed("y")).public, world.now),
                                    laptop.signing).to_bytes(), world.now)


def test_the_last_device_cannot_be_removed_and_unknown_ones_are_named() -> None:
    world, a, _, alice, _ = standard_world()
    with pytest.raises(LogDeviceLast):
        world.log.check(sign_record(DeviceRemove(alice.staff_id, alice.signing.fingerprint,
                                                 world.now), a.identity).to_bytes(), world.now)
    with pytest.raises(LogDeviceUnknown):
        world.log.check(sign_record(DeviceRemove(alice.staff_id, "A" * 32, world.now),
                                    a.identity).to_bytes(), world.now)


def test_devices_are_limited_and_box_keys_never_repeat() -> None:
    world, a, _, alice, bob = standard_world()
    for n in range(MAX_DEVICES - 1):
        link(world, alice, f"d{n}", a.identity)
    with pytest.raises(LogDeviceLimit):
        link(world, alice, "one-too-many")
    with pytest.raises(LogKeyReused):
        world.log.check(sign_record(DeviceAdd(bob.staff_id, seed("fresh-signing"),
                                              alice.box.public, world.now),
                                    bob.signing).to_bytes(), world.now)


def test_a_removed_member_has_no_devices() -> None:
    world, a, _, alice, _ = standard_world()
    laptop = link(world, alice, "laptop")
    world.remove_staff(a, alice)
    with pytest.raises(LogStaffRemoved):
        world.log.devices(alice.staff_id)
    with pytest.raises(LogStaffRemoved):
        link(world, alice, "after", laptop.signing)


def test_a_grant_sealed_to_a_replaced_box_key_does_not_open_with_the_new_one() -> None:
    world, a, _, alice, _ = standard_world()
    old_grant = world.grant(a, alice)
    new_box = BoxKeyPair.from_seed(seed("alice/box/2"))
    world.apply(sign_record(BoxKey(alice.staff_id, alice.signing.fingerprint, new_box.public,
                                   world.now), alice.signing))
    assert world.log.staff(alice.staff_id).box_key == new_box.public
    with pytest.raises(DecryptFailed):
        open_grant(old_grant, alice.staff_id, new_box, world.log)
    assert open_grant(old_grant, alice.staff_id, alice.box, world.log).epoch == a.epoch


def test_box_key_due_after_a_rotation_taken_part_in_and_after_a_week() -> None:
    world, a, _, alice, _ = standard_world()
    device = alice.signing.fingerprint
    holds = {("org-a", 1)}

    def due() -> str | None:
        return box_key_due(world.log, alice.staff_id, device,
                           lambda org, n: (org, n) in holds, world.now)

    # epoch 1 came before alice's box key: nothing to do yet
    assert due() is None
    world.new_epoch(a)
    assert due() is None  # a rotation she has not received yet
    holds.add(("org-a", 2))
    assert due() == "rotation"
    new_box = BoxKeyPair.from_seed(seed("alice/box/2"))
    world.apply(sign_record(BoxKey(alice.staff_id, device, new_box.public, world.now),
                            alice.signing))
    assert due() is None
    world.now += BOX_KEY_PERIOD - 1
    assert due() is None
    world.now += 1
    assert due() == "age"


def test_old_box_keys_go_after_the_grace_and_only_when_grants_are_settled() -> None:
    world, _, _, alice, _ = standard_world()
    device = alice.signing.fingerprint
    new_box = BoxKeyPair.from_seed(seed("alice/box/2"))
    world.apply(sign_record(BoxKey(alice.staff_id, device, new_box.public, world.now),
                            alice.signing))
    held = [alice.box.public, new_box.public]

    def deletable(settled: bool) -> list[bytes]:
        return deletable_box_keys(world.log, alice.staff_id, device, held, settled, world.now)

    assert deletable(True) == []
    world.now += BOX_KEY_GRACE
    assert deletable(False) == []
    assert deletable(True) == [alice.box.public]
