"""The relay's middleware: what every request passes on its way to a handler and back.

In this order: the access event (``privacylog.record_access``, written as the request
ends, whatever happened), the refusal of every failure as problem+json
(``problems.problem_for``), learning what other relay processes committed (only with a
shared store: ``pushbus.learn_shared_state``), the ``Kok-Log-Head`` check, and the disk
guard (``diskguard``: no new data below the watermark, 507 for a write that found the disk
full).

Every answer names the relay as ``Server: kok-relay`` (aiohttp would send ``Python/3.x
aiohttp/3.y``): set here on every answer that leaves through the middleware unsent; the
two handlers that send their answer themselves (a drop download, the event stream's
upgrade) set it before sending, and ``relay.server`` on the answers to unparsable requests.
An ``on_response_prepare`` hook would catch all of them, at ~5 us per request (an A/B
run: 232 against 222 us of relay CPU per send).

These are steps of one middleware rather than one middleware each: aiohttp runs every
middleware as a coroutine of its own per request, and on the relay's most frequent
request (a send) the layers cost more than the steps they held.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from .diskguard import DiskGuard
from .errors import BadHeader
from .handlers.common import SERVICE
from .privacylog import record_access
from .problems import SERVER_NAME, problem_for
from .request_keys import PROBLEM_CODE

SERVER = hdrs.SERVER
LOG_HEAD_HEADER = "Kok-Log-Head"
# A client asks these before it knows it talks to a relay of its own network: it must be
# able to learn "wrong network" there rather than a log-head conflict.
LOG_HEAD_EXEMPT = frozenset({"/healthz", "/v1/info", "/v1/openapi.yaml"})


def check_log_head(request: web.Request) -> None:
    """A client that sends the head it verified learns at once if our log does not extend it."""
    header = request.headers.get(LOG_HEAD_HEADER)
    if header is not None and request.path not in LOG_HEAD_EXEMPT:
        if not header.isascii():  # the size must be ASCII digits, not any script's
            raise BadHeader("Kok-Log-Head must be <size>:<base64url hash of 32 bytes>")
        request.app[SERVICE].directory.require_extends(header)


def edge_middleware(guard: DiskGuard,
                    learn: Callable[[web.Request], Awaitable[None]] | None = None
                    ) -> Middleware:
    """The middleware, with the disk ``guard`` and (shared store) ``learn_shared_state``."""

    @web.middleware
    async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        code = None  # a refusal's problem code (asked of the request only then: a missing
        # key costs aiohttp's request an exception, ~1.5 us on every request that succeeds)
        try:
            try:
                if learn is not None:
                    await learn(request)
                check_log_head(request)
                guard.admit(request)
                try:
                    response = await handler(request)
                except (OSError, sqlite3.OperationalError) as exc:
                    full = guard.storage_full(exc)
                    if full is None:
                        raise
                    raise full from exc
            except Exception as exc:  # every failure, as problem+json
                response = problem_for(request, exc)
                code = request[PROBLEM_CODE]
            status = response.status
            if not response.prepared:
                response.headers[SERVER] = SERVER_NAME
            return response
        except web.HTTPException as exc:  # an aiohttp answer of its own, passed on
            status = exc.status
            exc.headers[SERVER] = SERVER_NAME
            raise
        finally:
            record_access(request, status, started, code)

    return edge
