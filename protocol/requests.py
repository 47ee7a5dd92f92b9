"""Onboarding request files: self-signed proof that the requester holds the keys.

An org admission request (``org_request``) is signed by the new org identity key; a
staff enrolment request (``staff_request``) by the new staff signing key. Both use the
label ``kok/v1/request``. The admin who signs the person in compares the printed
fingerprint with the requester out of band; the signature makes a tampered file fail.
An identity rekey request is simply the ``org_rekey`` record signed by the old key,
which the network office countersigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import labels
from .encoding import (
    SignedItem,
    b64encode,
    canonical_json,
    check_fields,
    check_org_id,
    check_staff_id,
    get_bytes,
    get_int,
    get_str,
    parse_canonical,
    parse_json,
)
from .errors import EncodingError, RequestInvalid, SignatureError
from .keys import SigningKeyPair, check_box_public, verify_item
from .records import MAX_NAME, ROLES


@dataclass(frozen=True)
class OrgRequest:
    """An organisation asking the network office for admission."""

    org_id: str
    name: str
    identity_key: bytes
    created: int


@dataclass(frozen=True)
class StaffRequest:
    """A person asking their org admin for enrolment."""

    staff_id: str
    name: str
    signing_key: bytes
    box_key: bytes
    role: str
    created: int


def make_org_request(identity: SigningKeyPair, org_id: str, name: str, created: int) -> bytes:
    """A request file (canonical JSON bytes) asking to admit ``org_id``, self-signed."""
    body = canonical_json({
        "v": 1, "type": "org_request", "org_id": check_org_id(org_id), "name": name,
        "identity_key": b64encode(identity.public), "created": created,
    })
    data = canonical_json(identity.sign_item(labels.REQUEST, body).to_json())
    open_org_request(data)  # never emit what a reader would reject
    return data


def make_staff_request(signing: SigningKeyPair, box_public: bytes, staff_id: str, name: str,
                       created: int, role: str = "staff") -> bytes:
    """A request file asking to enrol ``staff_id`` with these keys, self-signed."""
    body = canonical_json({
        "v": 1, "type": "staff_request", "staff_id": check_staff_id(staff_id), "name": name,
        "signing_key": b64encode(signing.public), "box_key": b64encode(box_public),
        "role": role, "created": created,
    })
    data = canonical_json(signing.sign_item(labels.REQUEST, body).to_json())
    open_staff_request(data)
    return data


def _open(data: bytes, kind: str) -> tuple[SignedItem, dict[str, Any]]:
    try:
        item = SignedItem.from_json(parse_json(data))
        if len(item.sigs) != 1:
            raise RequestInvalid("a request file carries exactly one signature")
        obj = parse_canonical(item.body)
    except EncodingError as exc:
        raise RequestInvalid(f"the request file is damaged: {exc.message}") from exc
    if obj.get("type") != kind:
        raise RequestInvalid(f"this is not a {kind.replace('_', ' ')} file")
    return item, obj


def open_org_request(data: bytes) -> OrgRequest:
    """Parse an org request and check its self-signature."""
    item, obj = _open(data, "org_request")
    try:
        check_fields(obj, ["v", "type", "org_id", "name", "identity_key", "created"])
        req = OrgRequest(
            org_id=check_org_id(obj["org_id"]),
            name=get_str(obj, "name", max_len=MAX_NAME),
            identity_key=get_bytes(obj, "identity_key", 32),
            created=get_int(obj, "created"),
        )
        verify_item(item, req.identity_key, labels.REQUEST)
    except (EncodingError, SignatureError) as exc:
        raise RequestInvalid(f"the request file was altered or is damaged: {exc.message}") from exc
    return req


def open_staff_request(data: bytes) -> StaffRequest:
    """Parse a staff request and check its self-signature."""
    item, obj = _open(data, "staff_request")
    try:
        check_fields(obj, ["v", "type", "staff_id", "name", "signing_key", "box_key", "role",
                           "created"])
        role = get_str(obj, "role", max_len=16)
        if role not in ROLES:
            raise RequestInvalid(f"role must be one of {', '.join(ROLES)}")
        req = StaffRequest(
            staff_id=check_staff_id(obj["staff_id"]),
            name=get_str(obj, "name", max_len=MAX_NAME),
            signing_key=get_bytes(obj, "signing_key", 32),
            box_key=check_box_public(get_bytes(obj, "box_key", 32), "box_key"),
            role=role,
            created=get_int(obj, "created"),
        )
        verify_item(item, req.signing_key, labels.REQUEST)
    except (EncodingError, SignatureError) as exc:
        raise RequestInvalid(f"the request file was altered or is damaged: {exc.message}") from exc
    return req
