"""Pages as the person sees them: templates, language, notices, and the app's shared keys.

Every piece of text from another organisation goes through the ``foreign`` filter: Jinja2
escapes HTML (autoescape), and control and bidi characters are shown as visible
``\\uXXXX`` (``client.safetext``, the same rule as the CLI), so a subject cannot reorder
what is around it or hide a warning.
"""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from protocol.keys import format_fingerprint

from .._client import Client
from ..orgs_list import display_name
from ..safetext import printable
from .security import Guard, Session
from .state import AppState
from .words import Words, negotiate

GUARD = web.AppKey("guard", Guard)
STATE = web.AppKey("state", AppState)
TEMPLATES = web.AppKey("templates", jinja2.Environment)
SESSION = web.RequestKey("session", Session)
"""The app session of a request, set by the guard once its cookie is checked."""
LANG_COOKIE = "kok_app_lang"


def foreign(text: Any) -> str:
    """Text from elsewhere, line by line, with control and bidi characters made visible."""
    lines = str(text).replace("\r\n", "\n").split("\n")
    return "\n".join(printable(line) for line in lines)


def template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("client.app", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True)
    env.filters["foreign"] = foreign
    env.filters["fp"] = format_fingerprint
    env.filters["display_name"] = display_name
    return env


def language_of(request: web.Request) -> str:
    return negotiate(request.headers.get("Accept-Language"), request.cookies.get(LANG_COOKIE))


def words_of(request: web.Request) -> Words:
    return Words(language_of(request))


def client_of(request: web.Request) -> Client:
    """The unlocked client (the guard sends a locked app to the unlock page first)."""
    client = request.app[STATE].client
    if client is None:
        raise web.HTTPSeeOther("/unlock")
    return client


def render(request: web.Request, template: str, *, status: int = 200,
           **context: Any) -> web.Response:
    """A page in the request's language, with the session's CSRF token and one-time notice."""
    state, session = request.app[STATE], request.get(SESSION)
    words = words_of(request)
    flash = focus = None
    if isinstance(session, Session):
        flash, session.flash = session.flash, None
        focus, session.focus = session.focus, None
    client = state.client
    html = request.app[TEMPLATES].get_template(template).render(
        _=words, lang=words.lang, csrf=session.csrf if isinstance(session, Session) else "",
        path=request.path, flash=flash, focus=context.pop("focus", None) or focus,
        unlocked=client is not None, is_admin=client is not None and client.kind == "org",
        profile=client.profile.info.name if client is not None else (state.profile or ""),
        idle_seconds=state.idle_seconds, unseen=state.unseen,
        errors=context.pop("errors", []), **context)
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


def notice(request: web.Request, kind: str, sentence: str, focus: str = "notice") -> None:
    """Show ``sentence`` on the next page (after a redirect) and move focus to it."""
    session = request.get(SESSION)
    if isinstance(session, Session):
        session.flash, session.focus = (kind, sentence), focus
