"""The route table: every path and method of the API, in one place.

``protocol/openapi.yaml`` documents exactly these routes (a test compares the two).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .handlers import auth, drops, events, grants, keylog, link, messages, meta

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/healthz", meta.healthz),
    ("GET", "/v1/info", meta.info),
    ("GET", "/v1/openapi.yaml", meta.openapi),
    ("GET", "/v1/log", keylog.read_log),
    ("GET", "/v1/log/head", keylog.read_head),
    ("POST", "/v1/log", keylog.append),
    ("POST", "/v1/auth/challenge", auth.challenge),
    ("POST", "/v1/auth/session", auth.login),
    ("DELETE", "/v1/auth/session", auth.logout),
    ("PUT", "/v1/grants/{org_id}/{epoch}", grants.upload),
    ("GET", "/v1/grants", grants.mine),
    ("POST", "/v1/messages", messages.send),
    ("GET", "/v1/messages", messages.inbox),
    ("POST", "/v1/messages/read", messages.report_read),
    ("GET", "/v1/messages/{id}", messages.fetch),
    ("POST", "/v1/messages/{id}/ack", messages.acknowledge),
    ("POST", "/v1/status", messages.status),
    ("POST", "/v1/retract", messages.retract),
    ("GET", "/v1/events", events.events),
    ("POST", "/v1/drops", drops.create),
    ("HEAD", "/v1/drops/{id}", drops.offset),
    ("PATCH", "/v1/drops/{id}", drops.upload),
    ("POST", "/v1/drops/{id}/complete", drops.complete),
    ("GET", "/v1/drops/{id}", drops.download),
    ("POST", "/v1/drops/{id}/ack", drops.acknowledge),
    ("DELETE", "/v1/drops/{id}", drops.withdraw),
    ("POST", "/v1/link", link.open_link),
    ("POST", "/v1/link/{nameplate}/{side}", link.post),
    ("GET", "/v1/link/{nameplate}/{side}", link.read),
    ("DELETE", "/v1/link/{nameplate}", link.close),
]


def add_routes(app: web.Application) -> None:
    """Register every route on ``app`` (no implicit HEAD: the document lists what exists)."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
