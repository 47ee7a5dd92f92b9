"""Devices of a person: linking and removing them, and this device's box keys.

A person works from several devices, each a profile with its own keys (SPEC.md section
6.6). A new device makes its keys and a link request (``Client.new_device``); one of the
person's current devices checks the request's fingerprint, as read aloud from the new
device, and adds it (``add_device``); either may later be removed (``remove_device``),
which ends its sessions at once and makes the admin's next sync renew the org key.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol import BoxKey, BoxKeyPair, DeviceAdd, DeviceRemove, sign_record
from protocol.devices import box_key_due, deletable_box_keys
from protocol.encoding import b64encode
from protocol.errors import ProtocolError
from protocol.keys import fingerprint

from .admin import OrgAdmin, read_staff_request
from .errors import AccessError, RelayRefused, UsageError
from .lifecycle import held_epoch_secret
from .profile import save_keystore

if TYPE_CHECKING:
    from .context import ClientContext

FIRST_BOX = "box"
BOX_PREFIX = "box/"


def device_id(ctx: ClientContext) -> str:
    """This device's id: the fingerprint of its signing key."""
    return fingerprint(ctx.signing_key().public)


def box_secret_name(public: bytes) -> str:
    """Keystore name of a box secret made after enrolment."""
    return BOX_PREFIX + b64encode(public)


def held_box_keys(ctx: ClientContext) -> dict[str, BoxKeyPair]:
    """Every box key pair this device still holds, by keystore name."""
    return {name: BoxKeyPair.from_seed(seed)
            for name, seed in sorted(ctx.keystore.secrets.items())
            if name == FIRST_BOX or name.startswith(BOX_PREFIX)}


def current_box_key(ctx: ClientContext) -> BoxKeyPair:
    """The held box key the log names as this device's current one (else the first)."""
    held = held_box_keys(ctx)
    try:
        public = ctx.directory.log.device(ctx.require_staff(), device_id(ctx)).box_key
    except ProtocolError:
        public = None
    for pair in held.values():
        if pair.public == public:
            return pair
    return ctx.box_key()


async def maintain_box_keys(ctx: ClientContext, grants_settled: bool) -> tuple[bool, int]:
    """Replace the box key when due, then delete the old ones allowed to go.

    Returns (replaced, deleted). ``grants_settled``: the grants were just fetched and none
    that opens with a key we hold was left unaccepted.
    """
    from .admin import append

    staff_id, device = ctx.require_staff(), device_id(ctx)
    log = ctx.directory.log
    now = ctx.now()
    replaced = False
    if box_key_due(log, staff_id, device,
                   lambda org, n: held_epoch_secret(ctx, org, n) is not None, now):
        pair = BoxKeyPair.from_seed(secrets.token_bytes(32))
        # keep the secret before the log announces its public key: a crash in between
        # must not leave grants sealed to a key nobody holds
        ctx.keystore.secrets[box_secret_name(pair.public)] = pair.secret
        save_keystore(ctx.keystore)
        try:
            await append(ctx, sign_record(BoxKey(staff_id, device, pair.public, now),
                                             ctx.signing_key()))
            replaced = True
        except RelayRefused:
            # e.g. our clock is far off (log_timestamp): keep working with the current key
            # and try again on the next sync; the unannounced secret opens nothing
            ctx.keystore.forget(box_secret_name(pair.public))
            save_keystore(ctx.keystore)
    held = held_box_keys(ctx)
    by_public = {pair.public: name for name, pair in held.items()}
    gone = deletable_box_keys(ctx.directory.log, staff_id, device, list(by_public),
                              grants_settled, ctx.now())
    for public in gone:
        ctx.keystore.forget(by_public[public])
    if gone:
        save_keystore(ctx.keystore)
    return replaced, len(gone)


# --- the person's devices ---------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """One device of the person, as the verified key log shows it."""

    device_id: str
    added: int
    removed: int | None
    this_device: bool


async def list_devices(ctx: ClientContext) -> list[DeviceInfo]:
    """Every device the person ever had, current ones first, oldest first."""
    await ctx.sync_log()
    staff_id = ctx.require_staff()
    mine = device_id(ctx)
    devices = ctx.directory.log.staff(staff_id).devices.values()
    return sorted((DeviceInfo(d.device_id, d.added_at, d.removed_at, d.device_id == mine)
                   for d in devices), key=lambda d: (d.removed is not None, d.added))


async def add_device(ctx: ClientContext, request: bytes) -> str:
    """Add the device of a link request to the person; returns its device id.

    Compare ``fingerprint(request.signing_key)`` with what the new device shows before
    calling this: the request proves only that whoever made it holds that key.
    """
    req = read_staff_request(request)
    await ctx.sync_log()
    staff_id = ctx.require_staff()
    if req.staff_id != staff_id:
        raise UsageError("device_other_person", staff=req.staff_id)
    return await append_device(ctx, req.signing_key, req.box_key)


async def append_device(ctx: ClientContext, signing_key: bytes, box_key: bytes) -> str:
    """Append the ``device_add`` of a new device of ours, signed by this device; its id.

    The caller has established that the new device holds these keys and belongs to the
    person (a compared request file, or a device-linking code).
    """
    from .admin import append

    record = DeviceAdd(ctx.require_staff(), signing_key, box_key, ctx.now())
    await append(ctx, sign_record(record, ctx.signing_key()))
    return fingerprint(signing_key)


async def remove_device(ctx: ClientContext, staff_id: str, device: str) -> int | None:
    """Remove one device of a person (ours, or any staff member's by an admin).

    The relay ends the device's sessions at once. An admin's profile renews the org key
    right away (returns the new epoch); otherwise the admin's next sync does (None).
    """
    from .admin import append

    await ctx.sync_log()
    own = ctx.require_staff()
    log = ctx.directory.log
    if staff_id == own:
        signer = ctx.signing_key()
    elif ctx.kind == "org" and staff_id.split("/", 1)[0] == ctx.org_id:
        signer = OrgAdmin(ctx).identity_key()
    else:
        raise AccessError("not_your_device", staff=staff_id)
    try:
        log.device(staff_id, device)
    except ProtocolError:
        raise AccessError("unknown_device", device=device) from None
    await append(ctx, sign_record(DeviceRemove(staff_id, device, ctx.now()), signer))
    if ctx.kind == "org":
        return await OrgAdmin(ctx).rotate()
    return None
