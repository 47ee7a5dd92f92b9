"""The relay's JSON at the edge (docs/http-api.md): request bodies in, answers out.

Every request body is parsed here, once, into the typed values of
``relay.service.domain``; a body of the wrong shape is refused with a specific 4xx
(``InvalidRequest``) before any service runs. Every answer, and every event pushed over
``/v1/events``, is built here from the service's domain values, so the service never
sees or produces JSON.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import msgspec

from protocol import Head, LogEntry, b64encode
from protocol.auth import NONCE_SIZE
from protocol.encoding import b64decode, check_fingerprint, check_org_id, check_staff_id, get_int
from protocol.errors import EncodingError
from protocol.keys import SIG_SIZE
from protocol.link import NAMEPLATE_DIGITS
from protocol.message import MAX_READ_REPORT
from protocol.sealedbox import OVERHEAD
from protocol.stream import ciphertext_size

from .errors import InvalidRequest, NotFound
from .service.domain import (
    DROP_ID_SIZE,
    IDEMPOTENCY_KEY_SIZE,
    MAX_GRANT_BYTES,
    MAX_GRANTS,
    MESSAGE_ID_SIZE,
    MIN_GRANT_BYTES,
    STATUS_TOKEN_SIZE,
    DropCreate,
    Envelope,
    GrantUpload,
    LoginRequest,
    SealedGrant,
    SendRequest,
    SentMessage,
)
from .store import GrantRow, MessageStatus, StoredMessage

__all__ = [
    "b64encode",
    "decimal",
    "drop_create",
    "drop_id",
    "encode",
    "grant",
    "grant_upload",
    "head",
    "json_object",
    "link_message",
    "link_path",
    "log_entry",
    "login_request",
    "message_event",
    "message_id",
    "read_report",
    "send_request",
    "sent_message",
    "staff_id_field",
    "status",
    "status_token",
    "stored_message",
]

MIN_DROP_SIZE = ciphertext_size(0)
"""The smallest ciphertext a file stream can have (an empty file)."""
SEND_FIELDS = frozenset({"idempotency_key", "ttl", "envelopes"})
ENVELOPE_FIELDS = frozenset({"to_org", "epoch", "sealed"})
DROP_FIELDS = frozenset({"size", "to", "ttl"})


# --- requests ------------------------------------------------------------------------------


def json_object(value: Any, required: set[str] | frozenset[str],
                optional: frozenset[str] = frozenset(), what: str = "") -> dict[str, Any]:
    """Require a JSON object with exactly these fields (``what``: e.g. "envelope " for parts)."""
    if not isinstance(value, dict):
        raise InvalidRequest(f"each {what}must be a JSON object" if what
                             else "The body must be a JSON object.")
    unknown = set(value) - required - optional
    if unknown:
        raise InvalidRequest(f"unknown {what}field(s): {', '.join(sorted(unknown))}",
                             "unknown_field")
    missing = required - set(value)
    if missing:
        raise InvalidRequest(f"{what}field(s) missing: {', '.join(sorted(missing))}",
                             "missing_field")
    return value


def send_request(body: Any) -> SendRequest:
    """``POST /v1/messages``."""
    json_object(body, {"idempotency_key", "envelopes"}, SEND_FIELDS)
    # try/except rather than ``_invalid()`` on this path: it runs for every envelope of
    # every send, and a generator-based context manager costs more than the checks
    try:
        key = b64decode(body["idempotency_key"], size=IDEMPOTENCY_KEY_SIZE,
                        field="idempotency_key")
    except EncodingError as exc:
        raise InvalidRequest(exc.message, exc.code) from exc
    raw = body["envelopes"]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("envelopes must be a non-empty list")
    return SendRequest(idempotency_key=key, envelopes=tuple(_envelope(e) for e in raw),
                       ttl=_ttl(body))


def _envelope(entry: Any) -> Envelope:
    json_object(entry, ENVELOPE_FIELDS, what="envelope ")
    try:
        to_org = check_org_id(entry["to_org"])
        epoch = get_int(entry, "epoch", minimum=1)
        sealed = b64decode(entry["sealed"], field="sealed")
    except EncodingError as exc:
        raise InvalidRequest(exc.message, exc.code) from exc
    if len(sealed) < OVERHEAD:
        raise InvalidRequest("sealed is shorter than a sealed box")
    return Envelope(to_org, epoch, sealed)


def _ttl(body: dict[str, Any]) -> int | None:
    """The ``ttl`` asked for; None if the field is absent (``null`` is no number)."""
    if "ttl" not in body:
        return None
    value = body["ttl"]
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest("ttl must be an integer number of seconds")
    return value


def read_report(body: Any) -> tuple[bytes, ...]:
    """``POST /v1/messages/read``: the ids of the messages the caller opened."""
    json_object(body, {"ids"})
    raw = body["ids"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_READ_REPORT:
        raise InvalidRequest(f"ids must be a list of 1 to {MAX_READ_REPORT} message ids")
    with _invalid():
        ids = tuple(b64decode(value, size=MESSAGE_ID_SIZE, field="ids") for value in raw)
    if len(set(ids)) != len(ids):
        raise InvalidRequest("a message id is named twice in ids")
    return ids


def status_token(body: Any) -> bytes:
    """``POST /v1/status`` and ``/v1/retract``: the status token."""
    if not isinstance(body, dict) or set(body) != {"token"}:
        raise InvalidRequest("The body must be {\"token\": <status token>} and nothing else.")
    with _invalid():
        return b64decode(body["token"], size=STATUS_TOKEN_SIZE, field="token")


def grant_upload(org_text: str, epoch_text: str, body: Any) -> GrantUpload:
    """``PUT /v1/grants/{org_id}/{epoch}`` (a malformed path is "not found")."""
    epoch = decimal(epoch_text, 15)
    if epoch is None:
        raise NotFound()
    try:
        org_id = check_org_id(org_text)
    except EncodingError:
        raise NotFound() from None
    json_object(body, {"grants"})
    raw = body["grants"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_GRANTS:
        raise InvalidRequest(f"grants must be a list of 1 to {MAX_GRANTS} entries")
    return GrantUpload(org_id, epoch, tuple(_grant(entry) for entry in raw))


def _grant(entry: Any) -> SealedGrant:
    if not isinstance(entry, dict) or set(entry) != {"staff_id", "device", "grant"}:
        raise InvalidRequest("each grant must be {\"staff_id\", \"device\", \"grant\"}")
    with _invalid():
        staff_id = check_staff_id(entry["staff_id"])
        device = check_fingerprint(entry["device"], "device")
        sealed = b64decode(entry["grant"], field="grant")
    if not MIN_GRANT_BYTES <= len(sealed) <= MAX_GRANT_BYTES:
        raise InvalidRequest(f"a grant must be {MIN_GRANT_BYTES} to {MAX_GRANT_BYTES} bytes")
    return SealedGrant(staff_id, device, sealed)


def drop_create(body: Any) -> DropCreate:
    """``POST /v1/drops``."""
    json_object(body, {"size", "to"}, DROP_FIELDS)
    size = body["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < MIN_DROP_SIZE:
        raise InvalidRequest(
            f"size must be the ciphertext length in bytes (at least {MIN_DROP_SIZE})")
    to = body["to"]
    if not isinstance(to, list) or not to:
        raise InvalidRequest("to must be a non-empty list of organisation ids")
    with _invalid():
        orgs = tuple(check_org_id(org_id) for org_id in to)
    return DropCreate(size=size, to=orgs, ttl=_ttl(body))


def staff_id_field(body: Any) -> str:
    """``POST /v1/auth/challenge``: the staff id asking."""
    json_object(body, {"staff_id"})
    with _invalid():
        return check_staff_id(body["staff_id"])


def login_request(body: Any) -> LoginRequest:
    """``POST /v1/auth/session``."""
    json_object(body, {"staff_id", "nonce", "signature"})
    with _invalid():
        return LoginRequest(
            staff_id=check_staff_id(body["staff_id"]),
            nonce=b64decode(body["nonce"], size=NONCE_SIZE, field="nonce"),
            signature=b64decode(body["signature"], size=SIG_SIZE, field="signature"))


def decimal(text: str, max_digits: int) -> int | None:
    """``text`` as a non-negative integer if it is 1 to ``max_digits`` ASCII digits, else None.

    Only ASCII: ``str.isdigit`` and ``int`` also take other scripts' digits (``"١٥"`` is 15),
    which no client sends and no header or query of this API allows.
    """
    if not 1 <= len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def message_id(text: str) -> bytes:
    """A message id from a URL; anything malformed is simply "not found"."""
    return _path_id(text, MESSAGE_ID_SIZE)


def drop_id(text: str) -> bytes:
    """A drop id from a URL; anything malformed is simply "not found"."""
    return _path_id(text, DROP_ID_SIZE)


def _path_id(text: str, size: int) -> bytes:
    try:
        return b64decode(text, size=size, field="id")
    except EncodingError:
        raise NotFound() from None


def link_message(body: Any) -> bytes:
    """A device-linking mailbox message: ``{"message": <b64>}`` (SPEC.md section 6.9)."""
    json_object(body, {"message"})
    with _invalid():
        return b64decode(body["message"], field="message")


def link_path(nameplate: str, side: str | None = None) -> tuple[str, str]:
    """A mailbox's nameplate and side from a URL; anything malformed is "not found"."""
    if len(nameplate) != NAMEPLATE_DIGITS or decimal(nameplate, NAMEPLATE_DIGITS) is None:
        raise NotFound()
    if side is not None and side not in ("a", "b"):
        raise NotFound()
    return nameplate, side or ""


@contextlib.contextmanager
def _invalid() -> Iterator[None]:
    """Turn the protocol's encoding errors into a 422 with the same code and message."""
    try:
        yield
    except EncodingError as exc:
        raise InvalidRequest(exc.message, exc.code) from exc


# --- answers -------------------------------------------------------------------------------

encode = msgspec.json.Encoder().encode
"""Compact JSON bytes of an answer or event (msgspec: several times faster than ``json``)."""



def stored_message(message: StoredMessage) -> dict[str, Any]:
    """``<stored>``: an envelope in a mailbox."""
    return {
        "id": b64encode(message.id),
        "cursor": message.cursor,
        "to_org": message.to_org,
        "epoch": message.epoch,
        "sealed": b64encode(message.sealed),
        "received": message.received,
        "expires": message.expires,
    }


@functools.lru_cache(maxsize=256)
def message_event(message: StoredMessage) -> bytes:
    """The ``/v1/events`` frame of one envelope (UTF-8 JSON text).

    Cached: a pushed envelope goes to every open stream of its organisation, and each
    stream's task asks for the frame of the very same object, so it is encoded once.
    """
    return encode({"type": "message", "message": stored_message(message)})


def message_frame(message: StoredMessage) -> bytes:
    """The whole WebSocket frame (RFC 6455 section 5.2) of ``message_event(message)``.

    A server's frames are unmasked and the event streams do not compress, so the frame is
    the same bytes for every receiver: a push is encoded once and each live stream's
    connection is given these bytes. Remembered for the last envelope asked for (by
    identity: cheaper than hashing it 2,000 times for one push to 2,000 streams).
    """
    if message is not _last_frame.message:
        payload = message_event(message)
        size = len(payload)
        if size < 126:
            head = bytes((0x81, size))
        elif size < 1 << 16:
            head = bytes((0x81, 126)) + size.to_bytes(2, "big")
        else:
            head = bytes((0x81, 127)) + size.to_bytes(8, "big")
        _last_frame.message, _last_frame.frame = message, head + payload
    return _last_frame.frame


class _LastFrame:
    __slots__ = ("frame", "message")

    def __init__(self) -> None:
        self.message: StoredMessage | None = None
        self.frame = b""


_last_frame = _LastFrame()


def sent_message(sent: SentMessage) -> dict[str, Any]:
    """One entry of a send's answer."""
    return {"id": b64encode(sent.id), "to_org": sent.to_org,
            "status_token": b64encode(sent.status_token), "expires": sent.expires}


def status(found: MessageStatus) -> dict[str, Any]:
    """A message's state as its status token's holder sees it."""
    return {"state": found.state, "acknowledged": found.acknowledged, "of": found.recipients,
            "read": found.read}


def grant(row: GrantRow) -> dict[str, Any]:
    """One grant sealed to the caller."""
    return {"org_id": row.org_id, "epoch": row.epoch, "grant": b64encode(row.sealed)}


def head(value: Head) -> dict[str, Any]:
    """``<head>``: the signed key-log head."""
    return {
        "size": value.size,
        "hash": b64encode(value.hash),
        "time": value.time,
        "signature": b64encode(value.signature),
    }


def log_entry(entry: LogEntry) -> dict[str, Any]:
    """One key-log entry: index, the signed record as it travels, the chain hash."""
    return {"index": entry.index, "record": entry.item.to_json(), "hash": b64encode(entry.hash)}
