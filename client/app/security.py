"""What keeps other web pages and other local users out of the staff app.

Theory of operation
-------------------
The app listens on 127.0.0.1 only, but any web page the person visits can make their
browser send requests there, and a hostile DNS name can be re-pointed at 127.0.0.1 (DNS
rebinding). So:

* Every request must name the app itself in ``Host`` (``127.0.0.1:PORT``); an ``Origin``
  must be the app's own (or ``null``, which browsers send for the app's own posts under
  ``no-referrer``), and ``Sec-Fetch-Site`` other than ``same-origin``/``none`` is refused.
* The only way in is the launch URL printed at start: its token works once and is swapped
  for a session cookie (HttpOnly, SameSite=Strict) that scripts cannot read and other
  sites' requests do not carry.
* Every state-changing request (POST) carries the session's CSRF token (a form field, or
  ``X-CSRF-Token`` from the app's own script), compared in constant time.
* Every answer forbids framing, inline script and remote origins (CSP), sniffing, caching
  and sending a Referer.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

SESSION_COOKIE = "kok_app_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Session:
    """One browser that came in through the launch URL."""

    id: str
    csrf: str
    flash: tuple[str, str] | None = None
    """A one-time notice for the next page: (kind, sentence)."""
    focus: str | None = None
    """The element id the next page should move focus to."""


@dataclass
class Guard:
    """The launch token, the sessions and the checks every request passes."""

    port: int
    launch_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    sessions: dict[str, Session] = field(default_factory=dict)
    launch_used: bool = False

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def launch_url(self) -> str:
        return f"{self.origin}/launch/{self.launch_token}"

    def redeem(self, token: str) -> Session | None:
        """A new session for the launch token, once; None for a wrong or used token."""
        if self.launch_used or not hmac.compare_digest(token.encode(),
                                                       self.launch_token.encode()):
            return None
        self.launch_used = True
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))
        self.sessions[session.id] = session
        return session

    def session_of(self, request: web.Request) -> Session | None:
        sid = request.cookies.get(SESSION_COOKIE, "")
        for known, session in self.sessions.items():
            if hmac.compare_digest(known.encode(), sid.encode()):
                return session
        return None

    def host_ok(self, request: web.Request) -> bool:
        return request.headers.get("Host", "") == f"127.0.0.1:{self.port}"

    def origin_ok(self, request: web.Request) -> bool:
        # Under ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` even for
        # the app's own form posts, so ``null`` cannot be refused; ``Sec-Fetch-Site`` then
        # tells a cross-site request apart (and it would carry neither the SameSite=Strict
        # cookie nor the CSRF token anyway).
        origin = request.headers.get("Origin")
        if origin is not None and origin not in (self.origin, "null"):
            return False
        return request.headers.get("Sec-Fetch-Site", "same-origin") in (
            "same-origin", "none")

    @staticmethod
    def csrf_ok(session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token).encode(), session.csrf.encode())


def refuse(status: int, text: str) -> web.Response:
    """A plain refusal: no page, no detail beyond the sentence."""
    return web.Response(status=status, text=text, content_type="text/plain", charset="utf-8")


def security_headers(response: web.StreamResponse, *, static: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not static:
        response.headers["Cache-Control"] = "no-store"
