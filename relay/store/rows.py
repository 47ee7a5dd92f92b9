"""Plain values passed between the relay service and its store."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoredMessage:
    """An envelope in a mailbox, as clients see it (no sender: the relay does not know it)."""

    cursor: int
    id: bytes
    to_org: str
    epoch: int
    sealed: bytes = field(repr=False)
    received: int
    expires: int


@dataclass(frozen=True)
class NewMessage:
    """An envelope about to be stored, with the staff who must acknowledge it."""

    id: bytes
    to_org: str
    epoch: int
    sealed: bytes = field(repr=False)
    status_hash: bytes
    recipients: tuple[str, ...]
    devices: tuple[tuple[str, str], ...] = ()
    """``(staff_id, device)`` of every current device of the recipients: each must fetch it."""


@dataclass(frozen=True)
class SendBatch:
    """One send: its envelopes, lifetime and idempotency record."""

    key_hash: bytes
    request_hash: bytes
    received: int
    expires: int
    messages: tuple[NewMessage, ...]
    org_quota: int
    removed: Container[str] = frozenset()
    """Staff removed meanwhile (read when the write runs): they no longer count as recipients."""
    removed_devices: Container[tuple[str, str]] = frozenset()
    """Devices removed meanwhile (read when the write runs): they need not fetch it."""
    revoked: Container[str] = frozenset()
    """Orgs revoked meanwhile (read when the write runs): a send to one of them is refused."""


@dataclass(frozen=True)
class ReplayedSend:
    """The send was already stored under this idempotency key; nothing new was written."""

    received: int
    expires: int


@dataclass(frozen=True)
class SessionRow:
    """A live session (by the hash of its token)."""

    token_hash: bytes
    staff_id: str
    expires: int
    device: str = ""
    """The device that opened it ('' for a session stored before devices existed)."""


@dataclass(frozen=True)
class GrantRow:
    """A stored epoch grant."""

    org_id: str
    epoch: int
    staff_id: str
    sealed: bytes = field(repr=False)
    device: str = ""
    """The device whose box key it is sealed to ('' for a grant stored before devices)."""


@dataclass(frozen=True)
class MessageStatus:
    """What a status token may learn: state, k of n who fetched it, and how many read it."""

    state: str
    acknowledged: int
    recipients: int
    read: int = 0
    """Recipients who reported it read (SPEC.md section 21), at most ``acknowledged``."""


@dataclass(frozen=True)
class LogAppend:
    """A key-log entry to write, with the consequences the record has for stored data."""

    index: int
    record: bytes
    hash: bytes
    staff_removed: str | None = None
    device_removed: tuple[str, str] | None = None
    org_revoked: str | None = None
    org_admitted: str | None = None
    """An organisation (re-)admitted: no longer revoked."""
    epoch_of: str | None = None
    epoch: int | None = None
    retire_grants_at: int | None = None
    status_grace: int = 0
    now: int = 0


@dataclass(frozen=True)
class PurgeCounts:
    """How many rows of each kind one purge deleted."""

    messages: int = 0
    tombstones: int = 0
    idempotency: int = 0
    challenges: int = 0
    sessions: int = 0
    grants: int = 0
    drops: int = 0
    receipts: int = 0
    links: int = 0

    def total(self) -> int:
        return (self.messages + self.tombstones + self.idempotency + self.challenges
                + self.sessions + self.grants + self.drops + self.receipts + self.links)


@dataclass(frozen=True)
class StoreStats:
    """Aggregate counts only: nothing per organisation or per person."""

    log_entries: int
    messages: int
    message_bytes: int
    pending_deliveries: int
    tombstones: int
    sessions: int
    challenges: int
    grants: int
    database_bytes: int
    drops: int
    complete_drops: int
    drop_bytes: int
    """Bytes declared by every drop (the blobs themselves are counted by no query here)."""


@dataclass(frozen=True)
class NewDrop:
    """A drop about to be created, with the recipient organisations' storage quota."""

    id: bytes
    size: int
    token_hash: bytes
    expires: int
    idle_expires: int
    orgs: tuple[str, ...]
    org_quota: int
    revoked: Container[str] = frozenset()
    """Orgs revoked meanwhile (read when the write runs): a drop for one of them is refused."""


@dataclass(frozen=True)
class DropRow:
    """A stored drop (no sender: the relay does not know it)."""

    id: bytes
    size: int
    token_hash: bytes
    expires: int
    idle_expires: int | None
    complete: bool
    orgs: tuple[str, ...]

    def alive(self, now: int) -> bool:
        """Not past its TTL, nor (while uploading) past its idle deadline."""
        if self.expires <= now:
            return False
        return self.complete or self.idle_expires is None or self.idle_expires > now


@dataclass(frozen=True)
class LinkMailbox:
    """A device-linking mailbox: who opened it, and each side's messages (opaque bytes)."""

    nameplate: str
    staff_id: str
    device: str
    expires: int
    existing: tuple[bytes, ...] = field(default=(), repr=False)
    """What the existing device (side ``a``) posted, in order."""
    new: tuple[bytes, ...] = field(default=(), repr=False)
    """What the new device (side ``b``) posted, in order."""
