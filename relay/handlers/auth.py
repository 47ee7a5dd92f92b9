"""Logging in and out: challenge, session, logout."""

from __future__ import annotations

from aiohttp import web

from protocol import b64encode

from .common import (
    b64_field,
    charge_public,
    json_object,
    now,
    ok,
    read_json,
    require_session,
    service,
)


async def challenge(request: web.Request) -> web.Response:
    """A single-use nonce for a staff member to sign."""
    body = json_object(await read_json(request), {"staff_id"})
    charge_public(request, str(body["staff_id"])[:80])
    nonce, expires = await service(request).sessions.challenge(body["staff_id"], now())
    return ok({"nonce": b64encode(nonce), "expires": expires})


async def login(request: web.Request) -> web.Response:
    """Trade a signed challenge for a session token."""
    body = json_object(await read_json(request), {"staff_id", "nonce", "signature"})
    charge_public(request, str(body["staff_id"])[:80])
    nonce = b64_field(body, "nonce", 32)
    signature = b64_field(body, "signature", 64)
    created = await service(request).sessions.login(body["staff_id"], nonce, signature, now())
    session = created.session
    return ok({"token": b64encode(created.token), "expires": session.expires,
               "staff_id": session.staff_id, "org_id": session.org_id, "role": session.role})


async def logout(request: web.Request) -> web.Response:
    """End the caller's session (and its event streams)."""
    relay = service(request)
    session = require_session(request, now())
    await relay.sessions.logout(session)
    await relay.hub.close_session(session.token_hash)
    return web.Response(status=204)
