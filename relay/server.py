"""Running the relay: listen (optionally with TLS), serve until SIGTERM/SIGINT, shut down."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import ssl
import sys

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from .app import create_app
from .config import RelayConfig
from .errors import RelayError
from .handlers.common import SERVICE
from .metrics import start_listener
from .problems import SERVER_NAME, problem

log = structlog.get_logger("relay")
# After SIGTERM, requests in flight get this long to finish; then they are cancelled (an
# upload keeps what it wrote and resumes after the restart). Event streams are closed at
# once (1001). So the relay exits within about two seconds, well inside systemd's
# TimeoutStopSec.
SHUTDOWN_GRACE = 1.0


class _RelayRequestHandler(RequestHandler):
    """aiohttp's connection handler, with the relay's answer to a request it cannot parse.

    aiohttp answers a malformed request (a NUL in a header, a bad request line) itself,
    before any middleware, and logs the parser's message, which quotes the raw header: a
    bearer or upload token would land in the log and be echoed to the client. Here the
    answer is problem+json naming nothing from the request, and only the status is logged.
    """

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        error = type(exc).__name__ if exc is not None else None
        if status < 500:
            log.warning("request_unreadable", status=status, error=error)
        else:
            log.error("request_failed", status=status, error=error)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had begun: the connection is closed instead")
        if status < 500:
            answer = problem(status, RelayError.code, RelayError.title,
                             "The request could not be parsed as HTTP.")
        else:
            answer = problem(status, "internal_error", "The relay failed.",
                             "The relay could not answer this request.")
        answer.headers["Server"] = SERVER_NAME
        answer.force_close()
        return answer


class _RelayServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _RelayRequestHandler(self, loop=self._loop, **self._kwargs)


class _RelayRunner(web.AppRunner):
    """An ``AppRunner`` whose connections use ``_RelayRequestHandler``."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _RelayServer  # aiohttp has no parameter for the handler class
        return server


def tls_context(config: RelayConfig) -> ssl.SSLContext | None:
    """A server TLS context when the config names a certificate and key."""
    if not config.server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert = config.directory / config.server.tls_cert
    key = config.directory / config.server.tls_key
    context.load_cert_chain(str(cert), str(key))
    return context


async def serve(config: RelayConfig, listen_fd: int | None = None) -> None:
    """Serve until a termination signal arrives (on an inherited socket, if given)."""
    app = create_app(config)
    # access_log=None: aiohttp's access log writes client IPs; ours does not (privacylog).
    # keepalive_timeout bounds both the wait for a request's headers (aiohttp arms it when a
    # connection opens and after every answer; bytes of an unfinished head do not reset
    # it) and idle keep-alive: a slow-headers client is cut off after header_timeout.
    runner = _RelayRunner(app, access_log=None, handle_signals=False,
                          shutdown_timeout=SHUTDOWN_GRACE,
                          keepalive_timeout=max(1, config.server.header_timeout))
    await runner.setup()
    site: web.BaseSite
    if listen_fd is not None:  # one of several workers (relay/workers.py)
        site = web.SockSite(runner, socket.socket(fileno=listen_fd),
                            ssl_context=tls_context(config))
    else:
        site = web.TCPSite(runner, config.server.host, config.server.port,
                           ssl_context=tls_context(config), reuse_address=True)
    await site.start()
    _settle_gc()
    # The port only: the bind address is configuration, and addresses stay out of logs.
    log.info("listening", port=config.server.port, tls=bool(config.server.tls_cert))
    metrics = await start_listener(app, app[SERVICE], config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if metrics is not None:
            await metrics.cleanup()
        await runner.cleanup()


GC_THRESHOLDS = (20_000, 20, 20)
"""Python's default is (700, 10, 10): a young collection every 700 new container objects,
which a request makes in a few dozen (request, headers, futures, answer dicts)."""


def _settle_gc() -> None:
    """Collections cost the relay ~30 us per send at 64 concurrent senders (231 against
    262 us of CPU per send in one A/B run): everything built while starting (the key log,
    the store, the routes) lives as long as the process, so it is frozen out of every
    later collection, and young collections run ~30 times less often. Garbage cycles are
    still collected, only later; memory grows by at most a few MiB of young objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


SWITCH_INTERVAL = 0.0005
"""Seconds a thread may hold the GIL while another waits for it (Python's default: 0.005)."""


def run(config: RelayConfig, listen_fd: int | None = None) -> None:
    """Run the event loop (with uvloop when it is installed) until the relay stops."""
    # A large body is parsed on a worker thread, and SQLite runs on its own: while one
    # of them holds the GIL, the event loop waits for it after every poll. The default
    # 5 ms turn made each small request wait several such turns behind a large one.
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        import uvloop  # optional speed-up
    except ImportError:
        asyncio.run(serve(config, listen_fd))
    else:
        uvloop.run(serve(config, listen_fd))
