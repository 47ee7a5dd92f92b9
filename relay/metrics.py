"""Prometheus metrics on a separate listener (``[metrics] port``; off by default).

Aggregate only. No metric name or label ever holds an organisation, a staff member, a
message, a drop, a token or an address: requests are labelled by route *pattern*
(``/v1/messages/{id}``), method and status class (``2xx``), refusals by their problem code
from a closed list, everything else is a plain number. So a scrape, or a monitoring
system's long-kept history of scrapes, tells who used the relay no more than the relay's
own statistics do (``relay stats``).

Most values are counted where they happen: one middleware (requests, latency, refusals,
open event streams), a callback of the store's writer (group-commit batch sizes and
times) and one of the expiry task (purge runs). Stored envelopes and drop bytes are read
from the store when Prometheus scrapes, at most every ``REFRESH`` seconds; free disk space
is read then too.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from .request_keys import PROBLEM_CODE

if TYPE_CHECKING:
    from .config import RelayConfig
    from .service import RelayService

log = structlog.get_logger("relay")

EVENTS_ROUTE = "/v1/events"
REFRESH = 1.0
# Refusals worth an alert of their own; other problem codes count only in the requests.
REFUSAL_CODES = frozenset({
    "rate_limited", "too_many_connections", "storage_full", "quota_exceeded",
    "drop_quota_exceeded", "too_many_uploads", "internal_error",
})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def status_class(status: int) -> str:
    """``2xx``, ``4xx``, ...: the label a status is counted under."""
    return f"{status // 100}xx"


def route_pattern(request: web.Request) -> str:
    """The matched route's pattern, never the path with its values."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


class RelayMetrics:
    """The relay's metrics in their own registry (one per app, so tests can run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("kok_relay_requests", "HTTP requests answered",
                                ("route", "method", "status_class"), registry=r)
        self.latency = Histogram("kok_relay_request_duration_seconds",
                                 "Time to answer a request (event streams excluded)",
                                 ("route",), buckets=LATENCY_BUCKETS, registry=r)
        self.refusals = Counter("kok_relay_refusals", "Refusals by problem code (closed list)",
                                ("code",), registry=r)
        self.event_streams = Gauge("kok_relay_open_event_streams",
                                   "Open WebSocket event streams", registry=r)
        self.batch_jobs = Histogram("kok_relay_commit_batch_jobs",
                                    "Writes stored by one group commit", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.commit_seconds = Histogram("kok_relay_commit_duration_seconds",
                                        "Time of one group commit: its statements and fsync",
                                        buckets=COMMIT_BUCKETS, registry=r)
        self.purge_runs = Counter("kok_relay_purge_runs", "Expiry passes run", registry=r)
        self.purge_failures = Counter("kok_relay_purge_failures", "Expiry passes that failed",
                                      registry=r)
        self.purged = Counter("kok_relay_purged_items", "Items deleted by expiry passes",
                              registry=r)
        self.envelopes = Gauge("kok_relay_stored_envelopes", "Envelopes waiting in mailboxes",
                               registry=r)
        self.envelope_bytes = Gauge("kok_relay_stored_envelope_bytes",
                                    "Bytes of sealed envelopes stored", registry=r)
        self.drops = Gauge("kok_relay_stored_drops", "File drops (complete or uploading)",
                           registry=r)
        self.drop_bytes = Gauge("kok_relay_stored_drop_bytes",
                                "Declared bytes of all file drops", registry=r)
        self.database_bytes = Gauge("kok_relay_database_bytes",
                                    "Size of the database files", registry=r)
        self.disk_free = Gauge("kok_relay_disk_free_bytes",
                               "Free bytes for the relay on the data file system", registry=r)
        self.up_since = Gauge("kok_relay_start_time_seconds", "When the relay started",
                              registry=r)
        self.up_since.set_to_current_time()
        self._refreshed = 0.0

    # --- hooks ---------------------------------------------------------------------------

    def observe_commit(self, jobs: int, seconds: float) -> None:
        """Called by the store's writer after each group commit."""
        self.batch_jobs.observe(jobs)
        self.commit_seconds.observe(seconds)

    def observe_purge(self, deleted: int | None) -> None:
        """Called by the expiry task after each pass (None: the pass failed)."""
        self.purge_runs.inc()
        if deleted is None:
            self.purge_failures.inc()
        else:
            self.purged.inc(deleted)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and time every request by route pattern; track open event streams."""
        route = route_pattern(request)
        stream = route == EVENTS_ROUTE and request.method == "GET"
        started = time.perf_counter()
        status = 500
        if stream:
            self.event_streams.inc()
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if stream:
                self.event_streams.dec()
            else:
                self.latency.labels(route).observe(time.perf_counter() - started)
            self.requests.labels(route, request.method, status_class(status)).inc()
            if status >= 400:  # a refusal (asking for a key a request lacks costs ~1.5 us)
                code = request.get(PROBLEM_CODE)
                if code in REFUSAL_CODES:
                    self.refusals.labels(code).inc()

    # --- values read at scrape time ------------------------------------------------------

    async def refresh(self, relay: RelayService) -> None:
        """Stored totals and free disk, at most every ``REFRESH`` seconds."""
        if time.monotonic() - self._refreshed < REFRESH:
            return
        self._refreshed = time.monotonic()
        stats = await relay.store.stats(int(time.time()))
        self.envelopes.set(stats.messages)
        self.envelope_bytes.set(stats.message_bytes)
        self.database_bytes.set(stats.database_bytes)
        self.drops.set(stats.drops)
        self.drop_bytes.set(stats.drop_bytes)
        self.disk_free.set(disk_free(relay.config))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def disk_free(config: RelayConfig) -> int:
    """The lower of the free bytes under the database and under the blobs."""
    free = []
    for path in (config.database_path.parent, config.blob_path):
        try:
            stat = os.statvfs(path)
        except OSError:
            continue
        free.append(stat.f_bavail * stat.f_frsize)
    return min(free) if free else 0


METRICS: web.AppKey[RelayMetrics] = web.AppKey("metrics", RelayMetrics)


def metrics_app(relay_app: web.Application, relay: RelayService) -> web.Application:
    """The listener's application: ``GET /metrics`` and nothing else."""
    metrics = relay_app[METRICS]

    async def scrape(request: web.Request) -> web.Response:
        try:
            await metrics.refresh(relay)
        except Exception as exc:  # the store is closing or busy: serve what we have
            log.warning("metrics_refresh_failed", error=type(exc).__name__)
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


async def start_listener(relay_app: web.Application, relay: RelayService,
                         config: RelayConfig) -> web.AppRunner | None:
    """Serve ``/metrics`` on ``[metrics] host:port`` when the port is set; else None."""
    if not config.metrics.port:
        return None
    runner = web.AppRunner(metrics_app(relay_app, relay), access_log=None,
                           handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, config.metrics.host, config.metrics.port, reuse_address=True)
    await site.start()
    log.info("metrics_listening", port=config.metrics.port)
    return runner
