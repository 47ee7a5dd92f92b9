"""Key lifecycle on the client: when an admin rotates, and when an epoch secret is deleted.

Theory of operation
-------------------
Rotation (SPEC section 20.1). An admin client rotates on ``sync`` when the org's current
epoch is older than the profile's rotation period (default 7 days, ``kok org config``), or
when the key log shows, after the current epoch's record, a ``staff_remove`` of one of the
org's staff (a removal whose rotation did not happen, or a ``revoke-self``) or an
``org_rekey`` of the org (the new identity key then signs the new epoch). Looking at log
positions rather than times makes "after" exact even within one second.

Forward secrecy. Every client deletes the secret of epoch ``n`` of its org for good
(``Keystore.forget``, which also reaches copies other ``kok`` processes hold) once

1. a newer epoch exists in the verified log (the relay refuses envelopes sealed to ``n``
   from then on, ``409 stale_epoch``),
2. this sync fetched the whole mailbox and no envelope sealed to ``n`` waits in quarantine
   for its key, and
3. the longest lifetime an envelope can have, ``min(relay max TTL, protocol MAX_TTL)``
   plus ``MAX_SKEW`` for clock differences, has passed since the next epoch was created.

The relay states its max TTL in ``/v1/info``; a relay that states too small a value can make
a client delete a key early, which loses messages (availability) but reveals nothing.
Afterwards nobody who seizes the device can open ciphertext recorded from the wire.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from protocol.encoding import org_of
from protocol.keylog import MAX_SKEW, KeyLog
from protocol.keys import box_public_from_secret
from protocol.message import MAX_TTL
from protocol.records import DeviceAdd, DeviceRemove, OrgRekey, StaffRemove

from .errors import UsageError
from .keystore import FORGOTTEN
from .profile import save_keystore

if TYPE_CHECKING:
    from .context import ClientContext

DAY = 86400
DEFAULT_ROTATE_EVERY = 7 * DAY
MIN_ROTATE_EVERY = 3600
MAX_ROTATE_EVERY = 30 * DAY
ROTATE_EVERY_STATE = "rotate_every"
EPOCH_SECRET_RE = re.compile(r"^epoch/([a-z0-9][a-z0-9-]{1,31})/([1-9][0-9]{0,17})$")


def epoch_secret_name(org_id: str, epoch: int) -> str:
    """Keystore name of an epoch secret."""
    return f"epoch/{org_id}/{epoch}"


def held_epoch_secret(ctx: ClientContext, org_id: str, epoch: int) -> bytes | None:
    """The secret of an epoch if the keystore holds the one the log publishes.

    A secret kept under the name but not matching the log (an admin whose rotation lost a
    race with another admin's) counts as not held, so the real grant replaces it. An epoch
    the mirror does not know yet cannot be checked here; opening checks it after a sync.
    """
    secret = ctx.keystore.secrets.get(epoch_secret_name(org_id, epoch))
    state = ctx.directory.log.epoch(org_id, epoch)
    if secret is None or (state is not None
                          and box_public_from_secret(secret) != state.public_key):
        return None
    return secret


def was_forgotten(ctx: ClientContext, org_id: str, epoch: int) -> bool:
    """True if this epoch's secret was deleted for good (it must never come back)."""
    return epoch_secret_name(org_id, epoch) in ctx.keystore.meta.get(FORGOTTEN, [])


# --- rotation ------------------------------------------------------------------------------


def check_rotate_every(seconds: int) -> int:
    """A rotation period between one hour and 30 days."""
    if not MIN_ROTATE_EVERY <= seconds <= MAX_ROTATE_EVERY:
        raise UsageError("bad_rotate_every", min=MIN_ROTATE_EVERY // 3600,
                         max=MAX_ROTATE_EVERY // DAY)
    return seconds


async def rotate_every(ctx: ClientContext) -> int:
    """This profile's rotation period in seconds."""
    value = await ctx.store.get_state(ROTATE_EVERY_STATE)
    return int(value) if value and value.isdigit() else DEFAULT_ROTATE_EVERY


async def set_rotate_every(ctx: ClientContext, seconds: int) -> None:
    """Change this profile's rotation period."""
    await ctx.store.set_state(ROTATE_EVERY_STATE, str(check_rotate_every(seconds)))


def rotation_reason(log: KeyLog, org_id: str, now: int, period: int) -> str | None:
    """``removal``, ``identity`` or ``schedule`` if the org's epoch must be renewed now."""
    org = log.orgs.get(org_id)
    epoch = org.current_epoch if org is not None and not org.revoked else None
    if epoch is None:
        return None  # not active yet: the first epoch comes from ``kok org activate``
    for entry in log.entries[epoch.index + 1:]:
        record = entry.record
        if isinstance(record, StaffRemove | DeviceRemove) and org_of(record.staff_id) == org_id:
            return "removal"
        if isinstance(record, DeviceAdd) and org_of(record.staff_id) == org_id:
            return "device"  # the new device gets the next epoch's key with a grant
        if isinstance(record, OrgRekey) and record.org_id == org_id:
            return "identity"
    if now >= epoch.created + period:
        return "schedule"
    return None


def next_rotation(log: KeyLog, org_id: str, period: int) -> int | None:
    """When the schedule will next renew the org's epoch (None if it has none)."""
    org = log.orgs.get(org_id)
    epoch = org.current_epoch if org is not None and not org.revoked else None
    return None if epoch is None else epoch.created + period


# --- forward secrecy -----------------------------------------------------------------------


def retention(relay_max_ttl: int | None) -> int:
    """Seconds after the next epoch's creation that an epoch secret is still kept."""
    longest = MAX_TTL if relay_max_ttl is None else max(0, min(relay_max_ttl, MAX_TTL))
    return longest + MAX_SKEW


async def retire_epoch_secrets(ctx: ClientContext) -> int:
    """Delete every epoch secret the forward-secrecy rule allows; returns how many.

    Call only right after a complete fetch of the mailbox (rule 2 of the module doc).
    """
    log = ctx.directory.log
    keep_for = retention(ctx.link.limit("max_ttl"))
    now = ctx.now()
    waiting = {(str(data.get("to_org")), data.get("epoch"))
               for _, _, _, data in await ctx.store.quarantined("epoch_key_missing")}
    retired = 0
    for name in sorted(ctx.keystore.secrets):
        match = EPOCH_SECRET_RE.match(name)
        if match is None:
            continue
        org_id, number = match.group(1), int(match.group(2))
        org = log.orgs.get(org_id)
        if org is None or (org_id, number) in waiting:
            continue
        successor = next((e for e in org.epochs if e.number > number), None)
        if successor is None or now < successor.created + keep_for:
            continue
        ctx.keystore.forget(name)
        retired += 1
    if retired:
        save_keystore(ctx.keystore)
    return retired
