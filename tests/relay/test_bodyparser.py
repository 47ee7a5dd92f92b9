"""Large bodies are parsed in a child process: values and refusals come back intact."""

from __future__ import annotations

import json
import os

import pytest

from protocol import b64encode
from relay import wire
from relay.bodyparser import BodyParser
from relay.errors import InvalidRequest, MalformedBody, code_of
from relay.handlers.common import _parse
from tests.support.actors import rand


def _send(**extra: object) -> bytes:
    return json.dumps({"idempotency_key": b64encode(rand(16)), "envelopes": [
        {"to_org": "org-a", "epoch": 1, "sealed": b64encode(rand(300_000))}], **extra}).encode()


async def test_values_and_refusals_come_back_from_the_child_as_raised() -> None:
    parser = BodyParser()
    try:
        body = _send()
        parsed = await parser.parse(_parse, body, wire.send_request)
        assert parsed == _parse(body, wire.send_request)
        assert parser._pool is not None  # it went to the child
        with pytest.raises(InvalidRequest) as refused:
            await parser.parse(_parse, _send(sender="me"), wire.send_request)
        # the code lives on the instance: a refusal rebuilt from its message alone
        # would answer bad_field
        assert code_of(refused.value) == "unknown_field"
        assert "sender" in refused.value.detail
        with pytest.raises(MalformedBody):
            await parser.parse(_parse, _send()[:-1], wire.send_request)
        children = {p.pid for p in parser._pool._processes.values()}
        assert children and os.getpid() not in children
    finally:
        parser.close()


async def test_a_parser_that_cannot_go_to_another_process_runs_here() -> None:
    parser = BodyParser()
    try:
        body = _send()
        parsed = await parser.parse(_parse, body, lambda value: wire.send_request(value))
        assert parsed == _parse(body, wire.send_request)
        assert parser._pool is None
    finally:
        parser.close()
