"""Epoch grants: an epoch secret sealed to one staff member, signed inside by the org.

    body   = canonical JSON {v, org_id, epoch, staff_id, public_key, secret_key}
    item   = {"body": body, "sigs": [Ed25519(org identity, signing_input("kok/v1/grant", body))]}
    grant  = sealed_box(staff box key, canonical JSON of item)

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
    WrongSigner,
)
from .keylog import KeyLog
from .keys import BoxKeyPair, SigningKeyPair, box_public_from_secret, fingerprint, verify_item
from .sealedbox import open_sealed, seal

GRANT_FIELDS = ("v", "org_id", "epoch", "staff_id", "public_key", "secret_key")


@dataclass(frozen=True)
class Grant:
    """An opened, verified grant: the epoch secret of ``org_id`` epoch ``epoch``."""

    org_id: str
    epoch: int
    staff_id: str
    public_key: bytes
    secret_key: bytes

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
    )


def make_grant(
    identity: SigningKeyPair,
    org_id: str,
    epoch: int,
    epoch_secret: bytes,
    staff_id: str,
    staff_box_public: bytes,
    ephemeral_seed: bytes,
) -> bytes:
    """Seal ``epoch_secret`` to one staff member, signed by the org identity key.

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
        }
    )
    _parse_grant_body(body)  # never emit what a reader would reject
    item = identity.sign_item(labels.GRANT, body)
    return seal(staff_box_public, item.to_bytes(), ephemeral_seed)


def open_grant(sealed: bytes, staff_id: str, box: BoxKeyPair, keylog: KeyLog) -> Grant:
    """Open and verify a grant addressed to ``staff_id`` (checks in SPEC.md order)."""
    item = SignedItem.from_bytes(open_sealed(box.public, box.secret, sealed))
    if len(item.sigs) != 1:
        raise WrongSigner("a grant carries exactly one signature")
    grant = _parse_grant_body(item.body)
    if grant.staff_id != staff_id or org_of(staff_id) != grant.org_id:
        raise GrantWrongRecipient()
    org = keylog.org(grant.org_id)
    state = keylog.epoch(grant.org_id, grant.epoch)
    if state is None:
        raise GrantUnknownEpoch(f"epoch {grant.epoch} of {grant.org_id!r} is not in the key log")
    allowed = org.identity_keys[state.identity_index :]
    signer = next((k for k in allowed if fingerprint(k) == item.sigs[0].key), None)
    if signer is None:
        raise WrongSigner("the grant is not signed by the organisation's identity key")
    verify_item(item, signer, labels.GRANT)
    derived = box_public_from_secret(grant.secret_key)
    if derived != grant.public_key or derived != state.public_key:
        raise GrantKeyMismatch()
    return grant
