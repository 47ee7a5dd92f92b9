"""``GET /v1/events``: a WebSocket carrying the caller's organisation's envelopes.

What the stream carries, and when it ends, is the service's (``relay.service.events``);
this handler upgrades the connection and writes each item as a frame. Live envelopes are
written by the hub at once through ``connection_writer``'s function: the frame's bytes,
built once per envelope, straight to the connection, with no task woken per stream.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from .. import wire
from ..errors import WebSocketRequired
from ..problems import SERVER_NAME
from ..push import Closing, Deliver, Subscription
from ..store import StoredMessage
from .common import MAX_CURSOR, int_query, now, require_session, service

HEARTBEAT = 20.0
WRITE_BUFFER_LIMIT = 64 * 1024
"""Bytes a connection may have waiting in its write buffer (the kernel's socket buffer is
full: the client does not read) before further envelopes are queued for the stream's task,
which waits for the connection to drain; its queue is bounded (``relay.push``)."""


async def events(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket for the caller's organisation's envelopes."""
    relay = service(request)
    session = require_session(request, now())
    after = int_query(request, "after", 0, MAX_CURSOR)
    # compress=False: a frame is base64 of ciphertext (deflate saves little), and a
    # compressor per stream would cost memory and CPU per listener for every push
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=4096, compress=False)
    ws.headers["Server"] = SERVER_NAME  # its upgrade is sent from here, not the middleware
    if not ws.can_prepare(request).ok:
        raise WebSocketRequired()
    sub = relay.events.open(session)
    reader: asyncio.Task[None] | None = None
    try:
        await ws.prepare(request)
        reader = asyncio.get_running_loop().create_task(_drain_incoming(ws, sub))
        write = connection_writer(ws, request.transport)
        async with contextlib.aclosing(
                relay.events.stream(session, sub, after, now, write)) as items:
            async for item in items:
                if isinstance(item, Closing):
                    await ws.close(code=item.code, message=item.reason.encode())
                    break
                if ws.closed:
                    break
                await ws.send_frame(wire.message_event(item), WSMsgType.TEXT)
    except ConnectionResetError:
        pass
    finally:
        relay.events.close(sub)
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if not ws.closed and ws.prepared:
            await ws.close()
    return ws


def connection_writer(ws: web.WebSocketResponse,
                      transport: asyncio.Transport | None) -> Deliver:
    """Write one envelope's frame to this stream's connection now, if it can take it."""

    def write(message: StoredMessage) -> bool:
        # ws.closed turns True before aiohttp writes a close frame: nothing may follow one
        if (ws.closed or transport is None or transport.is_closing()
                or transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT):
            return False
        transport.write(wire.message_frame(message))
        return True

    return write


async def _drain_incoming(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Read (and ignore) what the client sends; when it closes, wake the sending loop."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
    sub.close(1000, "client closed")
