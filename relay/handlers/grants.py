"""Epoch grants: an admin uploads them, each staff member reads their own."""

from __future__ import annotations

import functools
import math

from aiohttp import web

from .. import wire
from ..errors import NotFound
from ..service.domain import MAX_GRANT_BYTES, MAX_GRANTS
from .common import large_request_slot, now, ok, read_parsed, require_session, service

# What the largest legitimate upload can be: every grant at its largest, base64, with its
# staff id and the JSON around it.
GRANTS_BODY_LIMIT = MAX_GRANTS * (math.ceil(MAX_GRANT_BYTES * 4 / 3) + 128) + 1024


async def upload(request: web.Request) -> web.Response:
    """``PUT /v1/grants/{org_id}/{epoch}`` by an admin of that organisation."""
    at = now()
    session = require_session(request, at)
    epoch_text = request.match_info["epoch"]
    if wire.decimal(epoch_text, 15) is None:
        raise NotFound()  # before the body is read
    org_text = request.match_info["org_id"]
    async with large_request_slot(request, GRANTS_BODY_LIMIT):
        upload = await read_parsed(request, GRANTS_BODY_LIMIT,
                                   functools.partial(wire.grant_upload, org_text, epoch_text))
        stored = await service(request).grants.upload(session, upload, at)
    return ok({"stored": stored}, status=201)


async def mine(request: web.Request) -> web.Response:
    """The grants sealed to the caller."""
    at = now()
    session = require_session(request, at)
    rows = await service(request).grants.mine(session, at)
    return ok({"grants": [wire.grant(g) for g in rows]})
