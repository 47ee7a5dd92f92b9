"""``ClientContext``: what the client's modules work with, instead of the whole ``Client``.

Sending, receiving, admin operations, key lifecycle, verification, identity keys and
attachments each take one context: the profile (who we are, its settings), the unlocked
keys, the local mailbox store, the verified key-log mirror (``Directory``), the relay
connection (``RelayLink``: the transport and the log sync) and the clock. ``Client`` builds
it once and delegates; the modules never see ``Client`` itself, so none of them can reach
into its private state and none imports it (``tests/client/test_context.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from protocol.keys import BoxKeyPair, SigningKeyPair, fingerprint

from .api import RelayApi
from .directory import Directory
from .errors import AccessError, UsageError
from .keystore import Keystore
from .mailbox import MailboxStore
from .profile import Profile
from .relay_link import RelayLink
from .unlocked_keys import UnlockedKeys


@dataclass(frozen=True)
class ClientContext:
    """One opened profile's parts: profile, keys, mailbox, key-log mirror, relay, clock."""

    profile: Profile
    keys: UnlockedKeys
    store: MailboxStore
    directory: Directory
    link: RelayLink
    clock: Callable[[], float]

    # --- who we are ----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        return self.profile.info.kind

    @property
    def org_id(self) -> str | None:
        return self.profile.info.org_id

    @property
    def staff_id(self) -> str | None:
        return self.profile.info.staff_id

    @property
    def keystore(self) -> Keystore:
        return self.keys.keystore

    def now(self) -> int:
        return int(self.clock())

    def signing_key(self) -> SigningKeyPair:
        return self.keys.signing()

    def box_key(self) -> BoxKeyPair:
        return self.keys.box()

    # --- the relay -----------------------------------------------------------------------

    async def api(self) -> RelayApi:
        """The relay transport, checked against our anchor (connecting on first use)."""
        return await self.link.api()

    async def sync_log(self) -> int:
        """Bring the verified key-log mirror up to date; returns the number of new entries."""
        return await self.link.sync_log()

    # --- our standing --------------------------------------------------------------------

    def require_staff(self) -> str:
        """Our staff id if the log shows us enrolled, not removed, in a live org."""
        staff_id = self.staff_id
        if self.kind not in ("org", "staff") or staff_id is None or self.org_id is None:
            raise UsageError("not_staff_profile")
        log = self.directory.log
        org = log.orgs.get(self.org_id)
        if org is None:
            raise AccessError("org_not_admitted", org=self.org_id)
        if org.revoked:
            raise AccessError("own_org_revoked", org=self.org_id)
        staff = org.staff.get(staff_id)
        if staff is None or staff.device_signing(fingerprint(self.signing_key().public)) is None:
            raise AccessError("not_enrolled", staff=staff_id)
        if not staff.active:
            raise AccessError("staff_removed", staff=staff_id)
        return staff_id
