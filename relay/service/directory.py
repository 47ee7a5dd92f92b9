"""The relay's copy of the key log: validated in memory, persisted in the store, signed.

The in-memory ``protocol.KeyLog`` is the single source of truth for who is enrolled, in
which role, and each organisation's current epoch; it is rebuilt from the store at start-up
(every record re-validated, every chain hash re-checked). An append is checked against it,
written to the store together with its consequences (ended sessions, forgotten grants),
and only then applied in memory, under a lock so two appends cannot both pass the check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from protocol import Head, KeyLog, LogEntry, SignedItem, SigningKeyPair, sign_head
from protocol.encoding import b64decode
from protocol.errors import EncodingError, ProtocolError
from protocol.keylog import Consequences, chain_hash

from ..errors import BadHeader, InvalidRequest, LogHeadMismatch, LogRejected
from ..store import LogAppend, LogIndexTaken, RelayStore

Listener = Callable[[LogEntry], Awaitable[None]]


class Directory:
    """The key log as the relay keeps it."""

    def __init__(self, store: RelayStore, network_key: bytes, log_key: SigningKeyPair, *,
                 max_ttl: int, status_grace: int) -> None:
        self.store = store
        self.keylog = KeyLog(network_key)
        self.log_key = log_key
        self.max_ttl = max_ttl
        self.status_grace = status_grace
        self._lock = asyncio.Lock()
        self._listeners: list[Listener] = []
        self.removed_staff: set[str] = set()
        """Staff removed (or being removed): sends queued before the removal skip them."""
        self.removed_devices: set[tuple[str, str]] = set()
        """Devices removed (or being removed): sends queued before it need not wait for them."""
        self.revoked_orgs: set[str] = set()
        """Orgs revoked (or being revoked): sends queued before the revocation are refused."""

    @property
    def append_lock(self) -> asyncio.Lock:
        """Held while a record is checked and appended (hold it to act on a stable log)."""
        return self._lock

    def on_append(self, listener: Listener) -> None:
        """Call ``listener`` after every committed append (to end sessions, close sockets)."""
        self._listeners.append(listener)

    async def load(self, now: int) -> None:
        """Rebuild the key log from the store; refuse to start on any inconsistency."""
        for index, (record, stored_hash) in enumerate(await self.store.log_records()):
            try:
                entry = self.keylog.apply(record, now)
            except ProtocolError as exc:
                raise RuntimeError(
                    f"key-log entry {index} in the database is invalid ({exc.code}): "
                    "the database was altered or damaged") from exc
            if entry.hash != stored_hash:
                raise RuntimeError(f"key-log entry {index} has a wrong chain hash in the database")
            self._note_removals(self.keylog.consequences(entry.record))

    def _note_removals(self, ends: Consequences) -> Callable[[], None]:
        """Track removals, revocations and re-admissions; return how to take it back."""
        if ends.device_removed is not None:
            device = ends.device_removed
            self.removed_devices.add(device)
            return lambda: self.removed_devices.discard(device)
        if ends.staff_removed is not None:
            staff_id = ends.staff_removed
            self.removed_staff.add(staff_id)
            return lambda: self.removed_staff.discard(staff_id)
        if ends.org_revoked is not None:
            revoked = ends.org_revoked
            self.revoked_orgs.add(revoked)
            return lambda: self.revoked_orgs.discard(revoked)
        if ends.org_admitted is not None and ends.org_admitted in self.revoked_orgs:
            readmitted = ends.org_admitted
            self.revoked_orgs.discard(readmitted)
            return lambda: self.revoked_orgs.add(readmitted)
        return lambda: None

    def head(self, now: int) -> Head:
        """The log's head, signed now with the relay's log key."""
        return sign_head(self.log_key, self.keylog.size, self.keylog.head_hash, now)

    def entries(self, after: int, limit: int) -> list[LogEntry]:
        """Entries with index >= ``after`` (the count the client already holds)."""
        return self.keylog.entries[after : after + limit]

    def require_extends(self, header: str) -> None:
        """Check a client's ``Kok-Log-Head: <size>:<b64 hash>``: our log must extend it."""
        size_text, sep, hash_text = header.strip().partition(":")
        try:
            if not sep or not size_text.isdigit():
                raise ValueError
            size = int(size_text)
            head_hash = b64decode(hash_text, size=32, field="Kok-Log-Head hash")
        except (ValueError, EncodingError):
            raise BadHeader("Kok-Log-Head must be <size>:<base64url hash of 32 bytes>") from None
        try:
            self.keylog.require_extends(size, head_hash)
        except ProtocolError as exc:
            raise LogHeadMismatch() from exc

    async def append(self, record_json: Any, now: int) -> LogEntry:
        """Validate a signed record with the protocol's rules; persist; apply; notify."""
        try:
            item = SignedItem.from_json(record_json)
        except ProtocolError as exc:
            raise InvalidRequest(exc.message, exc.code) from exc
        record_bytes = item.to_bytes()
        async with self._lock:
            while True:
                try:
                    return await self._append_locked(record_bytes, now)
                except LogIndexTaken:
                    # another relay process on the same store appended first: take its
                    # entries, then check this record again against the longer log
                    await self._catch_up_locked(now)

    async def catch_up(self, now: int) -> None:
        """Apply entries another relay process appended to a shared store meanwhile."""
        async with self._lock:
            await self._catch_up_locked(now)

    async def _catch_up_locked(self, now: int) -> None:
        for record, stored_hash in await self.store.log_records(self.keylog.size):
            entry = self.keylog.apply(record, now)
            if entry.hash != stored_hash:
                raise RuntimeError(f"key-log entry {entry.index} has a wrong chain hash "
                                   "in the database")
            self._note_removals(self.keylog.consequences(entry.record))
            for listener in self._listeners:
                await listener(entry)

    async def _append_locked(self, record_bytes: bytes, now: int) -> LogEntry:
        try:
            record = self.keylog.check(record_bytes, now)
        except ProtocolError as exc:
            raise LogRejected(exc.message, exc.code) from exc
        index = self.keylog.size
        ends = self.keylog.consequences(record)
        append = LogAppend(
            index=index,
            record=record_bytes,
            hash=chain_hash(self.keylog.head_hash, record_bytes),
            staff_removed=ends.staff_removed,
            device_removed=ends.device_removed,
            org_revoked=ends.org_revoked,
            org_admitted=ends.org_admitted,
            epoch_of=ends.epoch[0] if ends.epoch else None,
            epoch=ends.epoch[1] if ends.epoch else None,
            retire_grants_at=now + self.max_ttl,
            status_grace=self.status_grace,
            now=now,
        )
        # before the write: a send already queued behind it must not count a removed
        # colleague, nor reach a revoked org (taken back if the write fails)
        undo = self._note_removals(ends)
        try:
            await self.store.append_log(append)
        except BaseException:
            undo()
            raise
        entry = self.keylog.apply(record_bytes, now)
        for listener in self._listeners:
            await listener(entry)
        return entry
