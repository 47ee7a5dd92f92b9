"""Public facts about the relay: health, info, the OpenAPI document."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from protocol import PROTOCOL_VERSION, b64encode

from .. import __version__
from .common import now, ok, service


async def healthz(request: web.Request) -> web.Response:
    """Liveness for load balancers and tests."""
    return ok({"status": "ok"})


async def info(request: web.Request) -> web.Response:
    """Version, origin, network and log keys, limits and the relay's clock."""
    relay = service(request)
    config = relay.config
    return ok({
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "origin": config.origin,
        "origins": list(config.origins),
        "network_key": b64encode(config.network.network_key),
        "network_fingerprint": config.network.fingerprint,
        "log_key": b64encode(relay.log_key.public),
        "log_fingerprint": relay.log_key.fingerprint,
        "limits": config.limits.public(),
        "time": now(),
    })


def _openapi_text() -> str:
    return (resources.files("protocol") / "openapi.yaml").read_text("utf-8")


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API (``protocol/openapi.yaml``)."""
    return web.Response(text=_openapi_text(), content_type="application/yaml")
