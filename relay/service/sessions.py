"""Logins: single-use challenges, hashed session tokens, and sessions that end at once.

A staff member asks for a challenge (32 random bytes, valid ``challenge_ttl`` seconds),
signs ``kok/v1/auth || origin || nonce`` with their staff signing key, and gets a session
token (32 random bytes, valid ``session_ttl`` seconds). The relay keeps only hashes of
nonces and tokens. Challenges are taken (deleted) by the first answer, right or wrong, so
one nonce can never be tried twice.

Every authenticated request checks the session against the in-memory key log, so a
session whose staff member was removed, or whose organisation was revoked, stops working
on the very next request; ``end_staff``/``end_org`` also drop them from memory and the
store (the store's log append deletes them in the same transaction as the record).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protocol import verify_auth
from protocol.auth import NONCE_SIZE
from protocol.encoding import org_of
from protocol.errors import AuthSignatureInvalid as ProtocolAuthInvalid
from protocol.errors import LogError
from protocol.keylog import StaffState

from ..errors import (
    AuthSignatureInvalid,
    ChallengeExpired,
    ChallengeInvalid,
    NotEnrolled,
    SessionInvalid,
)
from ..store import SessionRow
from ..store.interface import LoginStore
from .directory import Directory
from .domain import SESSION_TOKEN_SIZE, LoginRequest
from .hashing import NONCE, SESSION, secret_hash

CHECKED_CACHE = 10_000
"""At most this many checked sessions are remembered (then the memory starts afresh)."""


@dataclass(frozen=True)
class Session:
    """An authenticated staff member (what handlers get after checking a token)."""

    token_hash: bytes
    staff_id: str
    org_id: str
    role: str
    expires: int
    device: str = ""
    """The device that logged in (its signing key's fingerprint; '' for an old session)."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class NewSession:
    """A session just created; the token is shown to its owner once and never stored."""

    token: bytes
    session: Session


class Sessions:
    """Challenges and sessions."""

    def __init__(self, store: LoginStore, directory: Directory, origins: tuple[str, ...], *,
                 challenge_ttl: int, session_ttl: int) -> None:
        self.store = store
        self.directory = directory
        self.origins = origins
        self.challenge_ttl = challenge_ttl
        self.session_ttl = session_ttl
        self._live: dict[bytes, SessionRow] = {}
        self._checked: dict[bytes, tuple[SessionRow, object, int, Session]] = {}
        """Sessions checked against the key log, with the row and the log (and its size)
        they were checked against: a log that grew since (a removal is a record) checks
        again. Only live rows are looked up here, so an ended session never gets this far."""
        self.on_login: Callable[[str, str, int], Awaitable[None]] | None = None
        """Told of every new session's staff member and device (``DeviceActivity``)."""

    async def load(self, now: int) -> None:
        """Sessions survive a restart: reload the live ones into memory."""
        self._live = {row.token_hash: row for row in await self.store.live_sessions(now)}

    def _require_active(self, staff_id: str) -> str:
        """The staff member's role if they are enrolled, not removed, org not revoked."""
        try:
            return self.directory.keylog.active_staff(staff_id).role
        except LogError as exc:
            raise NotEnrolled(
                f"{staff_id} is not an enrolled staff member of an admitted organisation."
            ) from exc

    async def challenge(self, staff_id: str, now: int) -> tuple[bytes, int]:
        """A fresh single-use nonce for ``staff_id`` and its expiry."""
        self._require_active(staff_id)
        nonce = secrets.token_bytes(NONCE_SIZE)
        expires = now + self.challenge_ttl
        await self.store.add_challenge(secret_hash(NONCE, nonce), staff_id, expires)
        return nonce, expires

    async def login(self, request: LoginRequest, now: int) -> NewSession:
        """Check the signed challenge and open a session."""
        staff_id, nonce = request.staff_id, request.nonce
        taken = await self.store.take_challenge(secret_hash(NONCE, nonce))
        if taken is None or taken[0] != staff_id:
            raise ChallengeInvalid()
        if taken[1] <= now:
            raise ChallengeExpired()
        role = self._require_active(staff_id)
        # the session belongs to the device whose key answered (SPEC.md section 11)
        device = next((d.device_id for d in self.directory.keylog.devices(staff_id)
                       if self._answers(d.signing_key, nonce, request.signature)), None)
        if device is None:
            raise AuthSignatureInvalid()
        token = secrets.token_bytes(SESSION_TOKEN_SIZE)
        row = SessionRow(secret_hash(SESSION, token), staff_id, now + self.session_ttl, device)
        await self.store.add_session(row)
        self._live[row.token_hash] = row
        if self.on_login is not None:
            await self.on_login(staff_id, device, now)
        return NewSession(token, Session(row.token_hash, staff_id, org_of(staff_id), role,
                                         row.expires, device))

    def _answers(self, key: bytes, nonce: bytes, signature: bytes) -> bool:
        """Did ``key`` (a current device of the member) sign the nonce for one of our origins?"""
        for origin in self.origins:  # bound to one of the URLs this relay answers to
            try:
                verify_auth(key, origin, nonce, signature)
                return True
            except ProtocolAuthInvalid:
                continue
        return False

    def authenticate(self, token: bytes, now: int) -> Session:
        """The live session of ``token``; ``SessionInvalid`` if it ended for any reason."""
        token_hash = secret_hash(SESSION, token)
        row = self._live.get(token_hash)
        if row is None or row.expires <= now:  # logout, expiry, another process's end
            raise SessionInvalid()
        keylog = self.directory.keylog
        checked = self._checked.get(token_hash)
        if (checked is not None and checked[0] is row and checked[1] is keylog
                and checked[2] == keylog.size):
            return checked[3]
        try:
            staff = keylog.active_staff(row.staff_id)
        except LogError:
            self._live.pop(token_hash, None)
            raise SessionInvalid("The session ended: this staff member was removed.") from None
        if not _device_current(staff, row.device):
            self._live.pop(token_hash, None)
            raise SessionInvalid("The session ended: this device was removed.")
        session = Session(token_hash, row.staff_id, org_of(row.staff_id), staff.role,
                          row.expires, row.device)
        if len(self._checked) >= CHECKED_CACHE:
            self._checked.clear()
        self._checked[token_hash] = (row, keylog, keylog.size, session)
        return session

    def still_valid(self, session: Session, now: int) -> bool:
        """Is ``session`` still live (used by long-lived event streams)?"""
        row = self._live.get(session.token_hash)
        if row is None or row.expires <= now:
            return False
        keylog = self.directory.keylog
        checked = self._checked.get(session.token_hash)
        if (checked is not None and checked[0] is row and checked[1] is keylog
                and checked[2] == keylog.size):
            return True  # every push to a stream asks: the answer holds until the log grows
        try:
            staff = keylog.active_staff(row.staff_id)
        except LogError:
            return False
        return _device_current(staff, row.device)

    async def logout(self, session: Session) -> None:
        """End one session now."""
        self._live.pop(session.token_hash, None)
        await self.store.delete_session(session.token_hash)

    async def sync(self, token_hash: bytes, now: int) -> bool:
        """Make memory agree with a store shared by several relay processes about one session
        (another process may have opened it, or ended it a moment ago); True if it is live
        and was not known here."""
        row = await self.store.get_session(token_hash, now)
        if row is None:
            self._live.pop(token_hash, None)
            return False
        new = token_hash not in self._live
        self._live[token_hash] = row
        return new

    def forget(self, token_hash: bytes) -> None:
        """Drop one session from memory (another relay process ended it)."""
        self._live.pop(token_hash, None)

    def forget_staff(self, staff_id: str) -> None:
        """Drop a removed staff member's sessions from memory (the store already did)."""
        self._live = {h: r for h, r in self._live.items() if r.staff_id != staff_id}

    def forget_device(self, staff_id: str, device: str) -> list[bytes]:
        """Drop a removed device's sessions from memory; returns their token hashes."""
        ended = [h for h, r in self._live.items() if (r.staff_id, r.device) == (staff_id, device)]
        for token_hash in ended:
            del self._live[token_hash]
        return ended

    def forget_org(self, org_id: str) -> None:
        """Drop a revoked organisation's sessions from memory."""
        self._live = {h: r for h, r in self._live.items() if org_of(r.staff_id) != org_id}

    def expire(self, now: int) -> None:
        """Drop expired sessions from memory (the expiry task deletes them from the store)."""
        self._live = {h: r for h, r in self._live.items() if r.expires > now}
        self._checked = {h: c for h, c in self._checked.items() if h in self._live}



def _device_current(staff: StaffState, device: str) -> bool:
    """A session's device is still one of the member's ('' : a session from before devices)."""
    return device == "" or staff.device_signing(device) is not None
