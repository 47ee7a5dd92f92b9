"""The key log: every rule of the table (each test fails if its rule is removed), the hash
chain, the signed head, and the questions clients and the relay ask."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TypeVar

import pytest

from protocol import (
    Epoch,
    KeyLog,
    OrgAdmit,
    OrgRekey,
    OrgRevoke,
    SignedItem,
    SigningKeyPair,
    StaffAdd,
    StaffRemove,
    labels,
    sign_head,
    sign_record,
    verify_head,
)
from protocol.encoding import Signature, canonical_json, parse_canonical
from protocol.errors import (
    BadField,
    LogEpochOrder,
    LogHeadInvalid,
    LogKeyReused,
    LogNoEpoch,
    LogOrgExists,
    LogOrgRevoked,
    LogOrgUnknown,
    LogRewritten,
    LogStaffExists,
    LogStaffRemoved,
    LogStaffUnknown,
    LogTimestamp,
    ProtocolError,
    SenderInvalid,
    SignatureError,
    WrongSigner,
)
from protocol.keylog import MAX_SKEW, ZERO_HASH, Head, chain_hash
from protocol.keys import fingerprint
from protocol.records import (
    OrgSettings,
    OrgVerify,
    Record,
    countersign,
    parse_record_body,
    record_body,
)

from .world import T0, Org, World, seed, standard_world

MALLORY = SigningKeyPair.from_seed(seed("mallory"))


def _rejects(world: World, item: SignedItem, error: type[ProtocolError]) -> None:
    """The record is refused with ``error`` and the log is left exactly as it was."""
    before = (world.log.size, world.log.head_hash, repr(world.log.orgs))
    with pytest.raises(error):
        world.apply(item)
    with pytest.raises(error):
        world.log.check(item.to_bytes(), world.now)
    assert (world.log.size, world.log.head_hash, repr(world.log.orgs)) == before


def _staff_add(org: Org, name: str, key_name: str | None = None) -> StaffAdd:
    key = SigningKeyPair.from_seed(seed(f"signing/{key_name or name}")).public
    return StaffAdd(f"{org.org_id}/{name}", key, seed(f"box/{name}"), "staff", 0)


RecordT = TypeVar("RecordT", bound=Record)


def _at(record: RecordT, created: int) -> RecordT:
    return replace(record, created=created)


# --- who signs ----------------------------------------------------------------------------


def test_org_admit_needs_the_network_key() -> None:
    world = World()
    record = OrgAdmit("org-x", "X", seed("x"), world.now)
    _rejects(world, sign_record(record, MALLORY), WrongSigner)
    world.apply(sign_record(record, world.network))


def test_org_revoke_needs_the_network_key() -> None:
    world, a, *_ = standard_world()
    _rejects(world, sign_record(OrgRevoke("org-a", "x", world.now), a.identity), WrongSigner)


def test_org_rekey_needs_old_identity_and_network() -> None:
    world, a, *_ = standard_world()
    record = OrgRekey("org-a", seed("new-identity"), world.now)
    _rejects(world, sign_record(record, a.identity), WrongSigner)  # one signature only
    _rejects(world, sign_record(record, world.network), WrongSigner)
    _rejects(world, sign_record(record, MALLORY, world.network), WrongSigner)
    _rejects(world, sign_record(record, a.identity, MALLORY), WrongSigner)
    world.apply(countersign(sign_record(record, a.identity), world.network))
    assert world.log.org("org-a").identity_key == seed("new-identity")


def test_staff_add_needs_the_current_identity_key() -> None:
    world, a, *_ = standard_world()
    old = a.identity
    world.rekey(a, "second")
    record = _at(_staff_add(a, "carol"), world.now)
    _rejects(world, sign_record(record, old), WrongSigner)
    _rejects(world, sign_record(record, world.network), WrongSigner)
    world.apply(sign_record(record, a.identity))


def test_staff_remove_by_identity_or_by_the_member_only() -> None:
    world, a, _b, alice, _bob = standard_world()
    carol = world.add_staff(a, "carol")
    record = StaffRemove(alice.staff_id, world.now)
    _rejects(world, sign_record(record, carol.signing), WrongSigner)  # a colleague may not
    _rejects(world, sign_record(record, world.network), WrongSigner)
    world.apply(sign_record(record, alice.signing))  # a lost device: the member itself
    world.apply(sign_record(StaffRemove(carol.staff_id, world.now), a.identity))


def test_epoch_needs_the_identity_key() -> None:
    world, _a, _b, alice, _bob = standard_world()
    record = Epoch("org-a", 2, seed("epoch-2"), world.now)
    _rejects(world, sign_record(record, alice.signing), WrongSigner)
    _rejects(world, sign_record(record, world.network), WrongSigner)


def test_exactly_the_required_signatures() -> None:
    world, a, *_ = standard_world()
    record = Epoch("org-a", 2, seed("epoch-2"), world.now)
    _rejects(world, sign_record(record, a.identity, world.network), WrongSigner)


def test_a_record_signature_under_another_label_fails() -> None:
    world, a, *_ = standard_world()
    body = record_body(Epoch("org-a", 2, seed("epoch-2"), world.now))
    forged = SignedItem(body, (Signature(a.identity.fingerprint,
                                         a.identity.sign(labels.GRANT, body)),))
    _rejects(world, forged, SignatureError)


def test_a_tampered_body_fails_its_signature() -> None:
    world, a, *_ = standard_world()
    item = sign_record(Epoch("org-a", 2, seed("epoch-2"), world.now), a.identity)
    other = record_body(Epoch("org-a", 3, seed("epoch-2"), world.now))
    _rejects(world, SignedItem(other, item.sigs), SignatureError)


# --- what must hold ---------------------------------------------------------------------


def test_org_admit_refuses_a_live_org_id() -> None:
    world, *_ = standard_world()
    _rejects(world, sign_record(OrgAdmit("org-a", "A2", seed("other"), world.now),
                                world.network), LogOrgExists)


def test_org_admit_again_after_revocation_keeps_history() -> None:
    world, a, _b, alice, _bob = standard_world()
    world.revoke(a)
    world.now += 10
    world.apply(sign_record(OrgAdmit("org-a", "A again", seed("identity-2"), world.now),
                            world.network))
    org = world.log.live_org("org-a")
    assert org.identity_key == seed("identity-2") and org.name == "A again"
    with pytest.raises(LogStaffRemoved):  # the old members do not come back
        world.log.active_staff(alice.staff_id)
    with pytest.raises(LogNoEpoch):  # nor does an epoch key of the old admission
        world.log.current_epoch("org-a")


def test_readmitted_org_continues_epochs_and_keeps_staff_ids() -> None:
    world, a, *_ = standard_world()
    world.revoke(a)
    identity = SigningKeyPair.from_seed(seed("identity-a-2"))
    world.apply(sign_record(OrgAdmit("org-a", "A", identity.public, world.now), world.network))
    _rejects(world, sign_record(Epoch("org-a", 1, seed("e"), world.now), identity),
             LogEpochOrder)
    _rejects(world, sign_record(_at(_staff_add(a, "alice", "alice-2"), world.now), identity),
             LogStaffExists)
    world.apply(sign_record(Epoch("org-a", 2, seed("e"), world.now), identity))
    assert world.log.current_epoch("org-a").number == 2


def test_org_revoke_needs_a_live_org() -> None:
    world, a, *_ = standard_world()
    _rejects(world, sign_record(OrgRevoke("org-x", "x", world.now), world.network), LogOrgUnknown)
    world.revoke(a)
    _rejects(world, sign_record(OrgRevoke("org-a", "x", world.now), world.network),
             LogOrgRevoked)


def test_revocation_ends_every_membership() -> None:
    world, a, _b, alice, _bob = standard_world()
    world.now += 100
    world.revoke(a)
    assert world.log.staff(alice.staff_id).removed_at == world.now
    with pytest.raises(LogOrgRevoked):
        world.log.active_staff(alice.staff_id)
    assert world.log.staff_valid_at(alice.staff_id, world.now - 1)
    assert not world.log.staff_valid_at(alice.staff_id, world.now)


def test_rekey_refuses_a_key_used_before() -> None:
    world, a, *_ = standard_world()
    first = a.identity.public
    world.rekey(a, "second")
    record = OrgRekey("org-a", first, world.now)
    _rejects(world, countersign(sign_record(record, a.identity), world.network), LogKeyReused)
    record = OrgRekey("org-a", a.identity.public, world.now)
    _rejects(world, countersign(sign_record(record, a.identity), world.network), LogKeyReused)


def test_records_for_a_revoked_org_are_refused() -> None:
    world, a, _b, alice, _bob = standard_world()
    world.revoke(a)
    records: list[Record] = [_at(_staff_add(a, "carol"), world.now),
                             StaffRemove(alice.staff_id, world.now),
                             Epoch("org-a", 5, seed("e5"), world.now)]
    for record in records:
        _rejects(world, sign_record(record, a.identity), LogOrgRevoked)
    rekey = OrgRekey("org-a", seed("n"), world.now)
    _rejects(world, countersign(sign_record(rekey, a.identity), world.network), LogOrgRevoked)


def test_records_for_an_unknown_org_are_refused() -> None:
    world = World()
    org = Org("org-q", SigningKeyPair.from_seed(seed("q")))
    for record in (_at(_staff_add(org, "carol"), world.now),
                   Epoch("org-q", 1, seed("e"), world.now)):
        _rejects(world, sign_record(record, org.identity), LogOrgUnknown)


def test_staff_id_is_never_reused() -> None:
    world, a, _b, alice, _bob = standard_world()
    record = _at(_staff_add(a, "alice", "alice-new-device"), world.now)
    _rejects(world, sign_record(record, a.identity), LogStaffExists)
    world.remove_staff(a, alice)
    _rejects(world, sign_record(record, a.identity), LogStaffExists)


def test_a_signing_key_is_enrolled_once_across_the_network() -> None:
    world, _a, b, alice, _bob = standard_world()
    twin = StaffAdd("org-b/twin", alice.signing.public, seed("box/twin"), "staff", world.now)
    _rejects(world, sign_record(twin, b.identity), LogStaffExists)


def test_staff_remove_needs_an_enrolled_active_member() -> None:
    world, a, _b, alice, _bob = standard_world()
    _rejects(world, sign_record(StaffRemove("org-a/nobody", world.now), a.identity),
             LogStaffUnknown)
    world.remove_staff(a, alice)
    _rejects(world, sign_record(StaffRemove(alice.staff_id, world.now), a.identity),
             LogStaffRemoved)


def test_epoch_numbers_strictly_increase() -> None:
    world, a, *_ = standard_world()
    world.new_epoch(a)  # now at 2
    for bad in (1, 2):
        _rejects(world, sign_record(Epoch("org-a", bad, seed(f"e{bad}"), world.now), a.identity),
                 LogEpochOrder)
    world.apply(sign_record(Epoch("org-a", 7, seed("e7"), world.now), a.identity))  # gaps: fine


def test_an_epoch_key_is_never_republished() -> None:
    world, a, *_ = standard_world()
    old = a.epochs[1].public
    _rejects(world, sign_record(Epoch("org-a", 2, old, world.now), a.identity), LogKeyReused)


def test_records_dated_in_the_future_are_refused() -> None:
    world, a, *_ = standard_world()
    ahead = Epoch("org-a", 2, seed("e2"), world.now + MAX_SKEW + 1)
    _rejects(world, sign_record(ahead, a.identity), LogTimestamp)
    world.apply(sign_record(Epoch("org-a", 2, seed("e2"), world.now + MAX_SKEW), a.identity))


def test_records_dated_before_the_last_entry_are_refused() -> None:
    world, a, *_ = standard_world()
    world.now += 10_000
    world.new_epoch(a)
    late = Epoch("org-a", 9, seed("e9"), world.now - MAX_SKEW - 1)
    _rejects(world, sign_record(late, a.identity), LogTimestamp)
    world.apply(sign_record(Epoch("org-a", 9, seed("e9"), world.now - MAX_SKEW), a.identity))


def test_non_canonical_record_bytes_are_refused() -> None:
    world, a, *_ = standard_world()
    data = sign_record(Epoch("org-a", 2, seed("e2"), world.now), a.identity).to_bytes()
    with pytest.raises(ProtocolError) as info:
        world.log.apply(data.replace(b'"sigs":', b'"sigs": '), world.now)
    assert info.value.code == "non_canonical"
    assert world.log.size == 6


# --- the chain and the head -------------------------------------------------------------


def test_chain_hash_is_blake2b_over_label_previous_and_record() -> None:
    world, *_ = standard_world()
    previous = ZERO_HASH
    for entry in world.log.entries:
        expected = hashlib.blake2b(b"kok/v1/log" + previous + entry.record_bytes,
                                   digest_size=32).digest()
        assert entry.hash == expected == chain_hash(previous, entry.record_bytes)
        previous = entry.hash
    assert world.log.head_hash == previous and world.log.hash_at(0) == ZERO_HASH


def test_a_mirror_rebuilt_from_the_records_has_the_same_chain() -> None:
    world, *_ = standard_world()
    mirror = KeyLog(world.network.public)
    for entry in world.log.entries:
        mirror.apply(entry.record_bytes, world.now)
    assert mirror.head_hash == world.log.head_hash


def test_require_extends_catches_rewrites() -> None:
    world, a, *_ = standard_world()
    size, head = world.log.size, world.log.head_hash
    world.new_epoch(a)
    world.log.require_extends(size, head)  # a longer log that extends it: fine
    world.log.require_extends(0, ZERO_HASH)
    with pytest.raises(LogRewritten):
        world.log.require_extends(size, bytes(32))
    with pytest.raises(LogRewritten):
        world.log.require_extends(world.log.size + 1, head)
    # a relay that shows another history: same size, other records
    fork = World()
    fork.admit("org-a")
    fork.admit("org-c")
    fork.log.require_extends(2, world.log.hash_at(2))  # the common prefix agrees
    with pytest.raises(LogRewritten):
        fork.log.require_extends(3, world.log.hash_at(3))
    with pytest.raises(BadField):
        world.log.require_extends(-1, head)


def test_signed_head_verifies_and_detects_any_change() -> None:
    world, *_ = standard_world()
    log_key = SigningKeyPair.from_seed(seed("log-key"))
    head = sign_head(log_key, world.log.size, world.log.head_hash, world.now)
    verify_head(log_key.public, head)
    assert Head.from_json(head.to_json()) == head
    for changed in (Head(head.size + 1, head.hash, head.time, head.signature),
                    Head(head.size, bytes(32), head.time, head.signature),
                    Head(head.size, head.hash, head.time + 1, head.signature),
                    Head(head.size, head.hash, head.time, bytes(64)),
                    Head(-1, head.hash, head.time, head.signature)):
        with pytest.raises(LogHeadInvalid):
            verify_head(log_key.public, changed)
    with pytest.raises(LogHeadInvalid):
        verify_head(MALLORY.public, head)


# --- questions --------------------------------------------------------------------------


def test_staff_validity_over_time() -> None:
    world, a, _b, alice, _bob = standard_world()
    added = world.log.staff(alice.staff_id).added_at
    world.now += 500
    world.remove_staff(a, alice)
    removed = world.now
    assert not world.log.staff_valid_at(alice.staff_id, added - 1)
    assert world.log.staff_valid_at(alice.staff_id, added)
    assert world.log.staff_valid_at(alice.staff_id, removed - 1)
    assert not world.log.staff_valid_at(alice.staff_id, removed)
    assert not world.log.staff_valid_at("org-a/nobody", removed)
    assert not world.log.staff_valid_at("org-x/nobody", removed)
    with pytest.raises(SenderInvalid):
        world.log.signing_keys_at(alice.staff_id, removed)
    assert world.log.signing_keys_at(alice.staff_id, added) == {
        fingerprint(alice.signing.public): alice.signing.public}


def test_current_epoch_and_lookup() -> None:
    world, a, *_ = standard_world()
    world.new_epoch(a)
    assert world.log.current_epoch("org-a").number == 2
    assert world.log.epoch("org-a", 1) is not None and world.log.epoch("org-a", 3) is None
    assert world.log.epoch("org-x", 1) is None
    empty = world.admit("org-e", with_epoch=False)
    with pytest.raises(LogNoEpoch):
        world.log.current_epoch(empty.org_id)
    with pytest.raises(LogOrgUnknown):  # callers that catch the parent still work
        world.log.current_epoch(empty.org_id)
    with pytest.raises(LogOrgUnknown):
        world.log.org("org-x")


def test_the_network_key_must_be_a_key() -> None:
    with pytest.raises(BadField):
        KeyLog(b"short")


# --- the rule table -----------------------------------------------------------------------


def test_every_record_type_has_exactly_one_rule() -> None:
    from protocol.keylog import RULES
    from protocol.records import RECORD_TYPES

    assert sorted(RULES) == sorted(RECORD_TYPES)


def test_consequences_name_what_a_record_ends() -> None:
    from protocol.keylog import Consequences

    world, a, _b, alice, _bob = standard_world()
    log = world.log
    assert log.consequences(StaffRemove(alice.staff_id, 0)) == Consequences(
        staff_removed=alice.staff_id)
    assert log.consequences(OrgRevoke("org-a", "x", 0)) == Consequences(org_revoked="org-a")
    assert log.consequences(OrgAdmit("org-a", "A", seed("k"), 0)) == Consequences(
        org_admitted="org-a")
    assert log.consequences(Epoch("org-a", 7, seed("e"), 0)) == Consequences(epoch=("org-a", 7))
    assert log.consequences(_staff_add(a, "dora")) == Consequences()
    assert log.consequences(OrgRekey("org-a", seed("k2"), 0)) == Consequences()


def test_nothing_outside_the_rule_table_dispatches_on_the_record_type() -> None:
    """The relay's directory reads ``KeyLog.consequences``; it keeps no copy of the rules."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"isinstance\([^)]*,\s*\(?(OrgAdmit|OrgRevoke|OrgRekey|StaffAdd|"
                         r"StaffRemove|Epoch)\b")
    for path in ("protocol/keylog.py", "relay/service/directory.py"):
        assert not pattern.search((root / path).read_text()), path


# --- X25519 keys that cannot be used, and the order of two signatures ---------------------

LOW_ORDER_POINTS = [
    bytes(32),  # 0
    (1).to_bytes(32, "little"),  # order 1 (the identity, u = 1)
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),  # 8
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),  # 8
    (2**255 - 19 - 1).to_bytes(32, "little"),  # p - 1: order 2
    (2**255 - 19).to_bytes(32, "little"),  # p: a second encoding of 0
    (2**255 - 19 + 1).to_bytes(32, "little"),  # p + 1: a second encoding of 1
]


def _unchecked(record: Record, signer: SigningKeyPair) -> SignedItem:
    """Signed without the writer's own check (``sign_record`` refuses these records)."""
    body = record_body(record)
    return SignedItem(body, (Signature(signer.fingerprint, signer.sign(labels.RECORD, body)),))


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_a_member_with_a_low_order_box_key_is_never_enrolled(point: bytes) -> None:
    """Such a member would make every grant for the org fail to seal."""
    world, a, *_ = standard_world()
    record = replace(_at(_staff_add(a, "erin"), world.now), box_key=point)
    with pytest.raises(BadField):
        sign_record(record, a.identity)
    _rejects(world, _unchecked(record, a.identity), BadField)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS)
def test_an_epoch_key_of_low_order_is_never_published(point: bytes) -> None:
    world, a, *_ = standard_world()
    _rejects(world, _unchecked(Epoch("org-a", 2, point, world.now), a.identity), BadField)


def test_rekey_signatures_in_the_other_order_are_refused() -> None:
    """One record, one encoding: identity key first, network key second."""
    world, a, *_ = standard_world()
    record = OrgRekey("org-a", seed("new-identity"), world.now)
    right = countersign(sign_record(record, a.identity), world.network)
    swapped = SignedItem(right.body, tuple(reversed(right.sigs)))
    _rejects(world, swapped, WrongSigner)
    world.apply(right)
    assert world.log.org("org-a").identity_key == seed("new-identity")


def test_readmission_starts_from_new_keys_and_old_ones_stay_dead() -> None:
    """A revoked org's keys may be stolen: re-admission must not bring them back."""
    world, a, _b, alice, _bob = standard_world()
    old_epoch_key = world.log.current_epoch("org-a").public_key
    world.now += 100
    world.revoke(a)
    world.now += 100
    _rejects(world, sign_record(OrgAdmit("org-a", "A", a.identity.public, world.now),
                                world.network), LogKeyReused)
    identity = SigningKeyPair.from_seed(seed("identity-a-new"))
    world.apply(sign_record(OrgAdmit("org-a", "A", identity.public, world.now), world.network))
    # the old identity key signs nothing for the org any more
    _rejects(world, sign_record(Epoch("org-a", 2, seed("e2"), world.now), a.identity),
             WrongSigner)
    # an old staff signing key and an old epoch key are refused
    old_signing = world.log.staff(alice.staff_id).signing_key
    _rejects(world, sign_record(StaffAdd("org-a/alice-2", old_signing, seed("box-new"),
                                         "staff", world.now), identity), LogStaffExists)
    _rejects(world, sign_record(Epoch("org-a", 2, old_epoch_key, world.now), identity),
             LogKeyReused)
    # an old member is not valid at any time before the revocation any more
    assert not world.log.staff_valid_at(alice.staff_id, world.now - 150)


def test_readmitted_org_old_keys_refused_after_rekey_too() -> None:
    world, a, *_ = standard_world()
    first = a.identity.public
    world.rekey(a, "second")
    world.revoke(a)
    for key in (first, a.identity.public):
        _rejects(world, sign_record(OrgAdmit("org-a", "A", key, world.now), world.network),
                 LogKeyReused)


# --- org_verify: an organisation's verification of another one ---------------------------


def test_org_verify_needs_the_verifying_orgs_current_identity_key() -> None:
    world, a, b, alice, _bob = standard_world()
    record = OrgVerify("org-a", "org-b", b.identity.public, world.now)
    _rejects(world, sign_record(record, alice.signing), WrongSigner)  # a member may not
    _rejects(world, sign_record(record, MALLORY), WrongSigner)  # nor the relay
    _rejects(world, sign_record(record, b.identity), WrongSigner)  # nor the subject itself
    old = a.identity
    world.rekey(a, "second")
    _rejects(world, sign_record(_at(record, world.now), old), WrongSigner)
    world.apply(sign_record(_at(record, world.now), a.identity))
    assert world.log.org("org-a").verified == {"org-b": b.identity.public}


def test_org_verify_of_an_old_or_foreign_key_is_refused_and_a_rekey_voids_it() -> None:
    world, a, b, *_ = standard_world()
    world.apply(sign_record(OrgVerify("org-a", "org-b", b.identity.public, world.now),
                            a.identity))
    old = b.identity.public
    world.rekey(b, "second")
    # the statement is now about a key that is no longer org-b's: it vouches for nothing
    assert world.log.org("org-a").verified["org-b"] != world.log.org("org-b").identity_key
    stale = OrgVerify("org-a", "org-b", old, world.now)
    _rejects(world, sign_record(stale, a.identity), BadField)
    _rejects(world, sign_record(OrgVerify("org-a", "org-b", seed("x"), world.now),
                                a.identity), BadField)
    _rejects(world, sign_record(OrgVerify("org-a", "org-a", a.identity.public, world.now),
                                a.identity), BadField)
    _rejects(world, sign_record(OrgVerify("org-a", "org-z", seed("x"), world.now),
                                a.identity), LogOrgUnknown)


# --- org_settings: what an organisation's staff clients do ---------------------------------


def test_org_settings_need_the_orgs_current_identity_key() -> None:
    world, a, b, alice, _bob = standard_world()
    record = OrgSettings("org-a", False, 7, world.now)
    _rejects(world, sign_record(record, alice.signing), WrongSigner)  # a member may not
    _rejects(world, sign_record(record, MALLORY), WrongSigner)  # nor the relay
    _rejects(world, sign_record(record, b.identity), WrongSigner)  # nor another org
    _rejects(world, sign_record(record, world.network), WrongSigner)  # nor the office
    old = a.identity
    world.rekey(a, "second")
    _rejects(world, sign_record(_at(record, world.now), old), WrongSigner)  # a stale key
    assert world.log.org("org-a").settings is None
    world.apply(sign_record(_at(record, world.now), a.identity))
    assert world.log.org("org-a").settings == _at(record, world.now)
    _rejects(world, sign_record(OrgSettings("org-x", True, 7, world.now), a.identity),
             LogOrgUnknown)


def test_the_newest_org_settings_win_and_a_readmission_clears_them() -> None:
    world, a, *_ = standard_world()
    world.apply(sign_record(OrgSettings("org-a", False, 7, world.now), a.identity))
    world.now += 60
    world.apply(sign_record(OrgSettings("org-a", True, 90, world.now), a.identity))
    settings = world.log.org("org-a").settings
    assert settings is not None and (settings.read_reports, settings.retention_days) == (True, 90)
    world.revoke(a)
    _rejects(world, sign_record(OrgSettings("org-a", False, 1, world.now), a.identity),
             LogOrgRevoked)
    identity = SigningKeyPair.from_seed(seed("identity-a-2"))
    world.apply(sign_record(OrgAdmit("org-a", "A", identity.public, world.now), world.network))
    assert world.log.org("org-a").settings is None  # what the old key said holds no more


@pytest.mark.parametrize(("field", "value"), [
    ("retention_days", 0), ("retention_days", 3651), ("retention_days", True),
    ("read_reports", 1), ("read_reports", "yes"), ("read_reports", None),
])
def test_org_settings_fields_are_checked(field: str, value: object) -> None:
    body = record_body(OrgSettings("org-a", True, 30, T0))
    obj = parse_canonical(body)
    obj[field] = value
    with pytest.raises(BadField):
        parse_record_body(canonical_json(obj))
