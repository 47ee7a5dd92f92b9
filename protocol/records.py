"""The eleven key-log record types (SPEC section 6.1) and their builders.

A record is a signed item (label ``kok/v1/record``) whose body is canonical JSON with
``v``, ``type`` and ``created`` plus the type's own fields. This module parses and builds
records; *who* may sign them and *when* they are valid is the key log's job
(``keylog.py``), since that depends on the log's state.

A staff member is a set of devices. ``staff_add`` enrols the member together with their
first device (its ``signing_key`` and ``box_key`` are that device's); ``device_add``,
``device_remove`` and ``box_key`` change the set later. A device is named by its
*device id*, the fingerprint of its signing key, so the name cannot disagree with the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import labels
from .encoding import (
    Signature,
    SignedItem,
    b64encode,
    canonical_json,
    check_fields,
    check_fingerprint,
    check_org_id,
    check_staff_id,
    check_version,
    get_bool,
    get_bytes,
    get_int,
    get_str,
    parse_canonical,
)
from .errors import BadField, MissingField
from .keys import KEY_SIZE, SigningKeyPair, check_box_public

MAX_NAME = 128
MAX_REASON = 512
ROLES = ("staff", "admin")

DEFAULT_READ_REPORTS = True
"""An org without an ``org_settings`` record sends read reports (SPEC section 6.8)."""
DEFAULT_RETENTION_DAYS = 30
"""Days a staff device keeps a read message when the org set nothing (SPEC section 6.8)."""
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
UNREAD_RETENTION_FACTOR = 3
"""A message never opened on a device is kept this many times ``retention_days`` after it
arrived: it must not vanish unseen, nor stay forever (SPEC section 6.8)."""


@dataclass(frozen=True)
class OrgAdmit:
    """The network office admits an organisation with its identity key."""

    org_id: str
    name: str
    identity_key: bytes
    created: int
    type = "org_admit"


@dataclass(frozen=True)
class OrgRevoke:
    """The network office revokes an organisation."""

    org_id: str
    reason: str
    created: int
    type = "org_revoke"


@dataclass(frozen=True)
class OrgRekey:
    """An organisation replaces its identity key (signed by the old key and the network)."""

    org_id: str
    identity_key: bytes
    created: int
    type = "org_rekey"


@dataclass(frozen=True)
class StaffAdd:
    """An organisation enrols a staff member's signing and box keys."""

    staff_id: str
    signing_key: bytes
    box_key: bytes
    role: str
    created: int
    type = "staff_add"


@dataclass(frozen=True)
class StaffRemove:
    """A staff member leaves (signed by the org, or by the member for a lost device)."""

    staff_id: str
    created: int
    type = "staff_remove"


@dataclass(frozen=True)
class DeviceAdd:
    """A staff member adds a device with its own signing and box keys."""

    staff_id: str
    signing_key: bytes
    box_key: bytes
    created: int
    type = "device_add"


@dataclass(frozen=True)
class DeviceRemove:
    """A device leaves (signed by one of the member's devices, or by the org)."""

    staff_id: str
    device: str
    created: int
    type = "device_remove"


@dataclass(frozen=True)
class BoxKey:
    """A device replaces its box key (signed by that device), so the old one can go."""

    staff_id: str
    device: str
    box_key: bytes
    created: int
    type = "box_key"


@dataclass(frozen=True)
class Epoch:
    """An organisation publishes epoch key number ``epoch``."""

    org_id: str
    epoch: int
    public_key: bytes
    created: int
    type = "epoch"


@dataclass(frozen=True)
class OrgVerify:
    """Organisation ``org_id`` compared safety codes with ``subject`` and vouches, for its
    staff, that ``identity_key`` is ``subject``'s key (signed by ``org_id``'s identity key)."""

    org_id: str
    subject: str
    identity_key: bytes
    created: int
    type = "org_verify"


@dataclass(frozen=True)
class OrgSettings:
    """Organisation ``org_id`` tells its staff clients how to behave (signed by its identity
    key); the newest such record of an org replaces every earlier one."""

    org_id: str
    read_reports: bool
    """Whether the org's staff clients send read reports at all."""
    retention_days: int
    """Days a staff device keeps a message after it was read there (unless kept)."""
    created: int
    type = "org_settings"


Record = (
    OrgAdmit | OrgRevoke | OrgRekey | StaffAdd | StaffRemove | Epoch
    | DeviceAdd | DeviceRemove | BoxKey | OrgVerify | OrgSettings
)

_COMMON = ("v", "type", "created")
_FIELDS: dict[str, tuple[str, ...]] = {
    "org_admit": ("org_id", "name", "identity_key"),
    "org_revoke": ("org_id", "reason"),
    "org_rekey": ("org_id", "identity_key"),
    "staff_add": ("staff_id", "signing_key", "box_key", "role"),
    "staff_remove": ("staff_id",),
    "epoch": ("org_id", "epoch", "public_key"),
    "device_add": ("staff_id", "signing_key", "box_key"),
    "device_remove": ("staff_id", "device"),
    "box_key": ("staff_id", "device", "box_key"),
    "org_verify": ("org_id", "subject", "identity_key"),
    "org_settings": ("org_id", "read_reports", "retention_days"),
}
RECORD_TYPES = tuple(_FIELDS)


def parse_record_body(body: bytes) -> Record:
    """Parse and validate a record body (canonical JSON); signatures are checked elsewhere."""
    obj = parse_canonical(body)
    kind = obj.get("type")
    if kind not in _FIELDS:
        # the version first, then the type: a record type this version does not know is
        # bad_field whatever fields it carries (they are its own, not unknown ones)
        check_version(obj)
        if "type" not in obj:
            raise MissingField("field 'type' is missing")
        raise BadField(f"unknown record type {kind!r}")
    check_fields(obj, _COMMON + _FIELDS[kind])
    created = get_int(obj, "created")
    if kind == "org_admit":
        return OrgAdmit(
            org_id=check_org_id(obj["org_id"]),
            name=get_str(obj, "name", max_len=MAX_NAME),
            identity_key=get_bytes(obj, "identity_key", KEY_SIZE),
            created=created,
        )
    if kind == "org_revoke":
        return OrgRevoke(
            org_id=check_org_id(obj["org_id"]),
            reason=get_str(obj, "reason", max_len=MAX_REASON),
            created=created,
        )
    if kind == "org_rekey":
        return OrgRekey(
            org_id=check_org_id(obj["org_id"]),
            identity_key=get_bytes(obj, "identity_key", KEY_SIZE),
            created=created,
        )
    if kind == "staff_add":  # values in the order of SPEC 6.1's table
        staff_id = check_staff_id(obj["staff_id"])
        signing_key = get_bytes(obj, "signing_key", KEY_SIZE)
        box_key = check_box_public(get_bytes(obj, "box_key", KEY_SIZE), "box_key")
        role = get_str(obj, "role", max_len=16)
        if role not in ROLES:
            raise BadField(f"role must be one of {', '.join(ROLES)}")
        return StaffAdd(staff_id=staff_id, signing_key=signing_key, box_key=box_key,
                        role=role, created=created)
    if kind == "staff_remove":
        return StaffRemove(staff_id=check_staff_id(obj["staff_id"]), created=created)
    if kind == "device_add":
        return DeviceAdd(
            staff_id=check_staff_id(obj["staff_id"]),
            signing_key=get_bytes(obj, "signing_key", KEY_SIZE),
            box_key=_box_key(obj),
            created=created,
        )
    if kind == "device_remove":
        return DeviceRemove(
            staff_id=check_staff_id(obj["staff_id"]),
            device=check_fingerprint(obj["device"], "device"),
            created=created,
        )
    if kind == "box_key":
        return BoxKey(
            staff_id=check_staff_id(obj["staff_id"]),
            device=check_fingerprint(obj["device"], "device"),
            box_key=_box_key(obj),
            created=created,
        )
    if kind == "org_verify":
        return OrgVerify(
            org_id=check_org_id(obj["org_id"]),
            subject=check_org_id(obj["subject"]),
            identity_key=get_bytes(obj, "identity_key", KEY_SIZE),
            created=created,
        )
    if kind == "org_settings":
        return OrgSettings(
            org_id=check_org_id(obj["org_id"]),
            read_reports=get_bool(obj, "read_reports"),
            retention_days=get_int(obj, "retention_days", minimum=MIN_RETENTION_DAYS,
                                   maximum=MAX_RETENTION_DAYS),
            created=created,
        )
    return Epoch(
        org_id=check_org_id(obj["org_id"]),
        epoch=get_int(obj, "epoch", minimum=1),
        public_key=check_box_public(get_bytes(obj, "public_key", KEY_SIZE), "public_key"),
        created=created,
    )


def _box_key(obj: dict[str, Any]) -> bytes:
    """A box key: 32 bytes that are not a low-order X25519 point (SPEC.md section 3.1)."""
    return check_box_public(get_bytes(obj, "box_key", KEY_SIZE), "box_key")


def record_body(record: Record) -> bytes:
    """Canonical body bytes of a record."""
    obj: dict[str, Any] = {"v": 1, "type": record.type, "created": record.created}
    for name in _FIELDS[record.type]:
        value = getattr(record, name)
        obj[name] = b64encode(value) if isinstance(value, bytes) else value
    return canonical_json(obj)


def sign_record(record: Record, *signers: SigningKeyPair) -> SignedItem:
    """A signed item carrying ``record``, signed by each of ``signers`` in turn."""
    body = record_body(record)
    parse_record_body(body)  # never emit what we would reject
    sigs = tuple(Signature(k.fingerprint, k.sign(labels.RECORD, body)) for k in signers)
    return SignedItem(body=body, sigs=sigs)


def countersign(
    item: SignedItem, signer: SigningKeyPair, label: bytes = labels.RECORD
) -> SignedItem:
    """Add ``signer``'s signature to an item (the network office countersigning a rekey)."""
    if any(s.key == signer.fingerprint for s in item.sigs):
        return item
    signature = Signature(signer.fingerprint, signer.sign(label, item.body))
    return SignedItem(body=item.body, sigs=(*item.sigs, signature))
