"""Admin operations: the network office (admit, revoke) and an org admin (staff, epochs).

Each operation signs key-log records locally with a key from the keystore and appends
them through ``POST /v1/log``; the relay checks them with the same rules as every client,
and our own mirror applies them again on the next sync. Epoch secrets are made here, kept
in the admin's keystore, and handed to each current staff member as a grant sealed to
that person's box key (``PUT /v1/grants``).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.encoding import SignedItem
from protocol.errors import LogTimestamp, ProtocolError, RequestInvalid
from protocol.grants import make_grant
from protocol.keys import SigningKeyPair, box_public_from_secret, fingerprint
from protocol.message import LogPosition
from protocol.records import (
    Epoch,
    OrgAdmit,
    OrgRevoke,
    StaffAdd,
    StaffRemove,
    countersign,
    sign_record,
)
from protocol.requests import OrgRequest, StaffRequest, open_org_request, open_staff_request

from . import identity, lifecycle
from .errors import AccessError, KokError, RelayRefused, UsageError, VerificationError
from .models import OrgInfo
from .orgs_list import org_info
from .profile import save_keystore

if TYPE_CHECKING:
    from .context import ClientContext


def read_org_request(data: bytes) -> OrgRequest:
    """An admission request file, self-signature checked (a tampered file is refused)."""
    try:
        return open_org_request(data)
    except ProtocolError as exc:
        raise VerificationError.from_protocol(
            exc if isinstance(exc, RequestInvalid) else RequestInvalid(exc.message)) from None


def read_staff_request(data: bytes) -> StaffRequest:
    """An enrolment request file, self-signature checked (a tampered file is refused)."""
    try:
        return open_staff_request(data)
    except ProtocolError as exc:
        raise VerificationError.from_protocol(
            exc if isinstance(exc, RequestInvalid) else RequestInvalid(exc.message)) from None


async def append(ctx: ClientContext, item: SignedItem) -> None:
    """Append a signed record at the relay, then mirror it (and check the relay kept it)."""
    api = await ctx.api()
    await api.append(item)
    await ctx.sync_log()


@dataclass(frozen=True)
class Admission:
    """An organisation the network office has admitted."""

    org_id: str
    name: str
    fingerprint: str


@dataclass(frozen=True)
class Rekey:
    """An identity change: the organisation, its old and its new key's fingerprint."""

    org_id: str
    old_fingerprint: str
    new_fingerprint: str


async def revoke_self(ctx: ClientContext) -> str:
    """Remove ourselves with our own staff key (a lost device); returns our staff id."""
    await ctx.sync_log()
    staff_id = ctx.require_staff()
    record = StaffRemove(staff_id=staff_id, created=ctx.now())
    await append(ctx, sign_record(record, ctx.signing_key()))
    return staff_id


class NetworkOffice:
    """Operations signed with the network key."""

    def __init__(self, ctx: ClientContext) -> None:
        self.ctx = ctx

    def _key(self) -> SigningKeyPair:
        return SigningKeyPair.from_seed(self.ctx.keys.secret("network"))

    async def admit(self, request: bytes) -> Admission:
        """Admit the organisation of an admission request file."""
        req = read_org_request(request)
        await self.ctx.sync_log()
        existing = self.ctx.directory.log.orgs.get(req.org_id)
        if existing is not None and not existing.revoked:
            raise AccessError("org_exists", org=req.org_id)
        record = OrgAdmit(org_id=req.org_id, name=req.name, identity_key=req.identity_key,
                          created=self.ctx.now())
        await append(self.ctx, sign_record(record, self._key()))
        return Admission(org_id=req.org_id, name=req.name,
                         fingerprint=fingerprint(req.identity_key))

    async def revoke_org(self, org_id: str, reason: str) -> None:
        """Revoke an organisation: nobody can send to it or as it any more."""
        await self.ctx.sync_log()
        org = self.ctx.directory.log.orgs.get(org_id)
        if org is None:
            raise AccessError("unknown_org", org=org_id)
        if org.revoked:
            raise AccessError("org_revoked", org=org_id)
        record = OrgRevoke(org_id=org_id, reason=reason, created=self.ctx.now())
        await append(self.ctx, sign_record(record, self._key()))

    async def rekey_org(self, request: bytes) -> Rekey:
        """Countersign an organisation's identity rekey request and append it."""
        item, record = identity.read_rekey_request(request)
        ctx = self.ctx
        await ctx.sync_log()
        org = ctx.directory.log.orgs.get(record.org_id)
        if org is None:
            raise AccessError("unknown_org", org=record.org_id)
        if org.revoked:
            raise AccessError("org_revoked", org=record.org_id)
        signed = countersign(item, self._key())
        try:  # the same rules the relay and every client apply, before anything is sent
            ctx.directory.log.check(signed.to_bytes(), ctx.now())
        except LogTimestamp:
            raise UsageError("rekey_request_stale", org=record.org_id) from None
        except ProtocolError as exc:
            raise VerificationError.from_protocol(exc) from None
        await append(ctx, signed)
        return Rekey(org_id=record.org_id, old_fingerprint=fingerprint(org.identity_keys[-2]),
                     new_fingerprint=fingerprint(record.identity_key))


class OrgAdmin:
    """Operations signed with the org identity key (the admin is also a staff member)."""

    def __init__(self, ctx: ClientContext) -> None:
        self.ctx = ctx

    @property
    def org_id(self) -> str:
        return str(self.ctx.org_id)

    def identity_key(self) -> SigningKeyPair:
        """The org identity key the verified log names (``identity_mismatch`` if not held)."""
        key = identity.current_identity(self.ctx)
        if key is None:
            raise AccessError("identity_mismatch", org=self.org_id)
        return key

    def _require_admitted(self) -> None:
        org = self.ctx.directory.log.orgs.get(self.org_id)
        if org is None:
            raise AccessError("org_not_admitted", org=self.org_id)
        if org.revoked:
            raise AccessError("own_org_revoked", org=self.org_id)
        self.identity_key()

    def _require_active(self) -> None:
        """Admitted, and our own admin record published (``kok org activate`` was run)."""
        self._require_admitted()
        org = self.ctx.directory.log.orgs[self.org_id]
        if self.ctx.staff_id not in org.staff or org.current_epoch is None:
            raise UsageError("org_not_activated", org=self.org_id)
        self.ctx.require_staff()

    async def activate(self) -> int:
        """After admission: publish our own staff record (admin) and the first epoch."""
        ctx = self.ctx
        await ctx.sync_log()
        self._require_admitted()
        staff_id = str(ctx.staff_id)
        org = ctx.directory.log.orgs[self.org_id]
        if staff_id not in org.staff:
            signing, box = ctx.signing_key(), ctx.box_key()
            record = StaffAdd(staff_id=staff_id, signing_key=signing.public, box_key=box.public,
                              role="admin", created=ctx.now())
            await append(ctx, sign_record(record, self.identity_key()))
        elif org.current_epoch is not None:
            raise UsageError("already_active", org=self.org_id)
        return await self.rotate()

    async def enrol(self, request: bytes, *, admin: bool = False) -> StaffRequest:
        """Sign a staff member in from their request file and hand them the current epoch key.

        The role is the enrolling admin's decision (``admin``), not the request's: the
        requester signs their own request, so an ``admin`` role asked for in it is refused
        unless ``admin`` is given.
        """
        req = read_staff_request(request)
        if req.role == "admin" and not admin:
            raise UsageError("request_asks_admin", staff=req.staff_id)
        ctx = self.ctx
        await ctx.sync_log()
        self._require_active()
        if req.staff_id.split("/", 1)[0] != self.org_id:
            raise UsageError("request_other_org", staff=req.staff_id, org=self.org_id)
        org = ctx.directory.log.orgs[self.org_id]
        if req.staff_id in org.staff:
            raise AccessError("staff_exists", staff=req.staff_id)
        record = StaffAdd(staff_id=req.staff_id, signing_key=req.signing_key,
                          box_key=req.box_key, role="admin" if admin else "staff",
                          created=ctx.now())
        await append(ctx, sign_record(record, self.identity_key()))
        epoch = ctx.directory.log.orgs[self.org_id].current_epoch
        if epoch is not None:
            secret = lifecycle.held_epoch_secret(ctx, self.org_id, epoch.number)
            if secret is None:
                raise KokError("keystore_incomplete", name=f"epoch/{self.org_id}/{epoch.number}")
            device_id = fingerprint(req.signing_key)
            grant = make_grant(self.identity_key(), self.org_id, epoch.number, secret, req.staff_id,
                               req.box_key, secrets.token_bytes(32), device_id=device_id,
                               log=LogPosition.of(ctx.directory.log))
            api = await ctx.api()
            await api.put_grants(self.org_id, epoch.number,
                                 [(req.staff_id, device_id, grant)])
        return req

    def staff_id_of(self, text: str) -> str:
        """A staff id as people type it: ``carl-mueller`` inside our org is ``org/carl-mueller``."""
        text = text.strip()
        return text if "/" in text else f"{self.org_id}/{text}"

    async def remove(self, staff_id: str) -> int:
        """Remove a staff member and rotate, so they can read nothing sent from now on.

        ``staff_id`` may leave out our own org (``carl-mueller``).
        """
        staff_id = self.staff_id_of(staff_id)
        ctx = self.ctx
        await ctx.sync_log()
        self._require_active()
        org = ctx.directory.log.orgs[self.org_id]
        staff = org.staff.get(staff_id)
        if staff is None:
            raise AccessError("not_enrolled", staff=staff_id)
        if not staff.active:
            raise AccessError("staff_removed", staff=staff_id)
        if staff_id == ctx.staff_id:
            raise UsageError("cannot_remove_self")
        record = StaffRemove(staff_id=staff_id, created=ctx.now())
        await append(ctx, sign_record(record, self.identity_key()))
        return await self.rotate()

    async def rotate(self) -> int:
        """A new epoch key, published in the log and granted to every current staff member."""
        ctx = self.ctx
        await ctx.sync_log()
        self._require_admitted()
        org = ctx.directory.log.orgs[self.org_id]
        if ctx.staff_id not in org.staff:
            raise UsageError("org_not_activated", org=self.org_id)
        ctx.require_staff()
        # After all epochs ever published (a re-admitted org continues the numbering).
        number = (org.epochs[-1].number + 1) if org.epochs else 1
        secret = secrets.token_bytes(32)
        # Keep the secret before publishing: a crash after the append must not lose the key
        # that the log already announces.
        ctx.keystore.secrets[f"epoch/{self.org_id}/{number}"] = secret
        save_keystore(ctx.keystore)
        record = Epoch(org_id=self.org_id, epoch=number,
                       public_key=box_public_from_secret(secret), created=ctx.now())
        try:
            await append(ctx, sign_record(record, self.identity_key()))
        except RelayRefused as exc:
            if exc.code != "log_epoch_order":
                raise
            # Another admin of the org rotated a moment earlier: theirs is the new epoch,
            # and their grant replaces the secret we kept under its number.
            await ctx.sync_log()
            return ctx.directory.log.current_epoch(self.org_id).number
        signer = self.identity_key()
        # the head we saw goes into every grant: a relay showing us another history shows
        position = LogPosition.of(ctx.directory.log)
        # one grant per current device, sealed to its current box key (SPEC.md section 20.1)
        grants = []
        for s in ctx.directory.log.orgs[self.org_id].active_staff():
            for d in s.current_devices():
                try:  # one at a time: a key that cannot be used must not stop the rest
                    grants.append((s.staff_id, d.device_id,
                                   make_grant(signer, self.org_id, number, secret, s.staff_id,
                                              d.box_key, secrets.token_bytes(32),
                                              device_id=d.device_id, log=position)))
                except ProtocolError:
                    continue
        if grants:
            api = await ctx.api()
            await api.put_grants(self.org_id, number, grants)
        return number

    async def show(self) -> OrgInfo:
        """Our organisation as the verified key log shows it, with our rotation schedule."""
        await self.ctx.sync_log()
        self._require_admitted()
        period = await lifecycle.rotate_every(self.ctx)
        return dataclasses.replace(
            org_info(self.ctx, self.org_id), rotate_every=period,
            next_rotation=lifecycle.next_rotation(self.ctx.directory.log, self.org_id,
                                                  period))

    async def configure(self, rotate_every: int | None = None) -> OrgInfo:
        """Change this profile's settings (the rotation period), then ``show``."""
        if rotate_every is not None:
            await lifecycle.set_rotate_every(self.ctx, rotate_every)
        return await self.show()

    async def rotate_if_due(self) -> tuple[int, str] | None:
        """On sync: rotate when the schedule, a removal or our rekey asks for it."""
        ctx = self.ctx
        if identity.current_identity(ctx) is None:
            return None  # a rekey we did not ask for, or not ours: show() explains
        org = ctx.directory.log.orgs.get(self.org_id)
        if org is None or org.revoked or ctx.staff_id not in org.staff:
            return None
        period = await lifecycle.rotate_every(ctx)
        reason = lifecycle.rotation_reason(ctx.directory.log, self.org_id, ctx.now(),
                                           period)
        if reason is None:
            return None
        return await self.rotate(), reason

    async def rekey(self) -> tuple[bytes, str]:
        """A new identity key (kept in the keystore) and the request file for the office."""
        ctx = self.ctx
        await ctx.sync_log()
        self._require_active()
        old = self.identity_key()
        new = identity.new_identity_key(ctx)
        request = identity.make_rekey_request(old, new, self.org_id, ctx.now())
        return request, new.fingerprint
