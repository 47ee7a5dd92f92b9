"""The key log: read entries, read the signed head, append a signed record."""

from __future__ import annotations

from aiohttp import web

from .. import wire
from .common import MAX_CURSOR, charge_public, int_query, now, ok, read_json, service

DEFAULT_PAGE = 1000


async def read_log(request: web.Request) -> web.Response:
    """Entries after the ``after`` the client already holds, and the signed head."""
    relay = service(request)
    after = int_query(request, "after", 0, MAX_CURSOR)
    limit = int_query(request, "limit", DEFAULT_PAGE, relay.config.limits.max_log_page) or 1
    entries = relay.directory.entries(after, limit)
    return ok({"entries": [wire.log_entry(e) for e in entries],
               "head": wire.head(relay.directory.head(now()))})


async def read_head(request: web.Request) -> web.Response:
    """The head, signed now."""
    return ok(wire.head(service(request).directory.head(now())))


async def append(request: web.Request) -> web.Response:
    """Append a record; its own signatures are its authorisation (no session)."""
    charge_public(request)
    body = wire.json_object(await read_json(request), {"record"})
    relay = service(request)
    at = now()
    entry = await relay.directory.append(body["record"], at)
    return ok({"index": entry.index, "hash": wire.b64encode(entry.hash),
               "head": wire.head(relay.directory.head(at))}, status=201)
