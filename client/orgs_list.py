"""The network's directory as staff see it: every organisation, its standing and its people.

Built from the verified key-log mirror only (no relay call beyond the log sync the caller
chooses), so what it shows is exactly what sending and receiving will trust. The key log
names staff by id only (``org/anna-mueller``): the display name is spelt back from that id
(``Anna Mueller``), except for this profile's own entry, whose name the profile holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocol.encoding import b64encode
from protocol.keys import fingerprint

from . import verification
from .errors import AccessError
from .models import OrgInfo, StaffInfo

if TYPE_CHECKING:
    from .context import ClientContext


def display_name(staff_id: str) -> str:
    """A readable name from a staff id: ``beratung-nord/anna-mueller`` -> ``Anna Mueller``."""
    part = staff_id.rsplit("/", 1)[-1]
    return " ".join(word.capitalize() for word in part.split("-") if word) or staff_id


@dataclass(frozen=True)
class StaffEntry:
    """One current member of an organisation."""

    staff_id: str
    display_name: str
    role: str
    fingerprint: str

    def to_json(self) -> dict[str, Any]:
        return {"staff_id": self.staff_id, "display_name": self.display_name, "role": self.role,
                "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class OrgEntry:
    """One organisation of the network, as this profile's verified key log shows it."""

    org_id: str
    name: str
    fingerprint: str
    verification: str
    """``own``, ``verified`` (by this profile), ``org_verified`` (by an admin of our org),
    ``changed`` (verified, then a new key) or ``unverified``."""
    active: bool
    """Has a current key: messages can be sent to it."""
    revoked: bool
    staff: tuple[StaffEntry, ...]

    @property
    def staff_count(self) -> int:
        return len(self.staff)

    @property
    def can_receive(self) -> bool:
        return self.active and not self.revoked

    def to_json(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "name": self.name, "fingerprint": self.fingerprint,
                "verification": self.verification, "verified": self.verification in
                ("own", "verified", "org_verified"), "active": self.active, "revoked": self.revoked,
                "staff_count": self.staff_count, "staff": [s.to_json() for s in self.staff]}


async def list_orgs(ctx: ClientContext) -> list[OrgEntry]:
    """Every organisation in the verified log, sorted by display name (no relay call)."""
    own_staff, own_name = ctx.staff_id, ctx.profile.info.name
    out = []
    # a snapshot: each org's standing is awaited, and a sync meanwhile (the app's listener)
    # may add organisations to the mirror
    for org in list(ctx.directory.log.orgs.values()):
        staff = tuple(
            StaffEntry(staff_id=s.staff_id,
                       display_name=(own_name if s.staff_id == own_staff and
                                     ctx.kind == "staff" else display_name(s.staff_id)),
                       role=s.role, fingerprint=fingerprint(s.signing_key))
            for s in org.active_staff())
        out.append(OrgEntry(
            org_id=org.org_id, name=org.name, fingerprint=fingerprint(org.identity_key),
            verification=await verification.standing(ctx, org.org_id),
            active=org.current_epoch is not None, revoked=org.revoked, staff=staff))
    return sorted(out, key=lambda o: (o.name.casefold(), o.org_id))


def org_info(ctx: ClientContext, org_id: str) -> OrgInfo:
    """An organisation's keys, staff, current epoch and the log head, from the local mirror."""
    log = ctx.directory.log
    org = log.orgs.get(org_id)
    if org is None:
        raise AccessError("unknown_org", org=org_id)
    epoch = org.current_epoch
    head = ctx.directory.head
    return OrgInfo(
        org_id=org.org_id, name=org.name, fingerprint=fingerprint(org.identity_key),
        admitted=org.admitted_at, revoked=org.revoked_at, revoke_reason=org.revoke_reason,
        staff=tuple(StaffInfo(staff_id=s.staff_id, role=s.role,
                              fingerprint=fingerprint(s.signing_key), added=s.added_at,
                              removed=s.removed_at) for s in org.staff.values()),
        epoch=epoch.number if epoch else None,
        epoch_created=epoch.created if epoch else None,
        epoch_fingerprint=fingerprint(epoch.public_key) if epoch else None,
        log_size=head.size if head else log.size,
        log_hash=b64encode(head.hash if head else log.head_hash),
        log_code=verification.head_code(head.hash if head else log.head_hash),
        relay_log_fingerprint=(fingerprint(ctx.profile.info.log_key)
                               if ctx.profile.info.log_key else None),
    )
