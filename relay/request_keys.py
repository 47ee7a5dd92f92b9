"""Typed keys for what one middleware or handler leaves on a request for another.

``PROBLEM_CODE`` is set by the problem middleware when a request is refused, and read by
the access log and the metrics; ``SESSION`` is set by ``require_session`` once a bearer
token is checked, and read by the access log (as a pseudonym only).
"""

from __future__ import annotations

from aiohttp import web

from .service import Session

PROBLEM_CODE = web.RequestKey("problem_code", str)
SESSION = web.RequestKey("session", Session)
