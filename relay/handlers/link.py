"""Device-linking mailboxes (SPEC.md section 6.9): the existing device opens one with its
session; the new device, which has no session yet, reaches it by the code's nameplate."""

from __future__ import annotations

import time

from aiohttp import web

from .. import wire
from ..errors import RateLimited
from ..service.link import LINK_MAX_MESSAGES
from .common import MAX_CURSOR, int_query, now, ok, read_json, require_session, service

LINK_BUDGET = "link"
"""The new device's calls have their own public budget: its polling cannot starve logins."""


def _session_for(request: web.Request, side: str, at: int):  # type: ignore[no-untyped-def]
    """The existing side needs its session; the new side is charged to the link budget."""
    if side == "a":
        return require_session(request, at)
    wait = service(request).public_limiter.take(LINK_BUDGET, time.monotonic())
    if wait:
        raise RateLimited(wait)
    return None


async def open_link(request: web.Request) -> web.Response:
    """``POST /v1/link``: the existing device opens an empty mailbox (no body)."""
    at = now()
    session = require_session(request, at)
    nameplate, expires = await service(request).links.open(session, at)
    return ok({"nameplate": nameplate, "expires": expires}, status=201)


async def post(request: web.Request) -> web.Response:
    """``POST /v1/link/{nameplate}/{side}``: one more message of that side."""
    at = now()
    nameplate, side = wire.link_path(request.match_info["nameplate"], request.match_info["side"])
    session = _session_for(request, side, at)
    message = wire.link_message(await read_json(request))
    count = await service(request).links.post(nameplate, side, message, session, at)
    return ok({"count": count})


async def read(request: web.Request) -> web.Response:
    """``GET /v1/link/{nameplate}/{side}?after=N``: what that side posted from N on."""
    at = now()
    nameplate, side = wire.link_path(request.match_info["nameplate"], request.match_info["side"])
    session = _session_for(request, "a" if side == "b" else "b", at)
    after = int_query(request, "after", 0, min(MAX_CURSOR, LINK_MAX_MESSAGES))
    messages, expires = await service(request).links.read(nameplate, side, after, session, at)
    return ok({"messages": [wire.b64encode(m) for m in messages], "expires": expires})


async def close(request: web.Request) -> web.Response:
    """``DELETE /v1/link/{nameplate}``: either side ends the link (done, or a wrong code)."""
    at = now()
    nameplate, _ = wire.link_path(request.match_info["nameplate"])
    _session_for(request, "b", at)
    await service(request).links.close(nameplate, at)
    return web.Response(status=204)
