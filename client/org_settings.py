"""An organisation's settings as every staff client of it obeys them (SPEC.md section 6.8).

Theory of operation
-------------------
Settings that protect the people an organisation counsels (how long a device keeps read
mail, whether read reports are sent at all) are the organisation's decision, not each
person's. An admin publishes them as an ``org_settings`` key-log record signed by the org
identity key; the relay cannot forge one and a member's device key cannot sign one. The
newest record of an org in the verified log is its settings; before any record, and after a
re-admission, the defaults hold (``protocol.records.DEFAULT_*``).

Everything here reads the local, verified mirror (``settings_for``): callers that must see
the newest record first bring the mirror up to date (``Client.org_settings`` does). Nothing
is taken from anywhere else, so a forged or refused record changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protocol.records import (
    DEFAULT_READ_REPORTS,
    DEFAULT_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    UNREAD_RETENTION_FACTOR,
    sign_record,
)
from protocol.records import OrgSettings as SettingsRecord

from .admin import OrgAdmin, append
from .errors import UsageError

if TYPE_CHECKING:
    from .context import ClientContext


@dataclass(frozen=True)
class OrgSettings:
    """The settings an organisation's staff clients follow."""

    org_id: str
    read_reports: bool
    """False: the org's staff clients send no read reports at all."""
    retention_days: int
    """Days a staff device keeps a message after it was first opened there (unless kept)."""
    set_at: int | None
    """When the admin set them (the record's ``created``); None: the defaults hold."""

    @property
    def is_default(self) -> bool:
        """No ``org_settings`` record holds for this org: these are the defaults."""
        return self.set_at is None

    def to_json(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "read_reports": self.read_reports,
                "retention_days": self.retention_days, "set_at": self.set_at,
                "default": self.is_default}


def settings_for(ctx: ClientContext, org_id: str) -> OrgSettings:
    """``org_id``'s settings from the verified key-log mirror (no relay call)."""
    org = ctx.directory.log.orgs.get(org_id)
    if org is None:
        raise UsageError("unknown_org", org=org_id)
    record = org.settings
    if record is None:
        return OrgSettings(org_id=org_id, read_reports=DEFAULT_READ_REPORTS,
                           retention_days=DEFAULT_RETENTION_DAYS, set_at=None)
    return OrgSettings(org_id=org_id, read_reports=record.read_reports,
                       retention_days=record.retention_days, set_at=record.created)


def own_settings(ctx: ClientContext) -> OrgSettings:
    """Our own organisation's settings; the defaults for a profile of no (known) org."""
    org_id = ctx.org_id
    if org_id is None or org_id not in ctx.directory.log.orgs:
        return OrgSettings(org_id=str(org_id or ""), read_reports=DEFAULT_READ_REPORTS,
                           retention_days=DEFAULT_RETENTION_DAYS, set_at=None)
    return settings_for(ctx, org_id)


def unread_days(retention_days: int) -> int:
    """Days a message never opened on a device is kept after it arrived."""
    return retention_days * UNREAD_RETENTION_FACTOR


def check_retention_days(days: int) -> int:
    """``days`` if it is within the protocol's bounds, else ``retention_out_of_range``."""
    if not MIN_RETENTION_DAYS <= days <= MAX_RETENTION_DAYS:
        raise UsageError("retention_out_of_range", days=days, low=MIN_RETENTION_DAYS,
                         high=MAX_RETENTION_DAYS)
    return days


async def set_settings(ctx: ClientContext, *, read_reports: bool | None = None,
                       retention_days: int | None = None) -> OrgSettings:
    """Publish new settings for our org (an org admin holding the identity key).

    A field not given keeps its current value; with neither given nothing is published.
    """
    if ctx.kind != "org":
        raise UsageError("not_org_profile")
    if retention_days is not None:
        check_retention_days(retention_days)
    await ctx.sync_log()
    admin = OrgAdmin(ctx)
    signer = admin.identity_key()
    current = settings_for(ctx, admin.org_id)
    if read_reports is None and retention_days is None:
        return current
    record = SettingsRecord(
        org_id=admin.org_id,
        read_reports=current.read_reports if read_reports is None else read_reports,
        retention_days=current.retention_days if retention_days is None else retention_days,
        created=ctx.now(),
    )
    await append(ctx, sign_record(record, signer))
    return settings_for(ctx, admin.org_id)
