"""The aiohttp application: ``create_app(config)`` wires store, service, routes, middleware."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from .bodyparser import BODY_PARSER, BodyParser
from .config import RelayConfig
from .diskguard import DiskGuard
from .edge import edge_middleware
from .expiry import purge_once, run_expiry
from .handlers.common import LARGE_AT_ONCE, LARGE_REQUESTS, SERVICE
from .metrics import METRICS, RelayMetrics
from .privacylog import PSEUDONYMS, Pseudonyms, flush_access_log
from .routes import ROUTES, add_routes
from .service import RelayService
from .startup import explain
from .store import SqliteStore, create_store

log = structlog.get_logger("relay")


def create_app(config: RelayConfig) -> web.Application:
    """The relay application for ``config`` (the store opens when the app starts)."""
    limits = config.limits
    guard = DiskGuard(config, purge=lambda: purge_once(app[SERVICE]))
    learn = None
    if config.store.is_postgresql:  # other relay processes may share the store
        from .pushbus import learn_shared_state

        learn = learn_shared_state
    middlewares = [edge_middleware(guard, learn)]
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
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_event_streams)
    return app


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
