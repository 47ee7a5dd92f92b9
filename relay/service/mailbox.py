"""Mailboxes: storing sends, listing and acknowledging envelopes, status and retraction.

Theory of operation
-------------------
A send carries one envelope per recipient organisation, each sealed to that
organisation's *current* epoch. For each envelope the relay records the staff of the
recipient organisation enrolled at that moment; the envelope is deleted when all of them
have acknowledged it (a colleague removed meanwhile no longer counts), when its TTL
passes, or when the sender retracts it. Nothing stored names the sender.

The answer gives each envelope an id and a status token. Both are the second the send
arrived followed by bytes derived from the relay's token key and the client's idempotency
key (``hashing.arrival_ordered``: ids and status keys then reach the store in arrival
order, cheap to index), and the relay keeps only hashes of the status token and the
idempotency key, so a retried send gets the very same answer while the disk holds nothing
that could ask for the status.

Status answers: ``pending`` (k of n acknowledged so far), ``delivered``, ``retracted``,
``expired``. After deletion a tombstone with the final state and k of n stays until the
original expiry plus ``status_grace``, then that goes too.

Read reports (SPEC.md section 21): a recipient's first acknowledgement, from any device,
writes a receipt naming them and the message; a read report may only name messages with a
receipt of the caller, and marks it read once. Receipts outlive the envelope until the
message's expiry, when the purge counts their readers onto the tombstone and deletes them.
"""

from __future__ import annotations

from ..config import LimitsConfig
from ..errors import (
    DuplicateRecipient,
    EnvelopeTooLarge,
    NotFound,
    ReadReportsOff,
    StaleEpoch,
    TooManyEnvelopes,
)
from ..push import EventHub
from ..store import (
    MessageStatus,
    NewMessage,
    ReplayedSend,
    SendBatch,
    StoredMessage,
)
from ..store.interface import MailboxStore
from .directory import Directory
from .domain import MESSAGE_ID_SIZE, STATUS_TOKEN_SIZE, Envelope, SendRequest, SentMessage
from .hashing import (
    IDEMPOTENCY,
    MESSAGE_ID,
    REQUEST,
    STATUS,
    STATUS_TOKEN,
    arrival_ordered,
    secret_hash,
    status_key,
)
from .recipients import DeviceActivity, require_recipient
from .sessions import Session
from .ttl import checked_ttl

RECIPIENTS_CACHE = 4096
"""Organisations whose recipients are remembered at once (then the memory starts afresh)."""


class Mailbox:
    """Domain operations on messages."""

    def __init__(self, store: MailboxStore, directory: Directory, hub: EventHub,
                 limits: LimitsConfig, token_key: bytes,
                 activity: DeviceActivity | None = None) -> None:
        self.store = store
        self.activity = activity
        self.directory = directory
        self.hub = hub
        self.limits = limits
        self._token_key = token_key
        self._recipients_of: dict[str, tuple[object, int, tuple[str, ...],
                                             tuple[tuple[str, str], ...]]] = {}

    # --- sending -----------------------------------------------------------------------

    async def send(self, session: Session, request: SendRequest, now: int) -> list[SentMessage]:
        """Store a batch of envelopes; the answer lists id, status token and expiry of each."""
        ttl = checked_ttl(request.ttl, self.limits.default_ttl, self.limits.max_ttl)
        self._check_envelopes(request.envelopes)
        key = request.idempotency_key
        messages = []
        ids, status_tokens = self._names(key, len(request.envelopes), now)
        for index, envelope in enumerate(request.envelopes):
            recipients, devices = self._recipients(envelope.to_org)
            activity, keylog = self.activity, self.directory.keylog
            # not a device abandoned for longer than max_ttl (the store is asked only when
            # memory finds one quiet: not on the path of almost every send)
            if activity is not None and not activity.all_active(devices, keylog, now):
                devices = await activity.counted(devices, keylog, now)
            messages.append(NewMessage(
                id=ids[index],
                to_org=envelope.to_org,
                epoch=envelope.epoch,
                sealed=envelope.sealed,
                status_hash=status_key(status_tokens[index]),
                recipients=recipients,
                devices=devices,
            ))
        result = await self.store.store_send(SendBatch(
            key_hash=secret_hash(IDEMPOTENCY, key),
            request_hash=_request_hash(ttl, request.envelopes),
            received=now,
            expires=now + ttl,
            messages=tuple(messages),
            org_quota=self.limits.org_storage_bytes,
            removed=self.directory.removed_staff,
            removed_devices=self.directory.removed_devices,
            revoked=self.directory.revoked_orgs,
        ))
        if isinstance(result, ReplayedSend):
            expires = result.expires
            if result.received != now:  # the first send's names begin with its second
                ids, status_tokens = self._names(key, len(messages), result.received)
        else:
            expires = now + ttl
            for stored in result:
                self.hub.publish(stored)
        return [SentMessage(ids[i], m.to_org, status_tokens[i], expires)
                for i, m in enumerate(messages)]

    def _recipients(self, org_id: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """The staff of ``org_id`` who must acknowledge an envelope, and their devices.

        Remembered until the key log changes (staff and devices only change by a record),
        as every send to the organisation asks the same until then.
        """
        keylog = self.directory.keylog
        found = self._recipients_of.get(org_id)
        if found is not None and found[0] is keylog and found[1] == keylog.size:
            return found[2], found[3]
        staff = keylog.orgs[org_id].active_staff()
        recipients = tuple(sorted(s.staff_id for s in staff))
        # every current device must fetch it before it goes (SPEC.md section 6.6)
        devices = tuple(sorted((s.staff_id, d.device_id)
                               for s in staff for d in s.current_devices()))
        if len(self._recipients_of) >= RECIPIENTS_CACHE:
            self._recipients_of.clear()
        self._recipients_of[org_id] = (keylog, keylog.size, recipients, devices)
        return recipients, devices

    def _names(self, key: bytes, count: int, received: int
               ) -> tuple[list[bytes], list[bytes]]:
        """The ids and status tokens of a send's envelopes (hashing.arrival_ordered)."""
        token_key = self._token_key
        return ([arrival_ordered(token_key, MESSAGE_ID, key, i, MESSAGE_ID_SIZE, received)
                 for i in range(count)],
                [arrival_ordered(token_key, STATUS_TOKEN, key, i, STATUS_TOKEN_SIZE, received)
                 for i in range(count)])

    def _check_envelopes(self, envelopes: tuple[Envelope, ...]) -> None:
        """The relay's limits, and each recipient's current epoch."""
        limits = self.limits
        if len(envelopes) > limits.max_envelopes_per_send:
            raise TooManyEnvelopes(
                f"A send may carry at most {limits.max_envelopes_per_send} envelopes.")
        seen: set[str] = set()
        total = 0
        for envelope in envelopes:
            to_org = envelope.to_org
            if to_org in seen:
                raise DuplicateRecipient(f"{to_org} is named twice; send one envelope per org.")
            seen.add(to_org)
            if len(envelope.sealed) > limits.max_envelope_bytes:
                raise EnvelopeTooLarge(
                    f"An envelope may be at most {limits.max_envelope_bytes} bytes.")
            total += len(envelope.sealed)
            if total > limits.max_send_bytes:
                raise EnvelopeTooLarge(
                    f"A send may carry at most {limits.max_send_bytes} bytes in all.")
            current = require_recipient(self.directory.keylog, to_org)
            if envelope.epoch != current.number:
                raise StaleEpoch(f"{to_org} now uses epoch {current.number}, not "
                                 f"{envelope.epoch}: sync and seal again.")

    # --- receiving ---------------------------------------------------------------------

    async def inbox(
        self, session: Session, after: int, limit: int, now: int
    ) -> list[StoredMessage]:
        """Envelopes for the caller's organisation after ``after``."""
        return await self.store.list_messages(session.org_id, after, limit, now)

    async def get(self, session: Session, message_id: bytes, now: int) -> StoredMessage:
        """One envelope of the caller's organisation."""
        found = await self.store.get_message(session.org_id, message_id, now)
        if found is None:
            raise NotFound()
        return found

    async def acknowledge(self, session: Session, message_id: bytes, now: int) -> bool:
        """The caller has the envelope; True if that was the last acknowledgement needed."""
        deleted = await self.store.acknowledge(session.org_id, message_id, session.staff_id,
                                               now, self.limits.status_grace, session.device)
        if deleted is None:
            raise NotFound()
        return deleted

    async def report_read(self, session: Session, message_ids: tuple[bytes, ...],
                          now: int) -> int:
        """The caller's person opened these messages (SPEC.md section 21); how many are new.

        Only a recipient who fetched a message, from any of their devices, may report it,
        until it expires (also after its envelope was deleted); any other id refuses the
        whole report with ``not_received``. A person counts once, whichever device reports.
        An organisation whose signed settings switch read reports off gets
        ``read_reports_off``: its clients send none, so such a report is not theirs to make.
        """
        org = self.directory.keylog.orgs.get(session.org_id)
        if org is not None and org.settings is not None and not org.settings.read_reports:
            raise ReadReportsOff()
        return await self.store.report_read(session.staff_id, message_ids, now)

    # --- the sender's token ------------------------------------------------------------

    async def status(self, token: bytes, now: int) -> MessageStatus:
        """State of a message, for the holder of its status token only."""
        found = await self.store.message_status(status_key(token), now)
        if found is None:  # a token issued before status keys began with the second
            found = await self.store.message_status(secret_hash(STATUS, token), now)
        if found is None:
            raise NotFound()
        return found

    async def retract(self, token: bytes, now: int) -> MessageStatus:
        """Delete a message that has not been fully delivered yet."""
        grace = self.limits.status_grace
        found = await self.store.retract(status_key(token), now, grace)
        if found is None:  # a token issued before status keys began with the second
            found = await self.store.retract(secret_hash(STATUS, token), now, grace)
        if found is None:
            raise NotFound()
        return found


def _request_hash(ttl: int, envelopes: tuple[Envelope, ...]) -> bytes:
    """What a retry with the same idempotency key must repeat exactly (length-prefixed)."""
    parts = [ttl.to_bytes(8, "big")]
    for envelope in envelopes:
        org = envelope.to_org.encode()
        sealed = envelope.sealed
        parts += [len(org).to_bytes(2, "big"), org, envelope.epoch.to_bytes(8, "big"),
                  len(sealed).to_bytes(4, "big"), sealed]
    return secret_hash(REQUEST, b"".join(parts))
