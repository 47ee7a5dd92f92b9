"""The staff pages: unlock, inbox, message, compose, sent, search, directory, settings.

Each handler reads the form, calls one ``Client`` method and renders a template or
redirects with a notice (GOV.UK's "what happened, what next"). A ``KokError`` becomes an
error summary on the same page, in the page's language, linked to the field it is about.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from .. import agent_client
from ..errors import KokError, ProfileError, UsageError
from ..export import message_text, text_name
from ..passphrase_strength import weakness_key
from ..profile import load_profile, save_keystore
from ..sending import MAX_TTL
from .rendering import LANG_COOKIE, SESSION, STATE, client_of, notice, render, words_of
from .security import CSRF_FIELD, Guard, Session, security_headers

DAY = 86400
KEEP_DAYS = (1, 3, 7, 14, 30)
DEFAULT_KEEP_DAYS = 7
MESSAGE_ID = re.compile(r"[0-9a-f]{32}")
ORG_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
MAX_SUBJECT_FIELD = 4096
MAX_BODY_FIELD = 1024 * 1024
PIECE = 256 * 1024


def message_id(request: web.Request) -> str:
    value = request.match_info["id"]
    if not MESSAGE_ID.fullmatch(value):
        raise web.HTTPNotFound()
    return value


def safe_return(path: Any) -> str:
    """A same-app path to go back to (never another site, never ``//host``)."""
    text = str(path or "")
    if text.startswith("/") and not text.startswith("//") and "\\" not in text:
        return text
    return "/inbox"


# --- unlock, lock, keep alive, language ------------------------------------------------


async def unlock_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if state.unlocked or await state.unlock_from_agent() is not None:
        raise web.HTTPSeeOther("/inbox")
    return render(request, "unlock.html", idle=state.locked_for_idle,
                  agent_ended=state.locked_for_agent)


async def unlock_post(request: web.Request) -> web.StreamResponse:
    state, words = request.app[STATE], words_of(request)
    form = await request.post()
    passphrase = str(form.get("passphrase", ""))
    if not passphrase:
        return render(request, "unlock.html", status=400, idle=False,
                                errors=[("passphrase", words("app.unlock.empty"))])
    try:
        await state.unlock(passphrase)
    except ProfileError as exc:
        message = (words("app.unlock.wrong") if exc.code in ("wrong_passphrase", "bad_passphrase")
                   else words.error(exc))
        return render(request, "unlock.html", status=400, idle=False,
                                errors=[("passphrase", message)])
    except KokError as exc:
        return render(request, "unlock.html", status=400, idle=False,
                                errors=[("passphrase", words.error(exc))])
    notice(request, "success", words("app.unlock.done"))
    raise web.HTTPSeeOther("/inbox")


async def lock_post(request: web.Request) -> web.StreamResponse:
    await request.app[STATE].lock()
    raise web.HTTPSeeOther("/unlock")


async def keepalive_post(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.touch()
    return web.json_response({"seconds_left": int(state.seconds_left())})


async def language_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    lang = str(form.get("lang", ""))
    target = safe_return(form.get("return"))
    response = web.HTTPSeeOther(target)
    if lang in ("en", "de"):
        response.set_cookie(LANG_COOKIE, lang, httponly=True, samesite="Strict",
                            path="/", max_age=365 * DAY)
    return response


# --- inbox, message, attachment -------------------------------------------------------


async def inbox_page(request: web.Request) -> web.StreamResponse:
    client, state = client_of(request), request.app[STATE]
    state.unseen = 0
    messages = await client.inbox()
    orgs = {o.org_id: o for o in await client.orgs(refresh=False)}
    return render(request, "inbox.html", messages=messages,
                  threads=inbox_threads(messages, await client.sent()), orgs=orgs,
                  listen_problem=state.listen_problem)


def inbox_threads(messages: list[Any], sent: list[Any]) -> list[dict[str, Any]]:
    """One entry per conversation, newest first: its newest received message (the oldest
    unread one, if any is unread), whether any is unread, and how many messages it holds
    (received and sent)."""
    sizes = Counter(m.thread for m in messages) + Counter(s.thread for s in sent)
    by_thread: dict[str, list[Any]] = {}
    for m in messages:  # newest first
        by_thread.setdefault(m.thread, []).append(m)
    out = []
    for thread, items in by_thread.items():
        unread = [m for m in items if not m.read]
        out.append({"message": unread[-1] if unread else items[0], "unread": bool(unread),
                    "size": sizes[thread], "newest": items[0]})
    return out


async def sync_post(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    try:
        report = await client.sync()
    except KokError as exc:
        notice(request, "danger", words.error(exc))
    else:
        notice(request, "success", words.n("app.inbox.synced", len(report.messages)))
    raise web.HTTPSeeOther("/inbox")


async def message_page(request: web.Request) -> web.StreamResponse:
    client = client_of(request)
    full = message_id(request)
    try:
        message = await client.read(full)
    except UsageError as exc:
        raise web.HTTPNotFound() from exc
    thread = await client.thread(full)
    orgs = {o.org_id: o for o in await client.orgs(refresh=False)}
    return render(request, "message.html", m=message, thread=thread, orgs=orgs)


async def thread_page(request: web.Request) -> web.StreamResponse:
    client = client_of(request)
    try:
        thread = await client.thread(message_id(request))
    except UsageError as exc:
        raise web.HTTPNotFound() from exc
    orgs = {o.org_id: o for o in await client.orgs(refresh=False)}
    return render(request, "thread.html", thread=thread, orgs=orgs)


async def attachment_get(request: web.Request) -> web.StreamResponse:
    client = client_of(request)
    full = message_id(request)
    try:
        index = int(request.match_info["n"])
        stream = await client.open_attachment(full, index)
    except (ValueError, UsageError) as exc:
        raise web.HTTPNotFound() from exc
    response = web.StreamResponse(headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": _disposition(stream.name),
        "Content-Length": str(stream.size),
    })
    security_headers(response)
    await response.prepare(request)
    try:
        async for piece in stream.chunks():
            await response.write(piece)
    except (KokError, OSError):
        # A failed check after the headers went out: cut the connection, so the browser
        # marks the download as failed instead of keeping a partial file as complete.
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


async def keep_post(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    full = message_id(request)
    form = await request.post()
    keep = str(form.get("keep", "1")) == "1"
    try:
        message = await client.keep(full, keep)
    except UsageError as exc:
        raise web.HTTPNotFound() from exc
    if message.kept:
        notice(request, "success", words("app.message.kept_done"))
    else:
        notice(request, "success", words("app.message.unkept_done",
                                         when=words.time(message.deletes_at)))
    raise web.HTTPSeeOther(f"/message/{full}")


async def export_get(request: web.Request) -> web.StreamResponse:
    """The message as a text file download, for a case record (outside retention)."""
    client, words = client_of(request), words_of(request)
    try:
        message = await client.read(message_id(request))
    except UsageError as exc:
        raise web.HTTPNotFound() from exc
    name = text_name(message)
    text = message_text(message, client.now(), words, words.time)
    response = web.Response(body=text.encode("utf-8"), headers={
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Disposition": _disposition(name),
    })
    security_headers(response)
    return response


def _disposition(name: str) -> str:
    from urllib.parse import quote

    ascii_name = re.sub(r'[^A-Za-z0-9._ -]', "_", name) or "attachment"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- compose --------------------------------------------------------------------------


async def compose_page(request: web.Request) -> web.StreamResponse:
    client = client_of(request)
    reply = request.query.get("reply", "")
    values: dict[str, Any] = {"to": [], "subject": "", "body": "", "keep": DEFAULT_KEEP_DAYS,
                              "reply_to": ""}
    if MESSAGE_ID.fullmatch(reply):
        with contextlib.suppress(UsageError):
            parent = await client.message(reply)  # replying is not opening it
            values.update(to=[parent.from_org], reply_to=parent.id,
                          subject=parent.subject if parent.subject.lower().startswith("re:")
                          else f"Re: {parent.subject}")
    return await _compose(request, values)


async def _compose(request: web.Request, values: dict[str, Any], *, status: int = 200,
                   errors: list[tuple[str, str]] | None = None) -> web.Response:
    client = client_of(request)
    orgs = [o for o in await client.orgs(refresh=False)
            if o.can_receive and o.org_id != client.org_id]
    return render(request, "compose.html", status=status, orgs=orgs, values=values,
                            keep_days=KEEP_DAYS, errors=errors or [])


class Upload:
    """An uploaded file kept in memory-backed storage (never on disk) until it is sent."""

    def __init__(self, name: str) -> None:
        self.name = name
        if not hasattr(os, "memfd_create"):  # not Linux: refuse rather than touch the disk
            raise web.HTTPNotImplemented(text="Attachments need Linux (memory-backed files).")
        self.fd = os.memfd_create("kok-attachment", os.MFD_CLOEXEC)
        self.size = 0

    @property
    def path(self) -> Path:
        return Path(f"/proc/self/fd/{self.fd}")

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)
        self.size += len(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


async def read_multipart(request: web.Request, session: Session, file_field: str,
                         text_limits: dict[str, int]) -> tuple[dict[str, list[str]], list[Upload]]:
    """Fields and files of a multipart form; the CSRF token must be the first field."""
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as exc:
        raise web.HTTPBadRequest(text="expected a form upload") from exc
    first = await reader.next()
    if not isinstance(first, BodyPartReader) or first.name != CSRF_FIELD or \
            not Guard.csrf_ok(session, (await first.read(decode=True)).decode("utf-8", "replace")):
        raise web.HTTPForbidden(text="The form is out of date: go back, reload it and try again.")
    fields: dict[str, list[str]] = {}
    uploads: list[Upload] = []
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == file_field:
                if not part.filename:
                    await part.release()
                    continue
                upload = Upload(Path(part.filename).name)
                uploads.append(upload)
                while piece := await part.read_chunk(PIECE):
                    await asyncio.to_thread(upload.write, piece)
                continue
            limit = text_limits.get(part.name)
            if limit is None:
                await part.release()
                continue
            data = bytearray()
            while piece := await part.read_chunk(PIECE):
                data += piece
                if len(data) > limit:
                    raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(data))
            fields.setdefault(part.name, []).append(data.decode("utf-8", "replace"))
    except BaseException:
        for upload in uploads:
            upload.close()
        raise
    return fields, uploads


async def compose_post(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    session = request[SESSION]
    fields, uploads = await read_multipart(
        request, session, "files",
        {"to": 64, "subject": MAX_SUBJECT_FIELD, "body": MAX_BODY_FIELD, "keep": 8,
         "reply_to": 64})
    try:
        to = [o for o in fields.get("to", []) if ORG_ID.fullmatch(o)]
        subject = (fields.get("subject") or [""])[0].strip()
        body = (fields.get("body") or [""])[0].replace("\r\n", "\n")
        reply_to = (fields.get("reply_to") or [""])[0]
        keep = (fields.get("keep") or [str(DEFAULT_KEEP_DAYS)])[0]
        keep_days = int(keep) if keep.isdigit() and int(keep) in KEEP_DAYS else DEFAULT_KEEP_DAYS
        reply_to = reply_to if MESSAGE_ID.fullmatch(reply_to) else ""
        values = {"to": to, "subject": subject, "body": body, "keep": keep_days,
                  "reply_to": reply_to}
        errors = []
        if not to:
            errors.append(("to", words("app.compose.error_to")))
        if not subject:
            errors.append(("subject", words("app.compose.error_subject")))
        if not body.strip():
            errors.append(("body", words("app.compose.error_body")))
        if errors:
            if uploads:
                errors.append(("files", words("app.compose.error_files_again")))
            return await _compose(request, values, status=400, errors=errors)
        try:
            message = await client.send(
                to, subject, body, ttl=min(keep_days * DAY, MAX_TTL),
                reply_to=reply_to or None,
                attachments=[(u.path, u.name) for u in uploads])
        except KokError as exc:
            errors = [(_field_of(exc), words.error(exc))]
            if uploads:
                errors.append(("files", words("app.compose.error_files_again")))
            return await _compose(request, values, status=400, errors=errors)
    finally:
        for upload in uploads:
            upload.close()
    if message in await client.queued():  # the relay is away: it goes when it is back
        notice(request, "info", words("app.compose.queued", subject=subject))
    else:
        notice(request, "success", words("app.compose.sent", subject=subject))
    raise web.HTTPSeeOther("/sent")


def _field_of(exc: KokError) -> str:
    if exc.code.startswith(("file_", "attachment", "too_many_attachments", "drop")):
        return "files"
    if exc.code in ("bad_message",):
        return "body"
    return "to"


# --- sent, retract --------------------------------------------------------------------


async def sent_page(request: web.Request) -> web.StreamResponse:
    client = client_of(request)
    try:
        items = await client.sent(status=True)
        offline = False
    except KokError:
        items, offline = await client.sent(), True
    orgs = {o.org_id: o for o in await client.orgs(refresh=False)}
    return render(request, "sent.html", items=items, orgs=orgs, offline=offline)


async def retract_post(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    full = message_id(request)
    try:
        status = await client.retract(full)
    except KokError as exc:
        notice(request, "danger", words.error(exc), focus="notice")
    else:
        notice(request, "success",
                         words("app.sent.retracted", subject=status.subject))
    raise web.HTTPSeeOther("/sent")


# --- search ---------------------------------------------------------------------------


async def search_page(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    text = request.query.get("q", "")
    hits, errors = None, []
    if "q" in request.query:
        if text.strip():
            hits = await client.search(text)
        else:
            errors = [("q", words("error.empty_search"))]
    orgs = {o.org_id: o for o in await client.orgs(refresh=False)}
    return render(request, "search.html", status=400 if errors else 200, q=text,
                            hits=hits, orgs=orgs, errors=errors,
                            focus="results" if hits is not None else None)


# --- directory ------------------------------------------------------------------------


async def directory_page(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    problem = None
    try:
        orgs = await client.orgs()
    except KokError as exc:
        orgs, problem = await client.orgs(refresh=False), words.error(exc)
    return render(request, "directory.html", orgs=orgs, problem=problem)


async def org_page(request: web.Request, *, errors: list[tuple[str, str]] | None = None,
                   status: int = 200, code: str = "") -> web.Response:
    client = client_of(request)
    org_id = request.match_info["org"]
    entry = next((o for o in await client.orgs(refresh=False) if o.org_id == org_id), None)
    if entry is None:
        raise web.HTTPNotFound()
    info = client.org_info(org_id)
    from ..verification import pair_code

    return render(request, "org.html", status=status, org=entry, info=info,
                            safety_code=pair_code(client.context, org_id), code=code,
                            errors=errors or [])


async def org_get(request: web.Request) -> web.StreamResponse:
    return await org_page(request)


async def verify_post(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    org_id = request.match_info["org"]
    form = await request.post()
    code = str(form.get("code", ""))
    if not code.strip():
        return await org_page(request, status=400, code=code,
                              errors=[("code", words("app.org.error_code_empty"))])
    try:
        await client.verify(org_id, code)
    except KokError as exc:
        return await org_page(request, status=400, code=code,
                              errors=[("code", words.error(exc))])
    notice(request, "success", words("app.org.verified_done"))
    raise web.HTTPSeeOther(f"/directory/{org_id}")


async def unverify_get(request: web.Request) -> web.StreamResponse:
    client = client_of(request)
    org_id = request.match_info["org"]
    entry = next((o for o in await client.orgs(refresh=False) if o.org_id == org_id), None)
    if entry is None or entry.verification not in ("verified", "changed"):
        raise web.HTTPNotFound()
    return render(request, "org_unverify.html", org=entry)


async def unverify_post(request: web.Request) -> web.StreamResponse:
    client, words = client_of(request), words_of(request)
    org_id = request.match_info["org"]
    if not ORG_ID.fullmatch(org_id):
        raise web.HTTPNotFound()
    try:
        now = await client.unverify(org_id)
    except KokError as exc:
        notice(request, "danger", words.error(exc))
        raise web.HTTPSeeOther(f"/directory/{org_id}") from None
    said = words("app.org.unverified_done")
    if now == "org_verified":
        said += " " + words("app.org.unverified_org_still")
    notice(request, "success", said)
    raise web.HTTPSeeOther(f"/directory/{org_id}")


# --- settings -------------------------------------------------------------------------


async def settings_page(request: web.Request, *, errors: list[tuple[str, str]] | None = None,
                        status: int = 200) -> web.Response:
    from .state import MAX_IDLE_MINUTES, MIN_IDLE_MINUTES

    state = request.app[STATE]
    return render(request, "settings.html", status=status,
                            idle_minutes=state.idle_minutes, min_idle=MIN_IDLE_MINUTES,
                            max_idle=MAX_IDLE_MINUTES, errors=errors or [])


async def settings_get(request: web.Request) -> web.StreamResponse:
    return await settings_page(request)


async def idle_post(request: web.Request) -> web.StreamResponse:
    from .state import MAX_IDLE_MINUTES, MIN_IDLE_MINUTES

    state, words = request.app[STATE], words_of(request)
    form = await request.post()
    text = str(form.get("minutes", "")).strip()
    if not text.isdigit() or not MIN_IDLE_MINUTES <= int(text) <= MAX_IDLE_MINUTES:
        return await settings_page(request, status=400, errors=[
            ("minutes", words("app.settings.error_minutes", min=MIN_IDLE_MINUTES,
                              max=MAX_IDLE_MINUTES))])
    state.idle_minutes = int(text)
    notice(request, "success", words.n("app.settings.idle_done", state.idle_minutes))
    raise web.HTTPSeeOther("/settings")


async def passphrase_post(request: web.Request) -> web.StreamResponse:
    client, words, state = client_of(request), words_of(request), request.app[STATE]
    form = await request.post()
    current, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
    errors = []
    opened = None
    if not current:
        errors.append(("current", words("app.settings.error_current_empty")))
    if not new:
        errors.append(("new", words("app.settings.error_new_empty")))
    elif new != again:
        errors.append(("again", words("app.settings.error_again")))
    elif (weak := await asyncio.to_thread(weakness_key, new, [client.profile.name])):
        errors.append(("new", words("prompt.weak_passphrase", reason=words(weak))))
    if not errors:
        try:
            opened = await asyncio.to_thread(load_profile(state.home, client.profile.name)
                                             .open_keystore, current)
        except ProfileError:
            errors.append(("current", words("app.unlock.wrong")))
    if errors:
        return await settings_page(request, status=400, errors=errors)
    if state.keys_from_agent and opened is not None:
        # the agent's copy cannot change the passphrase (it never hands it out): the file's
        # own copy, just opened with the current one, is changed, and the app reopens with it
        await asyncio.to_thread(save_keystore, opened, new)
        await state.lock()
        await asyncio.to_thread(agent_client.lock, client.profile)
        await state.unlock(new)
    else:
        await asyncio.to_thread(save_keystore, client.keystore, new)
        # the agent holds the old passphrase, which no longer opens the keystore (kok passwd)
        await asyncio.to_thread(agent_client.lock, client.profile)
    if opened is not None:
        opened.secrets.clear()
    notice(request, "success", words("app.settings.passphrase_done"))
    raise web.HTTPSeeOther("/settings")


# --- live updates ---------------------------------------------------------------------


async def events_get(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the number of messages that arrived since the inbox was shown."""
    state = request.app[STATE]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    queue = state.subscribe()
    try:
        while True:
            try:
                count = await asyncio.wait_for(queue.get(), timeout=20)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            data = json.dumps({"unseen": count})
            await response.write(f"event: message\ndata: {data}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        state.unsubscribe(queue)
    return response


async def favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/inbox")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", root)
    r.add_get("/favicon.ico", favicon)
    r.add_get("/unlock", unlock_page)
    r.add_post("/unlock", unlock_post)
    r.add_post("/lock", lock_post)
    r.add_post("/keepalive", keepalive_post)
    r.add_post("/settings/language", language_post)
    r.add_get("/inbox", inbox_page)
    r.add_post("/sync", sync_post)
    r.add_get("/message/{id}", message_page)
    r.add_get("/message/{id}/attachment/{n}", attachment_get)
    r.add_post("/message/{id}/keep", keep_post)
    r.add_get("/message/{id}/export", export_get)
    r.add_get("/thread/{id}", thread_page)
    r.add_get("/compose", compose_page)
    r.add_post("/compose", compose_post)
    r.add_get("/sent", sent_page)
    r.add_post("/sent/{id}/retract", retract_post)
    r.add_get("/search", search_page)
    r.add_get("/directory", directory_page)
    r.add_get("/directory/{org}", org_get)
    r.add_post("/directory/{org}/verify", verify_post)
    r.add_get("/directory/{org}/unverify", unverify_get)
    r.add_post("/directory/{org}/unverify", unverify_post)
    r.add_get("/settings", settings_get)
    r.add_post("/settings/idle", idle_post)
    r.add_post("/settings/passphrase", passphrase_post)
    r.add_get("/events", events_get)
