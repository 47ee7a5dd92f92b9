"""What every handler needs: the service, the clock, bounded bodies, the caller's session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from aiohttp import web

from protocol.encoding import b64decode, parse_json
from protocol.errors import EncodingError

from .. import wire
from ..bodyparser import BODY_PARSER
from ..errors import AuthRequired, BodyTooLarge, InvalidRequest, MalformedBody, RateLimited
from ..ratelimit import RateLimiter
from ..request_keys import SESSION
from ..service import RelayService, Session
from ..service.domain import SESSION_TOKEN_SIZE

SERVICE = web.AppKey("relay_service", RelayService)
LARGE_REQUESTS = web.AppKey("large_requests", asyncio.Semaphore)
LARGE_BODY = 256 * 1024
"""Bodies above this many bytes are read a few at a time and parsed off the event loop."""
LARGE_AT_ONCE = 1
"""Large bodies read and handled at the same time (each may hold ~4x its size in memory)."""
READ_PIECE = 64 * 1024
T = TypeVar("T")
PROBE_BUDGET = "public"
LOGIN_BUDGET = "login"
MAX_CURSOR = 2**53 - 1
"""Largest cursor or index a query may name (JSON-safe integer)."""


def service(request: web.Request) -> RelayService:
    """The relay service of this application."""
    return request.app[SERVICE]


def now() -> int:
    """The clock, read once per request at the edge."""
    return int(time.time())


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes.

    ``client_max_size`` only bounds ``read()``/``json()``; this reads the stream itself so
    the bound holds for any body, declared length or chunked.
    """
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            raise BodyTooLarge(f"The body may be at most {limit} bytes.")
        # aiohttp's parser delivers exactly Content-Length bytes, so this read is bounded.
        try:
            return await request.content.readexactly(declared) if declared else b""
        except asyncio.IncompleteReadError:
            raise MalformedBody("The body ended before its declared length.") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(READ_PIECE)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The body may be at most {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: web.Request, limit: int | None = None) -> Any:
    """The body parsed as strict JSON (no duplicate keys, no floats)."""
    if limit is None:
        limit = service(request).config.limits.max_control_body_bytes
    return _parse(await read_body(request, limit), _as_is)


async def read_parsed(request: web.Request, limit: int, parser: Callable[[Any], T],
                      fast: Callable[[bytes], T | None] | None = None) -> T:
    """The body as strict JSON turned into a request value by ``parser`` (``relay.wire``).

    A large body is parsed in a child process (``relay.bodyparser``), so the event loop
    keeps answering others while it is (call this inside ``large_request_slot``, which
    bounds how many at once). ``fast``: a shortcut for small bodies that gives the same
    value as ``parser`` or None when unsure (then ``parser`` decides, and words any error).
    """
    raw = await read_body(request, limit)
    if len(raw) > LARGE_BODY:
        return await request.app[BODY_PARSER].parse(_parse, raw, parser)
    if fast is not None:
        value = fast(raw)
        if value is not None:
            return value
    return _parse(raw, parser)


class _NoSlot:
    """The slot of a small body: nothing to wait for (and cheaper than a generator-based
    context manager on the path of almost every send)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_SLOT = _NoSlot()


def large_request_slot(request: web.Request, limit: int) -> AbstractAsyncContextManager[Any]:
    """Hold one of ``LARGE_AT_ONCE`` places while a large (or unsized) body is read and
    handled: a flood of large bodies waits its turn, unread, instead of filling memory and
    the CPU that every other request needs. A body declared over ``limit`` is refused
    at once, without waiting."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"The body may be at most {limit} bytes.")
    if declared is not None and declared <= LARGE_BODY:
        return _NO_SLOT
    slots: asyncio.Semaphore = request.app[LARGE_REQUESTS]
    return slots


def _as_is(value: Any) -> Any:
    return value


def _parse(raw: bytes, parser: Callable[[Any], T]) -> T:
    try:
        value = parse_json(raw)
    except EncodingError as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc.message}") from exc
    return parser(value)


def int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    """A non-negative integer query parameter."""
    text = request.query.get(name)
    if text is None:
        return default
    value = wire.decimal(text, 16)
    if value is None:
        raise InvalidRequest(f"query parameter {name} must be a non-negative integer")
    if value > maximum:
        raise InvalidRequest(f"query parameter {name} must be at most {maximum}")
    return value


def bearer_token(request: web.Request) -> bytes:
    """The 32-byte session token from ``Authorization: Bearer <b64>``."""
    header = request.headers.get("Authorization")
    if header is None:
        raise AuthRequired()
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthRequired("The Authorization header must be: Bearer <session token>.")
    try:
        return b64decode(value.strip(), size=SESSION_TOKEN_SIZE, field="token")
    except EncodingError:
        raise AuthRequired("The session token is malformed: log in again.") from None


def require_session(request: web.Request, at: int) -> Session:
    """The caller's live session, after charging their staff and org request budgets."""
    relay = service(request)
    session = relay.sessions.authenticate(bearer_token(request), at)
    clock = time.monotonic()
    wait = max(relay.staff_limiter.take(session.staff_id, clock),
               relay.org_limiter.take(session.org_id, clock))
    if wait:
        raise RateLimited(wait)
    request[SESSION] = session
    return session


def charge_public(request: web.Request) -> None:
    """Charge the budget of unauthenticated requests other than logins (status, retract,
    log appends): probing there cannot use up the budget logins need."""
    _charge(service(request).public_limiter, PROBE_BUDGET)


def charge_login(request: web.Request) -> None:
    """Charge the budget of login requests (challenges and answers), apart from probing."""
    _charge(service(request).public_limiter, LOGIN_BUDGET)


def charge_failed_login(request: web.Request, staff_id: str) -> None:
    """A wrong answer in ``staff_id``'s name: only failures count against that person, so
    others asking challenges (ids are public) cannot lock them out, and a right answer is
    never refused for someone else's wrong ones."""
    _charge(service(request).login_limiter, staff_id)


def _charge(limiter: RateLimiter, key: str) -> None:
    wait = limiter.take(key, time.monotonic())
    if wait:
        raise RateLimited(wait)


_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
"""Given whole: aiohttp's ``content_type``/``charset`` arguments build the same value by
parsing and re-joining it on every answer."""


def ok(data: Any, status: int = 200) -> web.Response:
    """A JSON answer (encoded by ``wire.encode``, several times faster than ``json.dumps``)."""
    return web.Response(body=wire.encode(data), status=status, headers=_JSON_HEADERS)
