"""The aiohttp application: ``create_app(config)`` wires store, service, routes, middleware."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from .bodyparser import BODY_PARSER, BodyParser
from .config import RelayConfig
from .diskguard import DiskGuard
from .errors import BadHeader
from .expiry import purge_once, run_expiry
from .handlers.common import LARGE_AT_ONCE, LARGE_REQUESTS, SERVICE
from .metrics import METRICS, RelayMetrics
from .privacylog import PSEUDONYMS, Pseudonyms, access_middleware, flush_access_log
from .problems import SERVER_NAME, problem_middleware
from .routes import ROUTES, add_routes
from .service import RelayService
from .startup import explain
from .store import SqliteStore, create_store

LOG_HEAD_HEADER = "Kok-Log-Head"
# A client asks these before it knows it talks to a relay of its own network: it must be
# able to learn "wrong network" there rather than a log-head conflict.
LOG_HEAD_EXEMPT = frozenset({"/healthz", "/v1/info", "/v1/openapi.yaml"})
log = structlog.get_logger("relay")


@web.middleware
async def log_head_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A client that sends the head it verified learns at once if our log does not extend it."""
    header = request.headers.get(LOG_HEAD_HEADER)
    if header is not None and request.path not in LOG_HEAD_EXEMPT:
        if not header.isascii():  # the size must be ASCII digits, not any script's
            raise BadHeader("Kok-Log-Head must be <size>:<base64url hash of 32 bytes>")
        request.app[SERVICE].directory.require_extends(header)
    return await handler(request)


def create_app(config: RelayConfig) -> web.Application:
    """The relay application for ``config`` (the store opens when the app starts)."""
    limits = config.limits
    # The disk guard sits inside problem_middleware: its StorageFull becomes a 507 there.
    guard = DiskGuard(config, purge=lambda: purge_once(app[SERVICE]))
    middlewares = [access_middleware, problem_middleware, log_head_middleware,
                   guard.middleware]
    if config.store.is_postgresql:  # other relay processes may share the store
        from .pushbus import shared_state_middleware

        middlewares.insert(2, shared_state_middleware)
    metrics = RelayMetrics() if config.metrics.port else None
    if metrics is not None:
        middlewares.insert(0, metrics.middleware)
    # client_max_size only bounds read()/json(); handlers bound their bodies themselves.
    app = web.Application(
        middlewares=middlewares,
        client_max_size=max(limits.max_send_bytes * 2, limits.max_control_body_bytes),
    )
    store = create_store(config)
    if metrics is not None:
        app[METRICS] = metrics
        if isinstance(store, SqliteStore):
            store.commit_observer = metrics.observe_commit
    relay = RelayService(config, store)
    app[SERVICE] = relay
    app[LARGE_REQUESTS] = asyncio.Semaphore(LARGE_AT_ONCE)
    app[BODY_PARSER] = BodyParser(LARGE_AT_ONCE)
    app[PSEUDONYMS] = Pseudonyms()
    add_routes(app)
    app.on_response_prepare.append(_server_header)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_event_streams)
    return app


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    """Name no versions (aiohttp would send ``Python/3.x aiohttp/3.y``)."""
    response.headers["Server"] = SERVER_NAME


async def _close_event_streams(app: web.Application) -> None:
    """On SIGTERM, before in-flight requests are waited for: end every event stream with
    1001 (going away) so clients reconnect elsewhere or later and catch up by cursor."""
    await app[SERVICE].hub.close_all()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    relay = app[SERVICE]
    bus = None
    try:
        await relay.store.open()
        if relay.config.store.is_postgresql:
            from .pushbus import PushBus
            from .store.postgres import PostgresStore

            assert isinstance(relay.store, PostgresStore)
            bus = PushBus(relay, relay.store)
            await bus.start()  # before loading: nothing committed meanwhile is missed
        await relay.start(_now())
    except Exception as exc:
        # Close what was opened (its threads would keep the process alive) and say why.
        with contextlib.suppress(Exception):
            if bus is not None:
                await bus.close()
            await relay.store.close()
        raise explain(exc, relay.config) from exc
    if bus is not None:
        bus.ready()
    metrics = app.get(METRICS)
    expiry = asyncio.get_running_loop().create_task(run_expiry(
        relay, relay.config.expiry.interval, metrics.observe_purge if metrics else None))
    log.info("started", log_size=relay.directory.keylog.size, routes=len(ROUTES))
    yield
    expiry.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await expiry
    if bus is not None:
        await bus.close()
    await relay.hub.close_all()
    app[BODY_PARSER].close()
    await relay.store.close()
    flush_access_log()
    log.info("stopped")


def _now() -> int:
    return int(time.time())
