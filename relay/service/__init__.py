"""The relay's domain operations, between the HTTP handlers and the store.

Each operation takes ``now`` (integer seconds UTC) from the caller, so the clock is read
once, at the edge, and tests can move time. Nothing here knows about HTTP.
"""

from __future__ import annotations

import dataclasses

from protocol import LogEntry, SigningKeyPair
from protocol.records import DeviceRemove, OrgRevoke, StaffRemove

from ..blobs import BlobStore
from ..config import RelayConfig
from ..push import EventHub
from ..ratelimit import RateLimiter
from ..store import PurgeCounts, RelayStore
from .directory import Directory
from .drops import Drops
from .events import EventStreams
from .grants import Grants
from .link import Links
from .mailbox import Mailbox
from .recipients import DeviceActivity
from .sessions import Session, Sessions

__all__ = ["RelayService", "Session"]


class RelayService:
    """Everything the relay does, wired together over one store."""

    def __init__(self, config: RelayConfig, store: RelayStore) -> None:
        limits = config.limits
        self.config = config
        self.store = store
        self.log_key = SigningKeyPair.from_seed(config.log_seed)
        self.directory = Directory(store, config.network.network_key, self.log_key,
                                   max_ttl=limits.max_ttl, status_grace=limits.status_grace)
        self.sessions = Sessions(store, self.directory, config.origins,
                                 challenge_ttl=limits.challenge_ttl, session_ttl=limits.session_ttl)
        self.hub = EventHub()
        self.grants = Grants(store, self.directory, max_ttl=limits.max_ttl)
        # devices silent for longer than a message may be kept stop holding new ones
        self.activity = DeviceActivity(store, max_ttl=limits.max_ttl)
        self.sessions.on_login = self.activity.logged_in
        self.mailbox = Mailbox(store, self.directory, self.hub, limits, config.token_key,
                               self.activity)
        self.events = EventStreams(self.hub, store, self.sessions, limits)
        # file drops: rows in the store, bytes in the blob directory
        self.drops = Drops(store, BlobStore(config.blob_path), self.directory, limits,
                           self.activity)
        # device-linking mailboxes: opaque messages between two devices of one person
        self.links = Links(store)
        self.staff_limiter = RateLimiter(limits.staff_requests_per_minute)
        self.org_limiter = RateLimiter(limits.org_requests_per_minute)
        # Unauthenticated requests: one bucket for logins, another for everything else, so
        # probing status tokens cannot starve logins (handlers/common.py charge_*).
        self.public_limiter = RateLimiter(limits.public_requests_per_minute)
        # Wrong login answers per claimed staff id: only failures count, so asking
        # challenges in a colleague's name (ids are public) cannot lock them out.
        self.login_limiter = RateLimiter(limits.staff_requests_per_minute)
        self.directory.on_append(self._after_append)

    async def start(self, now: int) -> None:
        """Rebuild in-memory state from the store."""
        await self.directory.load(now)
        await self.sessions.load(now)
        await self.activity.load(now)

    async def logout(self, session: Session) -> None:
        """End one session now, and its event streams with it."""
        await self.sessions.logout(session)
        await self.hub.close_session(session.token_hash)

    async def _after_append(self, entry: LogEntry) -> None:
        """A removal or revocation ends sessions and open event streams at once."""
        record = entry.record
        if isinstance(record, DeviceRemove):
            for token_hash in self.sessions.forget_device(record.staff_id, record.device):
                await self.hub.close_session(token_hash)
        elif isinstance(record, StaffRemove):
            self.sessions.forget_staff(record.staff_id)
            await self.hub.close_staff(record.staff_id)
        elif isinstance(record, OrgRevoke):
            self.sessions.forget_org(record.org_id)
            await self.hub.close_org(record.org_id)

    async def purge(self, now: int) -> PurgeCounts:
        """Delete everything expired (store and memory)."""
        self.sessions.expire(now)
        # Drops first: the store's purge ends with a WAL checkpoint, which must cover the
        # drop rows too, or their bytes would stay in the database file until the next pass.
        drops = await self.drops.purge(now)
        counts = await self.store.purge(now, self.config.limits.status_grace)
        return dataclasses.replace(counts, drops=drops)
