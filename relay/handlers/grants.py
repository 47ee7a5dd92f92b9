"""Epoch grants: an admin uploads them, each staff member reads their own."""

from __future__ import annotations

from aiohttp import web

from protocol import b64encode

from ..errors import NotFound
from .common import now, ok, read_json, require_session, service


async def upload(request: web.Request) -> web.Response:
    """``PUT /v1/grants/{org_id}/{epoch}`` by an admin of that organisation."""
    at = now()
    session = require_session(request, at)
    epoch_text = request.match_info["epoch"]
    if not epoch_text.isdigit() or len(epoch_text) > 15:
        raise NotFound()
    body = await read_json(request, service(request).config.limits.max_send_bytes)
    stored = await service(request).grants.upload(
        session, request.match_info["org_id"], int(epoch_text), body, at)
    return ok({"stored": stored}, status=201)


async def mine(request: web.Request) -> web.Response:
    """The grants sealed to the caller."""
    at = now()
    session = require_session(request, at)
    rows = await service(request).grants.mine(session, at)
    return ok({"grants": [{"org_id": g.org_id, "epoch": g.epoch, "grant": b64encode(g.sealed)}
                          for g in rows]})
