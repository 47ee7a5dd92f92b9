"""Epoch grants: an admin uploads them, each staff member reads their own."""

from __future__ import annotations

from aiohttp import web

from .. import wire
from ..errors import NotFound
from .common import now, ok, read_json, require_session, service


async def upload(request: web.Request) -> web.Response:
    """``PUT /v1/grants/{org_id}/{epoch}`` by an admin of that organisation."""
    at = now()
    session = require_session(request, at)
    epoch_text = request.match_info["epoch"]
    if wire.decimal(epoch_text, 15) is None:
        raise NotFound()  # before the body is read
    body = await read_json(request, service(request).config.limits.max_send_bytes)
    upload = wire.grant_upload(request.match_info["org_id"], epoch_text, body)
    stored = await service(request).grants.upload(session, upload, at)
    return ok({"stored": stored}, status=201)


async def mine(request: web.Request) -> web.Response:
    """The grants sealed to the caller."""
    at = now()
    session = require_session(request, at)
    rows = await service(request).grants.mine(session, at)
    return ok({"grants": [wire.grant(g) for g in rows]})
