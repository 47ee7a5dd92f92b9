"""Running the relay: listen (optionally with TLS), serve until SIGTERM/SIGINT, shut down."""

from __future__ import annotations

import asyncio
import signal
import ssl

import structlog
from aiohttp import web

from .app import create_app
from .config import RelayConfig

log = structlog.get_logger("relay")


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


async def serve(config: RelayConfig) -> None:
    """Serve until a termination signal arrives."""
    app = create_app(config)
    # access_log=None: aiohttp's access log writes client IPs; ours does not (privacylog).
    # keepalive_timeout bounds both the wait for a request's headers (aiohttp arms it when a
    # connection opens and after every answer; bytes of an unfinished head do not reset
    # it) and idle keep-alive: a slow-headers client is cut off after header_timeout.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0,
                           keepalive_timeout=max(1, config.server.header_timeout))
    await runner.setup()
    site = web.TCPSite(runner, config.server.host, config.server.port,
                       ssl_context=tls_context(config), reuse_address=True)
    await site.start()
    # The port only: the bind address is configuration, and addresses stay out of logs.
    log.info("listening", port=config.server.port, tls=bool(config.server.tls_cert))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(config: RelayConfig) -> None:
    """Run the event loop (with uvloop when it is installed) until the relay stops."""
    try:
        import uvloop  # optional speed-up
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
