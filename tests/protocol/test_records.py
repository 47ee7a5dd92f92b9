"""The record types: encoding, parsing and every field rule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import SigningKeyPair
from protocol.encoding import b64encode, canonical_json, parse_canonical
from protocol.errors import (
    BadField,
    MissingField,
    NonCanonical,
    UnknownField,
    UnknownVersion,
)
from protocol.keys import box_public_from_secret, fingerprint
from protocol.records import (
    BoxKey,
    DeviceAdd,
    DeviceRemove,
    Epoch,
    OrgAdmit,
    OrgRekey,
    OrgRevoke,
    OrgSettings,
    OrgVerify,
    Record,
    StaffAdd,
    StaffRemove,
    parse_record_body,
    record_body,
    sign_record,
)

from .world import T0, seed

KEY = seed("records/key")
ids = st.from_regex(r"\A[a-z0-9][a-z0-9-]{1,31}\Z")
times = st.integers(0, 2**40)
keys = st.binary(min_size=32, max_size=32)
box_keys = keys.map(box_public_from_secret)  # X25519 keys must be usable (not low order)
staff_ids = st.builds(lambda o, n: f"{o}/{n}", ids, ids)
devices = st.builds(fingerprint, keys)
records = st.one_of(
    st.builds(OrgAdmit, ids, st.text(max_size=20).filter(str.isascii), keys, times),
    st.builds(OrgRevoke, ids, st.text(max_size=20).filter(str.isascii), times),
    st.builds(OrgRekey, ids, keys, times),
    st.builds(StaffAdd, staff_ids, keys, box_keys, st.sampled_from(["staff", "admin"]), times),
    st.builds(StaffRemove, staff_ids, times),
    st.builds(Epoch, ids, st.integers(1, 2**40), box_keys, times),
    st.builds(DeviceAdd, staff_ids, keys, box_keys, times),
    st.builds(DeviceRemove, staff_ids, devices, times),
    st.builds(BoxKey, staff_ids, devices, box_keys, times),
    st.builds(OrgVerify, ids, ids, keys, times),
    st.builds(OrgSettings, ids, st.booleans(), st.integers(1, 3650), times),
)


@settings(max_examples=60, deadline=None)
@given(records)
def test_every_record_type_round_trips(record: Record) -> None:
    body = record_body(record)
    assert parse_record_body(body) == record
    assert canonical_json(parse_canonical(body)) == body


def _body(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"v": 1, "type": "staff_add", "created": T0, "staff_id": "org-a/eve",
                            "signing_key": b64encode(KEY), "box_key": b64encode(KEY),
                            "role": "staff"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"v": 2}, UnknownVersion),
        ({"v": 2, "type": "future_thing"}, UnknownVersion),
        ({"v": None}, MissingField),
        ({"extra": 1}, UnknownField),
        ({"role": None}, MissingField),
        ({"type": "org_delete"}, BadField),  # the type is unknown, not its fields (SPEC 6.1)
        ({"role": "root"}, BadField),
        ({"staff_id": "org-a"}, BadField),
        ({"staff_id": "org-a/eve/x"}, BadField),
        ({"staff_id": "Org-A/eve"}, BadField),
        ({"staff_id": "org-a/e"}, BadField),  # names have 2 to 32 characters
        ({"staff_id": "org-a/-eve"}, BadField),
        ({"staff_id": "org-a/eve\n"}, BadField),
        ({"signing_key": b64encode(KEY[:31])}, BadField),
        ({"box_key": KEY.hex()}, BadField),
        ({"created": -1}, BadField),
        ({"created": "1700000000"}, BadField),
        ({"created": True}, BadField),
    ],
)
def test_record_field_rules(fields: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_record_body(canonical_json(_body(**fields)))


def test_unknown_type_with_only_common_fields_says_so() -> None:
    with pytest.raises(BadField, match="unknown record type"):
        parse_record_body(canonical_json({"v": 1, "type": "org_delete", "created": T0}))


@pytest.mark.parametrize(
    "body",
    [
        {"v": 1, "type": "epoch", "created": T0, "org_id": "org-a", "epoch": 0,
         "public_key": b64encode(KEY)},
        {"v": 1, "type": "org_admit", "created": T0, "org_id": "org-a", "name": "x" * 129,
         "identity_key": b64encode(KEY)},
        {"v": 1, "type": "org_revoke", "created": T0, "org_id": "o", "reason": ""},
        {"v": 1, "type": "org_rekey", "created": T0, "org_id": "org-a", "identity_key": 5},
    ],
)
def test_more_field_rules(body: dict[str, Any]) -> None:
    with pytest.raises(BadField):
        parse_record_body(canonical_json(body))


def test_record_bodies_must_be_canonical() -> None:
    body = record_body(StaffRemove("org-a/eve", T0))
    with pytest.raises(NonCanonical):
        parse_record_body(body.replace(b",", b", ", 1))


def test_sign_record_refuses_invalid_records() -> None:
    with pytest.raises(BadField):
        sign_record(StaffAdd("org-a/eve", KEY, KEY, "root", T0), SigningKeyPair.from_seed(KEY))
