"""Messages: send a batch, list and fetch the org's envelopes, acknowledge, report read,
status, retract."""

from __future__ import annotations

import math

from aiohttp import web

from .. import wire
from ..sendparse import send_request_fast
from .common import (
    MAX_CURSOR,
    charge_public,
    int_query,
    large_request_slot,
    now,
    ok,
    read_json,
    read_parsed,
    require_session,
    service,
)

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _send_body_limit(request: web.Request) -> int:
    limits = service(request).config.limits
    # base64 grows the envelopes by 4/3; allow a little for the JSON around them.
    return math.ceil(limits.max_send_bytes * 4 / 3) + 1024 * limits.max_envelopes_per_send + 4096


async def send(request: web.Request) -> web.Response:
    """Store one envelope per recipient org; answer ids and status tokens."""
    at = now()
    session = require_session(request, at)
    limit = _send_body_limit(request)
    async with large_request_slot(request, limit):
        send_request = await read_parsed(request, limit, wire.send_request,
                                           send_request_fast)
        sent = await service(request).mailbox.send(session, send_request, at)
    return ok({"messages": [wire.sent_message(m) for m in sent]}, status=201)


async def inbox(request: web.Request) -> web.Response:
    """Envelopes of the caller's organisation after a cursor."""
    at = now()
    session = require_session(request, at)
    after = int_query(request, "after", 0, MAX_CURSOR)
    limit = int_query(request, "limit", DEFAULT_PAGE, MAX_PAGE) or 1
    messages = await service(request).mailbox.inbox(session, after, limit, at)
    cursor = messages[-1].cursor if messages else after
    return ok({"messages": [wire.stored_message(m) for m in messages], "cursor": cursor})


async def fetch(request: web.Request) -> web.Response:
    """One envelope by id (404 if it is not the caller's organisation's)."""
    at = now()
    session = require_session(request, at)
    message_id = wire.message_id(request.match_info["id"])
    message = await service(request).mailbox.get(session, message_id, at)
    return ok(wire.stored_message(message))


async def acknowledge(request: web.Request) -> web.Response:
    """The caller has the envelope."""
    at = now()
    session = require_session(request, at)
    message_id = wire.message_id(request.match_info["id"])
    deleted = await service(request).mailbox.acknowledge(session, message_id, at)
    return ok({"deleted": deleted})


async def report_read(request: web.Request) -> web.Response:
    """The caller opened these messages (ids it fetched): count them as read."""
    at = now()
    session = require_session(request, at)
    message_ids = wire.read_report(await read_json(request))
    counted = await service(request).mailbox.report_read(session, message_ids, at)
    return ok({"counted": counted})


async def status(request: web.Request) -> web.Response:
    """State of a message, for the holder of its status token."""
    charge_public(request)
    token = wire.status_token(await read_json(request))
    return ok(wire.status(await service(request).mailbox.status(token, now())))


async def retract(request: web.Request) -> web.Response:
    """Withdraw a message not yet fully delivered."""
    charge_public(request)
    token = wire.status_token(await read_json(request))
    found = await service(request).mailbox.retract(token, now())
    return ok({"state": found.state})
