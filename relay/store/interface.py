"""The storage interface the relay service talks to, and the contract every store keeps.

The service (``relay.service``) sees only ``RelayStore``; ``sqlite.py`` implements it, and
a second implementation (PostgreSQL) must be possible by implementing these methods alone,
without touching handlers or services. ``create_store`` in ``relay.store`` picks one.

The contract
------------
**Atomic and durable.** Each method is one domain-level transaction: it happens
completely or raises and changes nothing. A method that writes returns only after its
transaction has committed durably (on disk, ``fsync``-ed): the relay answers 2xx right
after, so *a 2xx means committed*, and a relay killed a moment later still has it.

**Refusals.** A refusal is a ``relay.errors.RelayError`` raised by the method (quota
full, idempotency conflict, recipient revoked, not retractable); it leaves nothing
written. Any other exception is a failure of the store; it too leaves nothing of that
call written, and must not lose or undo the writes of *other* concurrent calls (a store
that batches several callers into one transaction must isolate them).

**Concurrency.** One relay process owns a SQLite store and calls it from many coroutines
at once; a PostgreSQL store is shared by several processes (``serve --workers``, several
hosts), and every rule below holds across them too (``postgres.py`` says how). Every
method must be correct under any interleaving with any other. The key log is
the exception: the service serialises ``append_log`` (it validates against its in-memory
copy under a lock), so appends never overlap each other, but they do overlap everything
else. The rules that matter under concurrency are spelled out on each method; in short:

* ``store_send``: one idempotency key stores at most once, even for two calls in flight
  together; quotas hold exactly (check and insert are one step); cursors become visible
  in increasing order (a reader that saw cursor *c* never later finds a new one below *c*).
* ``acknowledge`` / ``acknowledge_drop``: k-of-n deletion; of n concurrent last
  acknowledgements exactly one returns True, and the row is deleted exactly once.
* ``take_challenge``: a challenge is single-use; of concurrent takes at most one gets it.
* ``append_log`` with a removal or revocation racing ``store_send``/``create_drop``: the
  batch's ``removed``/``revoked`` containers are live sets the service updates *before*
  the log write starts, so a write must read them when it runs (inside its transaction);
  a send committed before the removal has its deliveries cleaned up by the removal's own
  transaction. Either way no removed colleague is left as a recipient and nothing is
  stored for a revoked organisation.
* ``retract`` racing the last ``acknowledge``: exactly one of them wins (the message is
  then either retracted or delivered, and the tombstone says which).

**Time** is always a parameter (``now``, integer seconds UTC); a store never reads a
clock. Rows whose ``expires <= now`` are treated as gone by every read, even before
``purge`` deletes them.

**Privacy.** A store keeps only what the rows here carry: hashes of tokens, sealed bytes
it cannot open, and no sender of anything. ``purge`` deletes expired rows so their bytes
do not survive (SQLite: ``secure_delete`` and a WAL truncation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from .rows import (
    DropRow,
    GrantRow,
    LinkMailbox,
    LogAppend,
    MessageStatus,
    NewDrop,
    PurgeCounts,
    ReplayedSend,
    SendBatch,
    SessionRow,
    StoredMessage,
    StoreStats,
)
from .snapshot import BackupFacts

__all__ = [
    "DeviceSeenStore",
    "DropStore",
    "GrantStore",
    "KeyLogStore",
    "LinkStore",
    "LogIndexTaken",
    "LoginStore",
    "MailboxStore",
    "RelayStore",
]


class LogIndexTaken(Exception):
    """``append_log`` at an index that is already taken: on a store several relay processes
    share, another process appended first; the caller catches up and checks again."""


class KeyLogStore(Protocol):
    """The key log's entries and the consequences of each."""

    async def log_records(self, after: int = 0) -> list[tuple[bytes, bytes]]:
        """Every (record bytes, chain hash) from index ``after`` on, in log order (to rebuild
        the key log at start-up, or to catch up with another process's appends)."""

    async def append_log(self, append: LogAppend) -> None:
        """Write one log entry at ``append.index`` together with its consequences.

        In the same transaction: ``device_removed`` ``(staff_id, device)`` deletes that
        device's sessions, grants and pending device deliveries (deleting messages thereby
        fully delivered); ``staff_removed`` deletes that person's sessions,
        challenges and grants, takes them out of every message's pending deliveries (each
        such message's ``recipients`` drops by one) and deletes messages that are thereby
        fully delivered (tombstone ``delivered``); ``org_revoked`` deletes the sessions,
        challenges and grants of everyone in it (staff ids ``<org>/...``), its whole
        mailbox (tombstones ``expired``) and its members' receipts (their readers counted
        on the tombstones); ``epoch_of``/``epoch`` sets the expiry of that
        org's older grants that have none to ``retire_grants_at``. Tombstones live until
        the message's expiry plus ``status_grace``; ``org_admitted`` lifts a revocation.
        An index that is taken raises ``LogIndexTaken`` and writes nothing.
        """


class LoginStore(Protocol):
    """Login challenges and sessions, by the hashes of their secrets."""

    async def add_challenge(self, nonce_hash: bytes, staff_id: str, expires: int) -> None:
        """Remember a login challenge."""

    async def take_challenge(self, nonce_hash: bytes) -> tuple[str, int] | None:
        """Delete and return (staff_id, expires) of a challenge; None if unknown or used.

        Single use: delete-and-return is one step, so of any number of concurrent takes of
        one challenge at most one gets it. An expired challenge is still returned (the
        service answers "expired", which is more helpful than "unknown").
        """

    async def add_session(self, session: SessionRow) -> None:
        """Store a new session."""

    async def delete_session(self, token_hash: bytes) -> None:
        """End one session (nothing happens for an unknown one)."""

    async def live_sessions(self, now: int) -> list[SessionRow]:
        """Every session that has not expired (loaded at start-up)."""

    async def get_session(self, token_hash: bytes, now: int) -> SessionRow | None:
        """One live session (one another relay process on a shared store opened)."""


class GrantStore(Protocol):
    """Epoch grants, sealed to one staff member each."""

    async def put_grants(self, org_id: str, epoch: int,
                         grants: list[tuple[str, str, bytes]],
                         expires: int | None = None) -> int:
        """Store (or replace) ``(staff_id, device, sealed)`` grants of one epoch; returns how many.

        ``expires`` is None for the current epoch (set when a newer one is appended) and
        the deletion time for a retired one; a replaced grant keeps an expiry it had.
        """

    async def grants_for(self, staff_id: str, now: int, device: str = "") -> list[GrantRow]:
        """The unexpired grants sealed to one device (or stored for its member without a
        device, before devices existed), by org and epoch."""


class MailboxStore(Protocol):
    """Envelopes, their pending deliveries, status tombstones and idempotency records."""

    async def store_send(self, batch: SendBatch) -> list[StoredMessage] | ReplayedSend:
        """Store a send's envelopes, or recognise a retry by its idempotency key.

        In one step, in this order: a known ``key_hash`` with the same ``request_hash``
        answers ``ReplayedSend`` (the first send's times) and writes nothing; with another
        ``request_hash`` it raises ``IdempotencyConflict``. A recipient org in
        ``batch.revoked`` raises ``RecipientUnknown``. An org whose mailbox bytes plus this
        send's would pass ``org_quota`` raises ``QuotaExceeded``. Otherwise every envelope
        is stored with a new cursor (strictly increasing across the store, and visible to
        readers in increasing order), one pending delivery per recipient not in
        ``batch.removed``, one pending device delivery per entry of ``message.devices``
        whose staff member is not in ``batch.removed`` and that is not in
        ``batch.removed_devices``, and the idempotency record until ``expires``. Two concurrent
        calls with one key store once; two concurrent sends never both pass a quota that
        only one fits.
        """

    async def list_messages(
        self, org_id: str, after: int, limit: int, now: int
    ) -> list[StoredMessage]:
        """Live envelopes of one organisation with cursor > after, oldest first."""

    async def get_message(self, org_id: str, message_id: bytes, now: int) -> StoredMessage | None:
        """One live envelope of one organisation (None for "no such" and "not yours" alike)."""

    async def acknowledge(
        self, org_id: str, message_id: bytes, staff_id: str, now: int, grace: int,
        device: str = ""
    ) -> bool | None:
        """Record one device's acknowledgement; True if that deleted the message, None if
        not found.

        The first acknowledgement from any device of a recipient counts that person (k of
        n); acknowledging twice counts once. When every recipient person has acknowledged
        and every pending device has, the message is deleted and a ``delivered``
        tombstone (until expiry + ``grace``) is written in the same step; of concurrent
        last acknowledgements exactly one returns True. A staff member or device that was
        no recipient may acknowledge (False, nothing counted). A person's first
        acknowledgement also writes their receipt (see ``report_read``).
        """

    async def message_status(self, status_hash: bytes, now: int) -> MessageStatus | None:
        """The state of a message by its status token's hash.

        ``pending`` (or ``expired`` once past its expiry) while the message exists, then
        its tombstone's state until the tombstone expires; None after that or if unknown.
        ``read`` counts the receipts reported read, plus those already moved onto the
        tombstone when the receipts went.
        """

    async def report_read(self, staff_id: str, message_ids: tuple[bytes, ...], now: int) -> int:
        """Record that ``staff_id`` opened these messages; returns how many were new.

        Each id must have a receipt of ``staff_id`` that has not expired: the first
        acknowledgement of a recipient, from any device, writes one (until the message's
        expiry, also after the envelope is deleted). Otherwise ``NotReceived`` naming the
        first such id is raised and nothing changes. Reporting a message again counts it
        once; all ids of one call are recorded in one step.
        """

    async def retract(self, status_hash: bytes, now: int, grace: int) -> MessageStatus | None:
        """Delete a pending message by its status token's hash.

        A pending message is deleted with a ``retracted`` tombstone in one step; retracting
        it again answers the same. An expired message, or a tombstone in another state,
        raises ``NotRetractable``; unknown is None. Racing the last acknowledgement,
        exactly one of the two wins.
        """


class DropStore(Protocol):
    """File drop rows (the bytes are in ``relay.blobs``, never in the store)."""

    async def create_drop(self, drop: NewDrop) -> None:
        """Insert a drop and its recipient orgs.

        Refuses with ``RecipientUnknown`` if a recipient is in ``drop.revoked`` (read when
        the write runs) and with ``DropQuotaExceeded`` if the declared sizes of every drop
        (open or complete) to one recipient org plus this one would pass ``org_quota``;
        check and insert are one step, so concurrent creates never exceed the quota.
        """

    async def get_drop(self, drop_id: bytes) -> DropRow | None:
        """One drop, whatever its state; None if there is none (the service checks life)."""

    async def touch_drop(self, drop_id: bytes, idle_expires: int) -> None:
        """Bytes arrived: push an open upload's idle deadline out (never past its TTL)."""

    async def complete_drop(self, drop_id: bytes, recipients: tuple[str, ...],
                            devices: tuple[tuple[str, str], ...] = ()) -> bool:
        """Mark a drop complete with the staff who must acknowledge it, and the
        ``(staff_id, device)`` of each of their devices that must fetch it; False if gone.

        Only the first completion records recipients; completing a complete drop again is
        True and changes nothing.
        """

    async def delete_drop(self, drop_id: bytes) -> bool:
        """Delete a drop and its deliveries whatever its state (its uploader withdrew it)."""

    async def drop_pending(self, drop_id: bytes) -> list[str]:
        """Staff who have not acknowledged a complete drop yet."""

    async def acknowledge_drop(self, drop_id: bytes, staff_id: str,
                               gone: tuple[str, ...], device: str = "") -> bool:
        """Record the acknowledgement of ``staff_id``'s ``device`` and forget ``gone``
        (removed staff). The drop goes when every person and every listed device has it.

        Returns True if nobody is left waiting: the row is then deleted in the same step
        (the caller wipes the blob). Of concurrent last acknowledgements exactly one
        returns True.
        """

    async def drop_deliveries(self) -> list[tuple[bytes, str]]:
        """Every (drop, staff) delivery still outstanding (for the removed-staff sweep)."""

    async def forget_drop_deliveries(self, gone: list[tuple[bytes, str]]) -> list[bytes]:
        """Drop deliveries to staff who can no longer fetch; the drops deleted as delivered."""

    async def delete_expired_drops(self, now: int) -> list[bytes]:
        """Delete drops past their TTL and open uploads past their idle deadline; their ids."""

    async def drop_ids(self) -> set[bytes]:
        """Every drop id with a row (for the orphaned-file sweep)."""


class LinkStore(Protocol):
    """Device-linking mailboxes (SPEC.md section 6.9): opaque messages of two sides."""

    async def open_link(self, nameplate: str, staff_id: str, device: str, expires: int,
                        now: int, max_open: int) -> bool:
        """Open an empty mailbox under ``nameplate`` for ``staff_id``'s ``device``.

        False (nothing written) if a live mailbox has that nameplate; an expired one is
        replaced. Raises ``TooManyLinks`` if ``staff_id`` already has ``max_open`` live
        mailboxes; counting and inserting are one step, across processes too.
        """

    async def post_link(self, nameplate: str, side: str, message: bytes, max_messages: int,
                        now: int) -> int | None:
        """Append one message of ``side`` (``a`` or ``b``); returns how many that side has.

        None if there is no live mailbox; ``LinkSideDone`` if the side already posted
        ``max_messages``. Of concurrent posts each gets its own position, none beyond the
        limit.
        """

    async def read_link(self, nameplate: str, now: int) -> LinkMailbox | None:
        """A live mailbox and every message of both sides, in order (None if none)."""

    async def close_link(self, nameplate: str) -> bool:
        """Delete a mailbox and its messages; False if there was none."""


class DeviceSeenStore(Protocol):
    """When each device last logged in, to the day (so long-silent devices stop counting)."""

    async def mark_device_seen(self, staff_id: str, device: str, day: int,
                               forget_before: int) -> None:
        """Record that ``device`` logged in on ``day`` (never moving a later day back), and
        delete every row whose day is before ``forget_before`` except the one with the
        empty staff id (the day the relay began recording logins)."""

    async def devices_seen(self, staff_ids: list[str]) -> dict[tuple[str, str], int]:
        """The recorded day of every device of these staff members, by (staff_id, device)."""


class RelayStore(KeyLogStore, LoginStore, GrantStore, MailboxStore, DropStore, LinkStore,
                 DeviceSeenStore, Protocol):
    """Durable state of one relay: everything above, plus opening, purging and counting."""

    async def open(self) -> None:
        """Connect, apply pending schema upgrades (``schema_version``), get ready to write."""

    async def close(self) -> None:
        """Finish queued writes and disconnect."""

    async def purge(self, now: int, grace: int) -> PurgeCounts:
        """Delete every expired row except drops (``delete_expired_drops`` does those).

        Messages past expiry leave an ``expired`` tombstone until expiry + ``grace``;
        receipts past the message's expiry go, their count of readers added to the
        tombstone first; tombstones, idempotency records, challenges, sessions, retired
        grants and device-linking mailboxes past their expiry go. Deleted bytes must not
        survive in the store's files.
        """

    async def stats(self, now: int) -> StoreStats:
        """Aggregate counts only: nothing per organisation or per person."""

    async def backup_to(self, target: Path,
                        keep_drop: Callable[[bytes], Awaitable[bool]]) -> BackupFacts:
        """Write the state of one instant to the new file ``target`` while serving goes on.

        ``keep_drop(id)`` is awaited for every drop complete in that state (it copies the
        drop's file); a drop it answers False for was deleted meanwhile and is left out of
        the copy. A store kept in a database server raises ``BackupUnsupported`` naming
        its own tool (PostgreSQL: ``pg_dump``). Used by ``relay backup`` (``relay.backup``).
        """
