"""The JSON shapes the relay answers with (docs/http-api.md), built in one place."""

from __future__ import annotations

from typing import Any

from protocol import Head, LogEntry, b64encode

__all__ = ["b64encode", "head", "json_object", "log_entry", "message_id_text", "stored_message"]

from .errors import InvalidRequest
from .store import StoredMessage


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


def message_id_text(message_id: bytes) -> str:
    """A message id as clients see it: base64url of 16 bytes."""
    return b64encode(message_id)


def stored_message(message: StoredMessage) -> dict[str, Any]:
    """``<stored>``: an envelope in a mailbox."""
    return {
        "id": message_id_text(message.id),
        "cursor": message.cursor,
        "to_org": message.to_org,
        "epoch": message.epoch,
        "sealed": b64encode(message.sealed),
        "received": message.received,
        "expires": message.expires,
    }


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
