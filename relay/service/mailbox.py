"""Mailboxes: storing sends, listing and acknowledging envelopes, status and retraction.

Theory of operation
-------------------
A send carries one envelope per recipient organisation, each sealed to that
organisation's *current* epoch. For each envelope the relay records the staff of the
recipient organisation enrolled at that moment; the envelope is deleted when all of them
have acknowledged it (a colleague removed meanwhile no longer counts), when its TTL
passes, or when the sender retracts it. Nothing stored names the sender.

The answer gives each envelope an id and a status token. Both are derived from the
relay's token key and the client's idempotency key (``hashing.derive``), and the relay
keeps only hashes of the status token and the idempotency key, so a retried send gets the
very same answer while the disk holds nothing that could ask for the status.

Status answers: ``pending`` (k of n acknowledged so far), ``delivered``, ``retracted``,
``expired``. After deletion a tombstone with the final state and k of n stays until the
original expiry plus ``status_grace``, then that goes too.
"""

from __future__ import annotations

import json
from typing import Any

from protocol import b64encode
from protocol.encoding import b64decode, check_org_id, get_int
from protocol.errors import EncodingError, LogError
from protocol.sealedbox import OVERHEAD

from ..config import LimitsConfig
from ..errors import (
    DuplicateRecipient,
    EnvelopeTooLarge,
    InvalidRequest,
    NotFound,
    RecipientUnknown,
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
from ..wire import json_object, stored_message
from .directory import Directory
from .hashing import IDEMPOTENCY, MESSAGE_ID, REQUEST, STATUS, STATUS_TOKEN, derive, secret_hash
from .sessions import Session
from .ttl import checked_ttl

IDEMPOTENCY_KEY_SIZE = 16
MESSAGE_ID_SIZE = 16
STATUS_TOKEN_SIZE = 32
SEND_FIELDS = frozenset({"idempotency_key", "ttl", "envelopes"})
ENVELOPE_FIELDS = frozenset({"to_org", "epoch", "sealed"})


def _invalid(exc: EncodingError) -> InvalidRequest:
    return InvalidRequest(exc.message, exc.code)


class Mailbox:
    """Domain operations on messages."""

    def __init__(self, store: MailboxStore, directory: Directory, hub: EventHub,
                 limits: LimitsConfig, token_key: bytes) -> None:
        self.store = store
        self.directory = directory
        self.hub = hub
        self.limits = limits
        self._token_key = token_key

    # --- sending -----------------------------------------------------------------------

    async def send(self, session: Session, body: Any, now: int) -> list[dict[str, Any]]:
        """Store a batch of envelopes; the answer lists id, status token and expiry of each."""
        json_object(body, {"idempotency_key", "envelopes"}, SEND_FIELDS)
        try:
            key = b64decode(body["idempotency_key"], size=IDEMPOTENCY_KEY_SIZE,
                            field="idempotency_key")
        except EncodingError as exc:
            raise _invalid(exc) from exc
        ttl = checked_ttl(body.get("ttl", self.limits.default_ttl), self.limits.max_ttl)
        envelopes = self._envelopes(body["envelopes"])
        request_hash = _request_hash(ttl, envelopes)
        messages = []
        for index, (to_org, epoch, sealed) in enumerate(envelopes):
            recipients = tuple(sorted(
                s.staff_id for s in self.directory.keylog.orgs[to_org].active_staff()))
            messages.append(NewMessage(
                id=derive(self._token_key, MESSAGE_ID, key, index, MESSAGE_ID_SIZE),
                to_org=to_org,
                epoch=epoch,
                sealed=sealed,
                status_hash=secret_hash(STATUS, self._status_token(key, index)),
                recipients=recipients,
            ))
        result = await self.store.store_send(SendBatch(
            key_hash=secret_hash(IDEMPOTENCY, key),
            request_hash=request_hash,
            received=now,
            expires=now + ttl,
            messages=tuple(messages),
            org_quota=self.limits.org_storage_bytes,
            removed=self.directory.removed_staff,
            revoked=self.directory.revoked_orgs,
        ))
        if isinstance(result, ReplayedSend):
            expires = result.expires
        else:
            expires = now + ttl
            for stored in result:
                self._publish(stored)
        return [
            {"id": b64encode(m.id), "to_org": m.to_org,
             "status_token": b64encode(self._status_token(key, i)), "expires": expires}
            for i, m in enumerate(messages)
        ]

    def _status_token(self, key: bytes, index: int) -> bytes:
        return derive(self._token_key, STATUS_TOKEN, key, index, STATUS_TOKEN_SIZE)

    def _envelopes(self, raw: Any) -> list[tuple[str, int, bytes]]:
        if not isinstance(raw, list) or not raw:
            raise InvalidRequest("envelopes must be a non-empty list")
        if len(raw) > self.limits.max_envelopes_per_send:
            raise TooManyEnvelopes(
                f"A send may carry at most {self.limits.max_envelopes_per_send} envelopes.")
        out: list[tuple[str, int, bytes]] = []
        seen: set[str] = set()
        total = 0
        for entry in raw:
            json_object(entry, ENVELOPE_FIELDS, what="envelope ")
            try:
                to_org = check_org_id(entry["to_org"])
                epoch = get_int(entry, "epoch", minimum=1)
                sealed = b64decode(entry["sealed"], field="sealed")
            except EncodingError as exc:
                raise _invalid(exc) from exc
            if to_org in seen:
                raise DuplicateRecipient(f"{to_org} is named twice; send one envelope per org.")
            seen.add(to_org)
            if len(sealed) > self.limits.max_envelope_bytes:
                raise EnvelopeTooLarge(
                    f"An envelope may be at most {self.limits.max_envelope_bytes} bytes.")
            if len(sealed) < OVERHEAD:
                raise InvalidRequest("sealed is shorter than a sealed box")
            total += len(sealed)
            if total > self.limits.max_send_bytes:
                raise EnvelopeTooLarge(
                    f"A send may carry at most {self.limits.max_send_bytes} bytes in all.")
            try:
                current = self.directory.keylog.current_epoch(to_org)
            except LogError as exc:
                raise RecipientUnknown(
                    f"{to_org} is not an admitted organisation with a published key.") from exc
            if epoch != current.number:
                raise StaleEpoch(
                    f"{to_org} now uses epoch {current.number}, not {epoch}: sync and seal again.")
            out.append((to_org, epoch, sealed))
        return out

    def _publish(self, message: StoredMessage) -> None:
        if not self.hub.has_subscribers(message.to_org):
            return
        text = json.dumps({"type": "message", "message": stored_message(message)},
                          separators=(",", ":"))
        self.hub.publish(message.to_org, message.cursor, text)

    # --- receiving ---------------------------------------------------------------------

    async def inbox(
        self, session: Session, after: int, limit: int, now: int
    ) -> list[StoredMessage]:
        """Envelopes for the caller's organisation after ``after``."""
        return await self.store.list_messages(session.org_id, after, limit, now)

    async def get(self, session: Session, message_id: str, now: int) -> StoredMessage:
        """One envelope of the caller's organisation."""
        found = await self.store.get_message(session.org_id, _message_id(message_id), now)
        if found is None:
            raise NotFound()
        return found

    async def acknowledge(self, session: Session, message_id: str, now: int) -> bool:
        """The caller has the envelope; True if that was the last acknowledgement needed."""
        deleted = await self.store.acknowledge(session.org_id, _message_id(message_id),
                                               session.staff_id, now, self.limits.status_grace)
        if deleted is None:
            raise NotFound()
        return deleted

    # --- the sender's token ------------------------------------------------------------

    async def status(self, body: Any, now: int) -> MessageStatus:
        """State of a message, for the holder of its status token only."""
        found = await self.store.message_status(self._token_hash(body), now)
        if found is None:
            raise NotFound()
        return found

    async def retract(self, body: Any, now: int) -> MessageStatus:
        """Delete a message that has not been fully delivered yet."""
        found = await self.store.retract(self._token_hash(body), now, self.limits.status_grace)
        if found is None:
            raise NotFound()
        return found

    def _token_hash(self, body: Any) -> bytes:
        if not isinstance(body, dict) or set(body) != {"token"}:
            raise InvalidRequest("The body must be {\"token\": <status token>} and nothing else.")
        try:
            token = b64decode(body["token"], size=STATUS_TOKEN_SIZE, field="token")
        except EncodingError as exc:
            raise _invalid(exc) from exc
        return secret_hash(STATUS, token)


def _request_hash(ttl: int, envelopes: list[tuple[str, int, bytes]]) -> bytes:
    """What a retry with the same idempotency key must repeat exactly (length-prefixed)."""
    parts = [ttl.to_bytes(8, "big")]
    for to_org, epoch, sealed in envelopes:
        org = to_org.encode()
        parts += [len(org).to_bytes(2, "big"), org, epoch.to_bytes(8, "big"),
                  len(sealed).to_bytes(4, "big"), sealed]
    return secret_hash(REQUEST, b"".join(parts))


def _message_id(text: str) -> bytes:
    """A message id from a URL; anything malformed is simply "not found"."""
    try:
        return b64decode(text, size=MESSAGE_ID_SIZE, field="id")
    except EncodingError:
        raise NotFound() from None
