"""Every failure leaves the relay as problem+json; an unexpected one says nothing inside.

The real application (``create_app``) serves through aiohttp's test server, with one extra
route that fails the way a bug would.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from structlog.testing import capture_logs

from protocol import SigningKeyPair
from relay.app import create_app
from relay.config import load_config
from relay.devnetwork import network_anchor
from relay.initdir import init_relay
from tests.support.actors import rand

SECRET_TEXT = "patient Frau K. 127.0.0.1"


async def _bug(request: web.Request) -> web.Response:
    raise RuntimeError(SECRET_TEXT)


async def test_failures_are_problems_and_a_bug_leaks_nothing(
        tmp_path: Path, aiohttp_client: Callable[[web.Application], Awaitable[Any]]) -> None:
    anchor = tmp_path / "network.json"
    anchor.write_text(json.dumps(network_anchor("Net", SigningKeyPair.from_seed(rand()))))
    app = create_app(load_config(init_relay(tmp_path / "relay", anchor), env={}))
    app.router.add_get("/v1/test-bug", _bug)
    client = await aiohttp_client(app)

    with capture_logs() as logs:
        answer = await client.get("/v1/test-bug")
        body = await answer.json(content_type="application/problem+json")
    assert answer.status == 500 and body["code"] == "internal_error"
    assert SECRET_TEXT not in json.dumps(body)
    errors = [e for e in logs if e["event"] == "internal_error"]
    assert errors == [{"event": "internal_error", "log_level": "error", "error": "RuntimeError",
                       "route": "/v1/test-bug"}]

    for method, path, status, code in (("GET", "/v1/no-such-thing", 404, "not_found"),
                                       ("PUT", "/v1/info", 405, "method_not_allowed")):
        answer = await client.request(method, path)
        assert answer.status == status
        assert answer.content_type == "application/problem+json"
        assert (await answer.json(content_type=None))["code"] == code
