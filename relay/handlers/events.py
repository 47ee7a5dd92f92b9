"""``GET /v1/events``: a WebSocket carrying the caller's organisation's envelopes.

What the stream carries, and when it ends, is the service's (``relay.service.events``);
this handler upgrades the connection and writes each item as a frame.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import WSMsgType, web

from .. import wire
from ..errors import WebSocketRequired
from ..push import Closing, Subscription
from .common import MAX_CURSOR, int_query, now, require_session, service

HEARTBEAT = 20.0


async def events(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket for the caller's organisation's envelopes."""
    relay = service(request)
    session = require_session(request, now())
    after = int_query(request, "after", 0, MAX_CURSOR)
    # compress=False: a frame is base64 of ciphertext (deflate saves little), and a
    # compressor per stream would cost memory and CPU per listener for every push
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=4096, compress=False)
    if not ws.can_prepare(request).ok:
        raise WebSocketRequired()
    sub = relay.events.open(session)
    reader: asyncio.Task[None] | None = None
    try:
        await ws.prepare(request)
        reader = asyncio.get_running_loop().create_task(_drain_incoming(ws, sub))
        async with contextlib.aclosing(relay.events.stream(session, sub, after, now)) as items:
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


async def _drain_incoming(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Read (and ignore) what the client sends; when it closes, wake the sending loop."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
    sub.close(1000, "client closed")
