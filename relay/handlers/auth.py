"""Logging in and out: challenge, session, logout."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from protocol import b64encode

from .. import wire
from .common import charge_public, now, ok, read_json, require_session, service


def _login_key(body: Any) -> str:
    """The per-person login budget to charge: the staff id claimed, as sent (even if bad)."""
    claimed = body.get("staff_id") if isinstance(body, dict) else None
    return "" if claimed is None else str(claimed)[:80]


async def challenge(request: web.Request) -> web.Response:
    """A single-use nonce for a staff member to sign."""
    body = await read_json(request)
    charge_public(request, _login_key(body))
    nonce, expires = await service(request).sessions.challenge(wire.staff_id_field(body), now())
    return ok({"nonce": b64encode(nonce), "expires": expires})


async def login(request: web.Request) -> web.Response:
    """Trade a signed challenge for a session token."""
    body = await read_json(request)
    charge_public(request, _login_key(body))
    created = await service(request).sessions.login(wire.login_request(body), now())
    session = created.session
    return ok({"token": b64encode(created.token), "expires": session.expires,
               "staff_id": session.staff_id, "org_id": session.org_id, "role": session.role})


async def logout(request: web.Request) -> web.Response:
    """End the caller's session (and its event streams)."""
    relay = service(request)
    await relay.logout(require_session(request, now()))
    return web.Response(status=204)
