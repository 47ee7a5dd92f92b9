"""Logging in and out: challenge, session, logout."""

from __future__ import annotations

from aiohttp import web

from protocol import b64encode

from .. import wire
from ..errors import AuthSignatureInvalid, ChallengeExpired, ChallengeInvalid
from .common import (
    charge_failed_login,
    charge_login,
    now,
    ok,
    read_json,
    require_session,
    service,
)


async def challenge(request: web.Request) -> web.Response:
    """A single-use nonce for a staff member to sign (costs that person nothing)."""
    charge_login(request)
    staff_id = wire.staff_id_field(await read_json(request))
    nonce, expires = await service(request).sessions.challenge(staff_id, now())
    return ok({"nonce": b64encode(nonce), "expires": expires})


async def login(request: web.Request) -> web.Response:
    """Trade a signed challenge for a session token."""
    charge_login(request)
    login_request = wire.login_request(await read_json(request))
    try:
        created = await service(request).sessions.login(login_request, now())
    except (ChallengeInvalid, ChallengeExpired, AuthSignatureInvalid):
        charge_failed_login(request, login_request.staff_id)
        raise
    session = created.session
    return ok({"token": b64encode(created.token), "expires": session.expires,
               "staff_id": session.staff_id, "org_id": session.org_id, "role": session.role})


async def logout(request: web.Request) -> web.Response:
    """End the caller's session (and its event streams)."""
    relay = service(request)
    await relay.logout(require_session(request, now()))
    return web.Response(status=204)
