"""Privacy-preserving logs (SPEC section 18; the fields are listed in docs/privacy.md).

* aiohttp's access log is off (it writes the client's IP); ``record_access`` writes the
  relay's own access event instead: method, the route *pattern* (``/v1/messages/{id}``,
  never the raw path), status, problem code and duration.
* Identifiers that must appear (organisation, staff member) are replaced by keyed
  pseudonyms: HMAC-SHA256 under a key drawn at random each UTC day and kept only in
  memory, so one day's log can be correlated for debugging while older logs cannot be
  tied to anyone, not even by the operator.
* Never logged: IP addresses, tokens, nonces, keys, message ids, payloads. As a second
  line of defence every log line, ours and third-party (stdlib ``logging``), passes a
  filter that replaces anything shaped like an IP address.
* JSON lines when stderr is not a terminal; readable key=value lines on a terminal.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import sys
import time
from typing import Any, TextIO

import msgspec
import structlog
from aiohttp import web

from .config import LoggingConfig
from .request_keys import SESSION

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
REDACTED = "[address]"


def redact_addresses(text: str) -> str:
    """Replace anything that looks like an IPv4 or IPv6 address."""
    return _IPV6.sub(REDACTED, _IPV4.sub(REDACTED, text))


# Fields the relay fills itself from constants, numbers and pseudonyms: nothing to redact.
_SAFE_FIELDS = frozenset({"method", "route", "status", "ms", "code", "org", "staff", "level"})


def _redact_processor(logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and key not in _SAFE_FIELDS:
            event[key] = redact_addresses(value)
    return event


class _RedactFilter(logging.Filter):
    """Records of other libraries (aiohttp, asyncio) keep their message without addresses,
    and of an exception only its type: exception texts and tracebacks can quote request
    bytes (a header with a token) that must not reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact_addresses(record.getMessage())
        if record.exc_info and record.exc_info[0] is not None:
            message += f" ({record.exc_info[0].__name__})"
        record.msg = message
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def configure_logging(config: LoggingConfig, stream: TextIO | None = None) -> None:
    """Set up structlog and stdlib logging for the relay process."""
    stream = stream or sys.stderr
    as_json = config.format == "json" or (config.format == "auto" and not stream.isatty())
    renderer: Any = (structlog.processors.JSONRenderer() if as_json
                     else structlog.dev.ConsoleRenderer(colors=False))
    level = logging.getLevelNamesMapping().get(config.level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.processors.add_log_level,
        _redact_processor,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # one write per line (print() writes the newline apart on an unbuffered stream):
        # `serve --workers` processes share stderr and must not split each other's lines
        logger_factory=structlog.WriteLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.addFilter(_RedactFilter())
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(level, logging.WARNING))
    global _access_lines
    _access_lines = _AccessLines(stream) if as_json and level <= logging.INFO else None


class Pseudonyms:
    """Keyed pseudonyms under a key that changes every UTC day and lives only in memory."""

    CACHE = 10_000

    def __init__(self) -> None:
        self._day = -1
        self._key = b""
        self._cache: dict[str, str] = {}

    def __call__(self, value: str, now: float | None = None) -> str:
        day = int((time.time() if now is None else now) // 86400)
        if day != self._day:  # a new day: a new key, and forget every pseudonym of the old one
            self._day, self._key, self._cache = day, secrets.token_bytes(32), {}
        found = self._cache.get(value)
        if found is None:
            found = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]
            if len(self._cache) >= self.CACHE:
                self._cache.clear()
            self._cache[value] = found
        return found


PSEUDONYMS = web.AppKey("pseudonyms", Pseudonyms)

# Requests by which someone sends: their access events name nobody. With a pseudonym and a
# timestamp, a day's log beside the database (which records when each envelope arrived)
# would tie a sender to a message, which the relay must never be able to do.
SENDING_ROUTES = frozenset({
    ("POST", "/v1/messages"),
    ("POST", "/v1/drops"),
    ("HEAD", "/v1/drops/{id}"),
    ("PATCH", "/v1/drops/{id}"),
    ("POST", "/v1/drops/{id}/complete"),
})
access_log = structlog.get_logger("relay.access")


class _AccessLines:
    """JSON access events, the same lines structlog's JSON renderer writes, made without its
    processor chain (the most frequent line there is, one per request) and written in one
    ``write`` per event-loop turn instead of one per request.

    Only relay-made fields go in (constants, numbers, pseudonyms: ``_SAFE_FIELDS``), so
    there is nothing to redact.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[bytes] = []
        self._second = -1
        self._stamp = ""

    def write(self, fields: dict[str, Any]) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:  # the date part changes once a second
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        fields["event"] = "access"
        fields["level"] = "info"
        fields["timestamp"] = f"{self._stamp}.{int((now - second) * 1e6):06d}Z"
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: write it now
                self._pending.append(_encode_line(fields))
                self.flush()
                return
        self._pending.append(_encode_line(fields))

    def flush(self) -> None:
        """Write what is pending (also at shutdown)."""
        if self._pending:
            text, self._pending = b"".join(self._pending).decode(), []
            self._stream.write(text)
            self._stream.flush()


def _encode_line(fields: dict[str, Any]) -> bytes:
    return _ENCODER.encode(fields) + b"\n"


_ENCODER = msgspec.json.Encoder()
_access_lines: _AccessLines | None = None
"""Set by ``configure_logging`` for JSON logs; without it access events go to structlog."""


def flush_access_log() -> None:
    """Write access events still waiting for the end of the event-loop turn."""
    if _access_lines is not None:
        _access_lines.flush()


def _route_pattern(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def record_access(request: web.Request, status: int, started: float,
                  code: str | None = None) -> None:
    """The access event of a request answered with ``status`` (``started``: its
    ``time.perf_counter()`` on arrival; ``code``: the problem code of a refusal), without
    IP, path values, tokens or payload. Written by the relay's middleware (``relay.edge``)
    as each request ends."""
    fields: dict[str, Any] = {
        "method": request.method,
        "route": _route_pattern(request),
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if code:
        fields["code"] = code
    session = request.get(SESSION)
    if session is not None and (request.method, fields["route"]) not in SENDING_ROUTES:
        pseudonym = request.app[PSEUDONYMS]
        fields["org"] = pseudonym(session.org_id)
        fields["staff"] = pseudonym(session.staff_id)
    if _access_lines is not None:
        _access_lines.write(fields)
    else:
        access_log.info("access", **fields)
