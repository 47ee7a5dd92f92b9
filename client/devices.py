"""This device: its id, its box keys, and replacing and deleting them (SPEC.md section 20.6).

Theory of operation
-------------------
A profile is one device of a staff member. Its device id is the fingerprint of its signing
key. Its box secrets live in the keystore by name: ``box`` is the one made at enrolment,
``box/<b64 public key>`` each later one. A name never changes its value (the keystore
merges by name with other ``kok`` processes, so a name whose value changed could be
overwritten by a stale copy); the *current* box key is whichever held secret matches the
device's current box key in the verified log.

On every ``sync``, after the grants are taken in:

1. if ``protocol.devices.box_key_due`` says so (a rotation this device took part in, or a
   box key a week old), a fresh key pair is kept in the keystore first and then announced
   with a ``box_key`` record signed by this device;
2. every box secret ``protocol.devices.deletable_box_keys`` names is deleted for good
   (``Keystore.forget``), so grants the relay may have kept no longer open with anything
   this device holds.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from protocol import BoxKey, BoxKeyPair, sign_record
from protocol.devices import box_key_due, deletable_box_keys
from protocol.encoding import b64encode
from protocol.errors import ProtocolError
from protocol.keys import fingerprint

from .errors import RelayRefused
from .lifecycle import held_epoch_secret
from .profile import save_keystore

if TYPE_CHECKING:
    from ._client import Client

FIRST_BOX = "box"
BOX_PREFIX = "box/"


def device_id(client: Client) -> str:
    """This device's id: the fingerprint of its signing key."""
    return fingerprint(client.signing_key().public)


def box_secret_name(public: bytes) -> str:
    """Keystore name of a box secret made after enrolment."""
    return BOX_PREFIX + b64encode(public)


def held_box_keys(client: Client) -> dict[str, BoxKeyPair]:
    """Every box key pair this device still holds, by keystore name."""
    return {name: BoxKeyPair.from_seed(seed)
            for name, seed in sorted(client.keystore.secrets.items())
            if name == FIRST_BOX or name.startswith(BOX_PREFIX)}


def current_box_key(client: Client) -> BoxKeyPair:
    """The held box key the log names as this device's current one (else the first)."""
    held = held_box_keys(client)
    try:
        public = client.directory.log.device(client.require_staff(), device_id(client)).box_key
    except ProtocolError:
        public = None
    for pair in held.values():
        if pair.public == public:
            return pair
    return client.box_key()


async def maintain_box_keys(client: Client, grants_settled: bool) -> tuple[bool, int]:
    """Replace the box key when due, then delete the old ones allowed to go.

    Returns (replaced, deleted). ``grants_settled``: the grants were just fetched and none
    that opens with a key we hold was left unaccepted.
    """
    from .admin import append

    staff_id, device = client.require_staff(), device_id(client)
    log = client.directory.log
    now = client.now()
    replaced = False
    if box_key_due(log, staff_id, device,
                   lambda org, n: held_epoch_secret(client, org, n) is not None, now):
        pair = BoxKeyPair.from_seed(secrets.token_bytes(32))
        # keep the secret before the log announces its public key: a crash in between
        # must not leave grants sealed to a key nobody holds
        client.keystore.secrets[box_secret_name(pair.public)] = pair.secret
        save_keystore(client.keystore)
        try:
            await append(client, sign_record(BoxKey(staff_id, device, pair.public, now),
                                             client.signing_key()))
            replaced = True
        except RelayRefused:
            # e.g. our clock is far off (log_timestamp): keep working with the current key
            # and try again on the next sync; the unannounced secret opens nothing
            client.keystore.forget(box_secret_name(pair.public))
            save_keystore(client.keystore)
    held = held_box_keys(client)
    by_public = {pair.public: name for name, pair in held.items()}
    gone = deletable_box_keys(client.directory.log, staff_id, device, list(by_public),
                              grants_settled, client.now())
    for public in gone:
        client.keystore.forget(by_public[public])
    if gone:
        save_keystore(client.keystore)
    return replaced, len(gone)
