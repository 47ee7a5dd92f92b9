"""Epoch grants: uploaded by an org admin, read by the device they are sealed to.

The relay cannot open a grant (it is sealed to the staff member's box key) and does not
need to: the recipient checks the org's signature inside and that the secret matches the
epoch key in the log. The relay only checks what it can: the uploader is an admin of the
organisation, the epoch exists in the log, each grant names a current staff member, and
each carries the org identity key's upload signature for that member, that device (one of
its box keys) and that epoch, so an admin without the identity key cannot overwrite a
colleague's grant, and a grant cannot be moved to another device (SPEC section 10).
"""

from __future__ import annotations

from protocol.encoding import org_of
from protocol.errors import LogError, ProtocolError
from protocol.grants import verify_grant_upload

from ..errors import InvalidRequest, NotAdmin, NotFound
from ..store import GrantRow
from ..store.interface import GrantStore
from .directory import Directory
from .domain import GrantUpload
from .sessions import Session


class Grants:
    """Storing and handing out epoch grants."""

    def __init__(self, store: GrantStore, directory: Directory, *, max_ttl: int) -> None:
        self.store = store
        self.directory = directory
        self.max_ttl = max_ttl

    async def upload(self, session: Session, upload: GrantUpload, now: int) -> int:
        """Store the grants of one epoch of an organisation, uploaded by one of its admins."""
        org_id, epoch = upload.org_id, upload.epoch
        if session.org_id != org_id:
            raise NotFound()
        if not session.is_admin:
            raise NotAdmin()
        if self.directory.keylog.epoch(org_id, epoch) is None:
            raise NotFound(f"Epoch {epoch} of {org_id} is not in the key log.")
        seen: set[tuple[str, str]] = set()
        org = self.directory.keylog.orgs[org_id]
        for grant in upload.grants:
            staff_id, device = grant.staff_id, grant.device
            if org_of(staff_id) != org_id or (staff_id, device) in seen:
                raise InvalidRequest(
                    f"{staff_id} is not a member of {org_id}, or that device is named twice")
            staff = org.staff.get(staff_id)
            if staff is None or not staff.active:
                raise InvalidRequest(f"{staff_id} is not a current staff member of {org_id}",
                                     "not_enrolled")
            if staff.device_signing(device) is None:
                raise InvalidRequest(f"{device} is not a current device of {staff_id}",
                                     "not_enrolled")
            try:  # only an identity key of the org may store or replace a grant (SPEC 10)
                verify_grant_upload(grant.sealed, org_id, epoch, staff_id, device,
                                    self.directory.keylog)
            except ProtocolError as exc:
                raise InvalidRequest(exc.message, exc.code) from exc
            seen.add((staff_id, device))
        grants = [(g.staff_id, g.device, g.sealed) for g in upload.grants]
        # Under the append lock, so no newer epoch can land between this look and the write.
        async with self.directory.append_lock:
            try:
                org = self.directory.keylog.live_org(org_id)
            except LogError:
                raise NotFound() from None
            newer = [e for e in org.epochs if e.number > epoch]
            # A retired epoch's grants go max_ttl after it was replaced, like those that
            # were stored when the newer epoch arrived (forward secrecy: never kept for good).
            expires = min(now, newer[0].created) + self.max_ttl if newer else None
            return await self.store.put_grants(org_id, epoch, grants, expires)

    async def mine(self, session: Session, now: int) -> list[GrantRow]:
        """The grants sealed to the caller."""
        return await self.store.grants_for(session.staff_id, now, session.device)
