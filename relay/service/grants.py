"""Epoch grants: uploaded by an org admin, read by the staff member they are sealed to.

The relay cannot open a grant (it is sealed to the staff member's box key) and does not
need to: the recipient checks the org's signature inside and that the secret matches the
epoch key in the log. The relay only checks what it can: the uploader is an admin of the
organisation, the epoch exists in the log, and each grant names a current staff member.
"""

from __future__ import annotations

from typing import Any

from protocol.encoding import b64decode, check_org_id, check_staff_id, org_of
from protocol.errors import EncodingError, LogError

from ..errors import InvalidRequest, NotAdmin, NotFound
from ..store import GrantRow
from ..store.interface import GrantStore
from ..wire import json_object
from .directory import Directory
from .sessions import Session

MAX_GRANT_BYTES = 4096
MIN_GRANT_BYTES = 48


class Grants:
    """Storing and handing out epoch grants."""

    def __init__(self, store: GrantStore, directory: Directory, *, max_ttl: int) -> None:
        self.store = store
        self.directory = directory
        self.max_ttl = max_ttl

    async def upload(self, session: Session, org_id: str, epoch: int, body: Any,
                     now: int) -> int:
        """Store the grants of ``epoch`` of ``org_id`` uploaded by one of its admins."""
        try:
            check_org_id(org_id)
        except EncodingError:
            raise NotFound() from None
        if session.org_id != org_id:
            raise NotFound()
        if not session.is_admin:
            raise NotAdmin()
        if self.directory.keylog.epoch(org_id, epoch) is None:
            raise NotFound(f"Epoch {epoch} of {org_id} is not in the key log.")
        json_object(body, {"grants"})
        raw = body["grants"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= 1000:
            raise InvalidRequest("grants must be a list of 1 to 1000 entries")
        grants: list[tuple[str, bytes]] = []
        seen: set[str] = set()
        org = self.directory.keylog.orgs[org_id]
        for entry in raw:
            if not isinstance(entry, dict) or set(entry) != {"staff_id", "grant"}:
                raise InvalidRequest("each grant must be {\"staff_id\", \"grant\"}")
            try:
                staff_id = check_staff_id(entry["staff_id"])
                sealed = b64decode(entry["grant"], field="grant")
            except EncodingError as exc:
                raise InvalidRequest(exc.message, exc.code) from exc
            if org_of(staff_id) != org_id or staff_id in seen:
                raise InvalidRequest(f"{staff_id} is not a distinct member of {org_id}")
            staff = org.staff.get(staff_id)
            if staff is None or not staff.active:
                raise InvalidRequest(f"{staff_id} is not a current staff member of {org_id}",
                                     "not_enrolled")
            if not MIN_GRANT_BYTES <= len(sealed) <= MAX_GRANT_BYTES:
                raise InvalidRequest(
                    f"a grant must be {MIN_GRANT_BYTES} to {MAX_GRANT_BYTES} bytes")
            seen.add(staff_id)
            grants.append((staff_id, sealed))
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
        return await self.store.grants_for(session.staff_id, now)
