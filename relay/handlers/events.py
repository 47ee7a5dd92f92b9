"""``GET /v1/events``: a WebSocket that replays envelopes after a cursor, then pushes new ones.

The stream subscribes *before* it reads the backlog from the store, and skips pushed
envelopes whose cursor it has already sent, so an envelope stored while the backlog is
being read is sent exactly once and nothing falls between backlog and live push.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import WSMsgType, web

from .. import wire
from ..errors import TooManyConnections
from ..push import CLOSE_SESSION_ENDED, Closing, Subscription
from .common import MAX_CURSOR, int_query, now, require_session, service

HEARTBEAT = 20.0
BACKLOG_PAGE = 500
RECHECK = 30.0


async def events(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket for the caller's organisation's envelopes."""
    relay = service(request)
    session = require_session(request, now())
    after = int_query(request, "after", 0, MAX_CURSOR)
    if relay.hub.count_for_staff(session.staff_id, session.org_id) >= (
            relay.config.limits.max_event_streams_per_staff):
        raise TooManyConnections()
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=4096)
    await ws.prepare(request)
    sub = relay.hub.subscribe(session.org_id, session.staff_id, session.token_hash)
    reader = asyncio.get_running_loop().create_task(_drain_incoming(ws, sub))
    try:
        last = after
        ended = False
        while not ended:
            page = await relay.mailbox.inbox(session, last, BACKLOG_PAGE, now())
            for message in page:
                # A removal (or logout) while the backlog is replayed ends it at the next
                # envelope, not after the whole backlog (each send may wait on the socket).
                if not relay.sessions.still_valid(session, now()):
                    await ws.close(code=CLOSE_SESSION_ENDED, message=b"session ended")
                    ended = True
                    break
                await ws.send_str(json.dumps({"type": "message",
                                              "message": wire.stored_message(message)}))
                last = message.cursor
            if len(page) < BACKLOG_PAGE:
                break
        while not ws.closed and not ended:
            try:
                item = await asyncio.wait_for(sub.queue.get(), timeout=RECHECK)
            except TimeoutError:
                if not relay.sessions.still_valid(session, now()):
                    await ws.close(code=CLOSE_SESSION_ENDED, message=b"session ended")
                    break
                continue
            if isinstance(item, Closing):
                await ws.close(code=item.code, message=item.reason.encode())
                break
            cursor, text = item
            if cursor <= last:
                continue
            if not relay.sessions.still_valid(session, now()):
                await ws.close(code=CLOSE_SESSION_ENDED, message=b"session ended")
                break
            await ws.send_str(text)
            last = cursor
    except ConnectionResetError:
        pass
    finally:
        relay.hub.unsubscribe(sub)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if not ws.closed:
            await ws.close()
    return ws


async def _drain_incoming(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Read (and ignore) what the client sends; when it closes, wake the sending loop."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
    sub.close(1000, "client closed")
