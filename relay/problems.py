"""Refusals as ``application/problem+json`` (RFC 9457), with the relay's stable codes.

``problem_for`` turns every exception a handler raises into one answer: a ``RelayError``
into its status and code, a protocol rejection into 422 with the protocol's code,
aiohttp's own 404/405/413 into the same shape, anything unexpected into a bare 500 (the
details go to the log, never to the client).
"""

from __future__ import annotations

import json

import structlog
from aiohttp import web

from protocol.errors import ProtocolError

from .errors import (
    BodyTooLarge,
    MethodNotAllowed,
    NotFound,
    RelayError,
    code_of,
)
from .request_keys import PROBLEM_CODE

TYPE_BASE = "https://kok-relay.invalid/errors/"
SERVER_NAME = "kok-relay"
"""The ``Server`` header of every answer: no software versions for a scanner to match."""
log = structlog.get_logger("relay")


def problem(status: int, code: str, title: str, detail: str,
            headers: dict[str, str] | None = None) -> web.Response:
    """One problem+json answer."""
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "code": code,
            "detail": detail}
    return web.Response(status=status, text=json.dumps(body), headers=headers,
                        content_type="application/problem+json")


def from_relay_error(error: RelayError) -> web.Response:
    return problem(error.status, code_of(error), error.title, error.detail, error.headers)


def problem_for(request: web.Request, exc: Exception) -> web.Response:
    """The problem+json answer to ``exc`` raised while handling ``request`` (the relay's
    middleware, ``relay.edge``, asks this for every failure); re-raises an aiohttp
    exception that is an answer of its own (not 404, 405 or 413)."""
    if isinstance(exc, RelayError):
        request[PROBLEM_CODE] = code_of(exc)
        return from_relay_error(exc)
    if isinstance(exc, ProtocolError):
        request[PROBLEM_CODE] = exc.code
        return problem(422, exc.code, "The request breaks a protocol rule.", exc.message)
    if isinstance(exc, web.HTTPException):
        if exc.status == 404:
            mapped: RelayError = NotFound()
        elif exc.status == 405:
            mapped = MethodNotAllowed()
        elif exc.status == 413:
            mapped = BodyTooLarge()
        else:
            raise exc
        request[PROBLEM_CODE] = mapped.code
        return from_relay_error(mapped)
    # Type only: an exception's text may quote request data.
    log.error("internal_error", error=type(exc).__name__,
              route=getattr(request.match_info.route.resource, "canonical", "?"))
    request[PROBLEM_CODE] = "internal_error"
    return problem(500, "internal_error", "The relay failed unexpectedly.",
                   "The relay failed unexpectedly; the operator can find the error in the log.")
