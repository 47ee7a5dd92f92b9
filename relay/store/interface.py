"""The storage interface the relay service talks to.

Each method is one domain-level transaction: it either happens completely (and is
durable when it returns) or raises and changes nothing. An SQLite implementation lives
in ``sqlite.py``; a PostgreSQL one can be added without touching handlers or service.
"""

from __future__ import annotations

from typing import Protocol

from .rows import (
    GrantRow,
    LogAppend,
    MessageStatus,
    NewMessage,
    PurgeCounts,
    ReplayedSend,
    SendBatch,
    SessionRow,
    StoredMessage,
    StoreStats,
)

__all__ = ["NewMessage", "RelayStore"]


class RelayStore(Protocol):
    """Durable state of one relay."""

    async def open(self) -> None:
        """Connect, apply pending schema upgrades, start the writer."""

    async def close(self) -> None:
        """Finish queued writes and disconnect."""

    # --- key log ------------------------------------------------------------------------
    async def log_records(self) -> list[tuple[bytes, bytes]]:
        """Every (record bytes, chain hash) in log order, to rebuild the key log at start-up."""

    async def append_log(self, append: LogAppend) -> None:
        """Write one log entry together with its consequences (ended sessions, ...)."""

    # --- logins ------------------------------------------------------------------------
    async def add_challenge(self, nonce_hash: bytes, staff_id: str, expires: int) -> None:
        """Remember a login challenge."""

    async def take_challenge(self, nonce_hash: bytes) -> tuple[str, int] | None:
        """Delete and return (staff_id, expires) of a challenge; None if unknown or used."""

    async def add_session(self, session: SessionRow) -> None:
        """Store a new session."""

    async def delete_session(self, token_hash: bytes) -> None:
        """End one session."""

    async def live_sessions(self, now: int) -> list[SessionRow]:
        """Every session that has not expired (loaded at start-up)."""

    # --- grants ------------------------------------------------------------------------
    async def put_grants(self, org_id: str, epoch: int, grants: list[tuple[str, bytes]],
                         expires: int | None = None) -> int:
        """Store (or replace) grants of one epoch; returns how many were stored.

        ``expires`` is None for the current epoch (set when a newer one is appended) and
        the deletion time for a retired one; a replaced grant keeps an expiry it had.
        """

    async def grants_for(self, staff_id: str, now: int) -> list[GrantRow]:
        """The grants sealed to one staff member that have not expired."""

    # --- messages ----------------------------------------------------------------------
    async def store_send(self, batch: SendBatch) -> list[StoredMessage] | ReplayedSend:
        """Store a send's envelopes, or recognise a retry by its idempotency key."""

    async def list_messages(
        self, org_id: str, after: int, limit: int, now: int
    ) -> list[StoredMessage]:
        """Envelopes of one organisation with cursor > after, oldest first."""

    async def get_message(self, org_id: str, message_id: bytes, now: int) -> StoredMessage | None:
        """One envelope of one organisation (None for "no such" and "not yours" alike)."""

    async def acknowledge(
        self, org_id: str, message_id: bytes, staff_id: str, now: int, grace: int
    ) -> bool | None:
        """Record an acknowledgement; True if that deleted the message, None if not found."""

    async def message_status(self, status_hash: bytes, now: int) -> MessageStatus | None:
        """The state of a message by its status token's hash."""

    async def retract(self, status_hash: bytes, now: int, grace: int) -> MessageStatus | None:
        """Delete a pending message by its status token's hash."""

    async def mailbox_bytes(self, org_id: str) -> int:
        """Bytes held in one organisation's mailbox."""

    # --- housekeeping ------------------------------------------------------------------
    async def purge(self, now: int, grace: int) -> PurgeCounts:
        """Delete everything that has expired, then checkpoint so no old page survives."""

    async def stats(self, now: int) -> StoreStats:
        """Aggregate counts."""
