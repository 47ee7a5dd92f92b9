"""``kok app``: the aiohttp application, its middleware, and starting it on 127.0.0.1.

Every request passes ``guard_middleware`` (Host, Origin, session, CSRF; see
``client.app.security``) and leaves with the security headers. Pages are Jinja2 templates
rendered with the request's language (``client.app.words``); every piece of text from
another organisation goes through the ``foreign`` filter, which escapes HTML (autoescape)
and shows control and bidi characters as visible ``\\uXXXX`` (``client.safetext``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import webbrowser
from importlib import resources
from pathlib import Path

from aiohttp import web

from . import admin_pages, device_pages, pages
from .rendering import GUARD, SESSION, STATE, TEMPLATES, template_env
from .security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Guard,
    Handler,
    refuse,
    security_headers,
)
from .state import AppState

# Pages reachable while locked; everything else sends the person to the unlock page.
OPEN_WHILE_LOCKED = frozenset({"/unlock", "/join", "/settings/language", "/events",
                               "/favicon.ico"})
# Polled by the pages' script: not activity, so an open page does not hold off the idle lock.
QUIET_PATHS = frozenset({"/events", "/keepalive", "/devices/link/status"})
MULTIPART_ROUTES = frozenset({"/compose", "/admin/enrol", "/join"})
# Pages reachable on a computer without the profile yet: it can only join (device_pages).
OPEN_WHILE_JOINING = frozenset({"/join", "/settings/language", "/favicon.ico"})


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    guard, state = request.app[GUARD], request.app[STATE]
    try:
        response = await _guarded(request, handler, guard, state)
    except web.HTTPException as exc:
        security_headers(exc)
        raise
    security_headers(response, static=request.path.startswith("/static/"))
    return response


async def _guarded(request: web.Request, handler: Handler, guard: Guard,
                   state: AppState) -> web.StreamResponse:
    if not guard.host_ok(request):
        return refuse(421, "This address is not the kok app.")
    if not guard.origin_ok(request):
        return refuse(403, "Requests from other sites are refused.")
    if request.path.startswith("/launch/"):
        return await handler(request)
    session = guard.session_of(request)
    if session is None:
        if request.path.startswith("/static/"):
            return await handler(request)
        return refuse(403, "Open the app with the link that kok app printed.")
    request[SESSION] = session
    if request.method not in ("GET", "HEAD"):
        if request.path not in MULTIPART_ROUTES:
            form = await request.post()
            token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
            if not Guard.csrf_ok(session, token if isinstance(token, str) else None):
                return refuse(403, "The form is out of date: go back, reload it and try again.")
        # multipart routes check the token in their first field (pages.read_multipart)
    if request.path not in QUIET_PATHS and not request.path.startswith("/static/"):
        state.touch()
    if (device_pages.needs_join(state) and request.path not in OPEN_WHILE_JOINING
            and not request.path.startswith("/static/")):
        if request.method == "GET":
            raise redirect("/join")
        return refuse(403, "This computer has no profile yet: join with a code first.")
    if (state.client is None and request.path not in OPEN_WHILE_LOCKED
            and not request.path.startswith("/static/")):
        if request.method == "GET":
            raise redirect("/unlock")
        return refuse(403, "The app is locked: unlock it first.")
    return await handler(request)


async def launch(request: web.Request) -> web.StreamResponse:
    session = request.app[GUARD].redeem(request.match_info["token"])
    if session is None:
        return refuse(403, "This launch link was used already. Run kok app again for a new one.")
    response = web.HTTPSeeOther("/inbox" if request.app[STATE].unlocked else "/unlock")
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="Strict", path="/")
    return response


def make_app(state: AppState, guard: Guard) -> web.Application:
    """The staff app for one profile."""
    app = web.Application(middlewares=[guard_middleware], client_max_size=64 * 1024)
    app[GUARD], app[STATE], app[TEMPLATES] = guard, state, template_env()
    static = Path(str(resources.files("client.app").joinpath("static")))
    app.router.add_get("/launch/{token}", launch)
    pages.add_routes(app)
    admin_pages.add_routes(app)
    device_pages.add_routes(app)
    app.router.add_static("/static/", static, append_version=False)

    async def on_startup(_: web.Application) -> None:
        state.start_watch()

    async def on_cleanup(_: web.Application) -> None:
        await state.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


SHUTDOWN_GRACE = 0.5
"""Seconds requests in flight get to finish after Ctrl-C."""


async def serve(state: AppState, *, port: int = 0, open_browser: bool = True,
                passphrase: str | None = None) -> None:
    """Run until interrupted; print the launch URL as the one line of output."""
    guard = Guard(port=port)
    app = make_app(state, guard)
    # Ctrl-C ends the app at once: a page left open holds a request (the live news stream)
    # that would otherwise keep aiohttp's graceful shutdown waiting for a minute.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    guard.port = int(runner.addresses[0][1])
    if passphrase is not None:
        await state.unlock(passphrase)
    else:
        await state.unlock_from_agent()  # a running `kok unlock` spares the passphrase
    print(guard.launch_url, flush=True)
    if open_browser:
        with contextlib.suppress(Exception):
            webbrowser.open(guard.launch_url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(home: Path | None, profile: str | None, *, port: int = 0, open_browser: bool = True,
        idle_minutes: int = 15, passphrase: str | None = None,
        ca_file: Path | None = None) -> None:
    """Blocking entry for ``kok app`` (``ca_file``: ``kok --ca-file``, for the relay)."""
    state = AppState(home, profile, idle_minutes=idle_minutes, ca_file=ca_file)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(state, port=port, open_browser=open_browser, passphrase=passphrase))
    sys.stdout.flush()
