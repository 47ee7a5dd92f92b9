"""Epoch grants: an epoch secret sealed to one device, signed inside by the org.

    body   = canonical JSON {v, org_id, epoch, staff_id, public_key, secret_key, log}
    item   = {"body": body, "sigs": [Ed25519(org identity, signing_input("kok/v1/grant", body))]}
    sealed = sealed_box(device box key, canonical JSON of item)
    grant  = sealed || Ed25519(org identity, signing_input("kok/v1/grant-upload",
                                   org_id, u64(epoch), staff_id, device_id, box_key, sealed))

The outer signature is for the relay, which cannot open ``sealed``: it stores (or replaces)
a grant only if an identity key of the org signed it for that member, that device, one of
that device's box keys and that epoch, so a colleague with the admin role but without the
identity key cannot overwrite grants, and the relay cannot hand a grant sealed to one device
to another device of the same person.

``log`` is the granting admin's verified key-log position when it sealed (SPEC 6.4, 10): a
recipient whose log holds another hash at that size was shown another history than the
admin (``log_forked``), and so was one whose log lies beyond a position that does not even
hold the epoch being granted (``grant_log_lag``).

The recipient checks that the grant is for itself, the org's signature against the key
log (an identity key the org held from the epoch's creation on, so a grant for an epoch
may be re-issued after a rekey but not signed by a key retired before the epoch
existed), and that the secret's public key equals the ``epoch`` record's key in the log,
so a relay cannot hand out a key of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    org_of,
    parse_canonical,
)
from .errors import (
    BadField,
    GrantKeyMismatch,
    GrantUnknownEpoch,
    GrantWrongRecipient,
    SignatureError,
    WrongSigner,
)
from .keylog import KeyLog
from .keys import (
    SIG_SIZE,
    BoxKeyPair,
    SigningKeyPair,
    box_public_from_secret,
    fingerprint,
    verify,
    verify_item,
)
from .message import LogPosition, sealed_log_lag
from .sealedbox import OVERHEAD, open_sealed, seal

GRANT_FIELDS = ("v", "org_id", "epoch", "staff_id", "public_key", "secret_key", "log")
UPLOAD_SIG_SIZE = SIG_SIZE
"""Bytes of the identity key's upload signature at the end of a grant."""


@dataclass(frozen=True)
class Grant:
    """An opened, verified grant: the epoch secret of ``org_id`` epoch ``epoch``."""

    org_id: str
    epoch: int
    staff_id: str
    public_key: bytes
    secret_key: bytes
    log: LogPosition
    """The granting admin's verified key-log position when it sealed."""

    def __repr__(self) -> str:
        return f"Grant({self.org_id} epoch {self.epoch} for {self.staff_id})"


def _parse_grant_body(body: bytes) -> Grant:
    obj = parse_canonical(body)
    check_fields(obj, GRANT_FIELDS)
    return Grant(
        org_id=check_org_id(obj["org_id"]),
        epoch=get_int(obj, "epoch", minimum=1),
        staff_id=check_staff_id(obj["staff_id"]),
        public_key=get_bytes(obj, "public_key", 32),
        secret_key=get_bytes(obj, "secret_key", 32),
        log=LogPosition.from_json(obj["log"]),
    )


def make_grant(
    identity: SigningKeyPair,
    org_id: str,
    epoch: int,
    epoch_secret: bytes,
    staff_id: str,
    staff_box_public: bytes,
    ephemeral_seed: bytes,
    *,
    device_id: str,
    log: LogPosition,
) -> bytes:
    """Seal ``epoch_secret`` to one device of a staff member, signed by the org identity key.

    ``staff_box_public`` is the device's current box key, ``device_id`` its id; ``log`` the
    granting admin's verified log position (it must hold the epoch's record).
    ``ephemeral_seed`` MUST be 32 fresh random bytes for every grant.
    """
    if org_of(check_staff_id(staff_id)) != org_id:
        raise BadField("a grant goes to a staff member of the granting organisation")
    body = canonical_json(
        {
            "v": 1,
            "org_id": check_org_id(org_id),
            "epoch": epoch,
            "staff_id": staff_id,
            "public_key": b64encode(box_public_from_secret(epoch_secret)),
            "secret_key": b64encode(epoch_secret),
            "log": log.check().to_json(),
        }
    )
    _parse_grant_body(body)  # never emit what a reader would reject
    item = identity.sign_item(labels.GRANT, body)
    sealed = seal(staff_box_public, item.to_bytes(), ephemeral_seed)
    return sealed + identity.sign(labels.GRANT_UPLOAD, *grant_upload_parts(
        org_id, epoch, staff_id, device_id, staff_box_public, sealed))


def grant_upload_parts(org_id: str, epoch: int, staff_id: str, device_id: str, box_key: bytes,
                       sealed: bytes) -> tuple[bytes, ...]:
    """``(ascii(org_id), u64(epoch), ascii(staff_id), ascii(device_id), box_key, sealed)``:
    what the upload label signs."""
    if not 1 <= epoch < 2**64:
        raise BadField("an epoch number is a positive 64-bit integer")
    if not isinstance(box_key, bytes) or len(box_key) != 32:
        raise BadField("a box key is 32 bytes")
    if not isinstance(device_id, str) or not device_id.isascii() or not device_id:
        raise BadField("a device id is a non-empty ASCII string")
    return (check_org_id(org_id).encode("ascii"), epoch.to_bytes(8, "big"),
            check_staff_id(staff_id).encode("ascii"), device_id.encode("ascii"), box_key,
            sealed)


def _split(grant: bytes) -> tuple[bytes, bytes]:
    if len(grant) <= UPLOAD_SIG_SIZE + OVERHEAD:
        raise BadField("a grant is a sealed box followed by a 64-byte signature")
    return grant[:-UPLOAD_SIG_SIZE], grant[-UPLOAD_SIG_SIZE:]


def _signers_for(keylog: KeyLog, org_id: str, epoch: int) -> list[bytes]:
    """Identity keys that may sign for ``epoch``: the one current at its creation, and later."""
    org = keylog.org(org_id)
    state = keylog.epoch(org_id, epoch)
    if state is None:
        raise GrantUnknownEpoch(f"epoch {epoch} of {org_id!r} is not in the key log")
    return org.identity_keys[state.identity_index :]


def verify_grant_upload(grant: bytes, org_id: str, epoch: int, staff_id: str, device_id: str,
                        keylog: KeyLog) -> None:
    """The relay's check before it stores a grant: signed for this member, this device (one
    of its box keys) and this epoch by an identity key of the org (SPEC 10); ``WrongSigner``
    otherwise."""
    sealed, signature = _split(grant)
    staff = keylog.org(org_id).staff.get(staff_id)
    device = staff.devices.get(device_id) if staff is not None else None
    if device is None:
        raise WrongSigner("the grant names a device the member does not have")
    signers = _signers_for(keylog, org_id, epoch)
    for box_key, _since in reversed(device.box_keys):  # nearly always the current one
        parts = grant_upload_parts(org_id, epoch, staff_id, device_id, box_key, sealed)
        for key in signers:
            try:
                verify(key, signature, labels.GRANT_UPLOAD, *parts)
                return
            except SignatureError:
                continue
    raise WrongSigner("the grant was not signed for this member, device and epoch by an "
                      "identity key of the organisation")


def grant_log_lag(keylog: KeyLog, grant: Grant) -> int | None:
    """Entries our log holds beyond the granting admin's position; None if the histories
    differ (``log_forked``), or if the position does not hold the record of the epoch it
    grants (an admin publishes or sees an epoch before granting it). Negative: the admin
    saw more than we hold (sync and compare again)."""
    if keylog.epoch(grant.org_id, grant.epoch) is None:
        raise GrantUnknownEpoch(f"epoch {grant.epoch} of {grant.org_id!r} is not in the key log")
    return sealed_log_lag(keylog, grant.log, grant.org_id, grant.epoch)


def open_grant(data: bytes, staff_id: str, box: BoxKeyPair, keylog: KeyLog) -> Grant:
    """Open and verify a grant addressed to ``staff_id`` (checks in SPEC.md order)."""
    sealed, _upload_signature = _split(data)  # the relay's to check, not the recipient's
    item = SignedItem.from_bytes(open_sealed(box.public, box.secret, sealed))
    if len(item.sigs) != 1:
        raise WrongSigner("a grant carries exactly one signature")
    grant = _parse_grant_body(item.body)
    if grant.staff_id != staff_id or org_of(staff_id) != grant.org_id:
        raise GrantWrongRecipient()
    allowed = _signers_for(keylog, grant.org_id, grant.epoch)
    signer = next((k for k in allowed if fingerprint(k) == item.sigs[0].key), None)
    if signer is None:
        raise WrongSigner("the grant is not signed by the organisation's identity key")
    verify_item(item, signer, labels.GRANT)
    derived = box_public_from_secret(grant.secret_key)
    state = keylog.epoch(grant.org_id, grant.epoch)
    if state is None or derived != grant.public_key or derived != state.public_key:
        raise GrantKeyMismatch()
    return grant
