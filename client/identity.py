"""An organisation's identity key on its admin's device: rekey requests and the switch.

Theory of operation
-------------------
``kok org rekey`` makes a new identity key and keeps it in the keystore under
``identity/<fingerprint>`` before anything else happens, so a crash never loses a key the
log may come to name. The request file is the ``org_rekey`` record signed by the current
identity key (``protocol.requests``: a rekey request is simply that signed record). The
network office checks it against the log, countersigns and appends it.

Which key signs for the org is always decided by the verified log: of the identity keys in
the keystore (``identity`` and every ``identity/<fingerprint>``), the one whose public key
is the org's current identity key. Once the log shows the rekey, the admin's client writes
that key under ``identity`` too (``switch_identity``) and forgets abandoned requests. The
new key also stays under its own name, so another ``kok`` process that saves an older copy
of the keystore cannot lose it; the next switch check repairs ``identity`` again.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from protocol.encoding import SignedItem, canonical_json, parse_json
from protocol.errors import EncodingError, RequestInvalid
from protocol.keys import SigningKeyPair
from protocol.records import OrgRekey, parse_record_body, sign_record

from .errors import VerificationError
from .profile import save_keystore

if TYPE_CHECKING:
    from .context import ClientContext

IDENTITY = "identity"
NEW_IDENTITY_PREFIX = "identity/"


def identity_keys(ctx: ClientContext) -> list[SigningKeyPair]:
    """Every org identity key the keystore holds: ``identity`` first, then new ones."""
    held = ctx.keystore.secrets
    names = [IDENTITY] if IDENTITY in held else []
    names += sorted(n for n in held if n.startswith(NEW_IDENTITY_PREFIX))
    return [SigningKeyPair.from_seed(held[n]) for n in names]


def current_identity(ctx: ClientContext) -> SigningKeyPair | None:
    """The held key that the log names as the org's identity key (None if none matches)."""
    org = ctx.directory.log.orgs.get(str(ctx.org_id))
    keys = identity_keys(ctx)
    if org is None:
        return keys[0] if keys else None
    return next((k for k in keys if k.public == org.identity_key), None)


def switch_identity(ctx: ClientContext) -> bool:
    """After the log shows our rekey: sign with the new key from now on. True if switched."""
    key = current_identity(ctx)
    held = ctx.keystore.secrets
    if key is None or held.get(IDENTITY) == key.seed:
        return False
    held[IDENTITY] = key.seed
    for name in [n for n in held if n.startswith(NEW_IDENTITY_PREFIX)]:
        if held[name] != key.seed:
            ctx.keystore.forget(name)  # a request the network office never countersigned
    save_keystore(ctx.keystore)
    return True


def new_identity_key(ctx: ClientContext) -> SigningKeyPair:
    """A fresh identity key, saved in the keystore before it is used anywhere."""
    key = SigningKeyPair.from_seed(secrets.token_bytes(32))
    ctx.keystore.secrets[NEW_IDENTITY_PREFIX + key.fingerprint] = key.seed
    save_keystore(ctx.keystore)
    return key


def make_rekey_request(old: SigningKeyPair, new: SigningKeyPair, org_id: str,
                       created: int) -> bytes:
    """The request file: the ``org_rekey`` record signed by the old key, canonical JSON."""
    item = sign_record(OrgRekey(org_id=org_id, identity_key=new.public, created=created), old)
    return canonical_json(item.to_json())


def read_rekey_request(data: bytes) -> tuple[SignedItem, OrgRekey]:
    """Parse a rekey request file (its signature is checked against the log by the caller)."""
    try:
        item = SignedItem.from_json(parse_json(data))
        record = parse_record_body(item.body)
    except EncodingError as exc:
        raise VerificationError.from_protocol(
            RequestInvalid(f"the rekey request is damaged: {exc.message}")) from None
    if not isinstance(record, OrgRekey) or len(item.sigs) != 1:
        raise VerificationError.from_protocol(
            RequestInvalid("this is not an identity rekey request of an organisation"))
    return item, record
