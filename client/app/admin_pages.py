"""Admin pages (org-admin profiles): overview, enrol, remove a colleague, renew the key.

Enrolling is two steps, as on the terminal: the uploaded request file is checked and its
fingerprint shown to compare aloud with the new colleague; only the confirmation (which
carries the request back, it is public data) enrols. Removing a colleague says first
what follows: they can read nothing sent from then on, and the organisation key is renewed.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from protocol.keys import fingerprint, format_fingerprint

from ..admin import read_staff_request
from ..errors import KokError
from ..lifecycle import DAY
from .pages import read_multipart
from .rendering import SESSION, client_of, notice, render, words_of

MAX_REQUEST = 16 * 1024


def admin_of(request: web.Request):  # type: ignore[no-untyped-def]
    client = client_of(request)
    if client.kind != "org":
        raise web.HTTPNotFound()
    return client


async def overview(request: web.Request, *, errors: list[tuple[str, str]] | None = None,
                   status: int = 200) -> web.Response:
    client = admin_of(request)
    info = await client.org.show()
    return render(request, "admin.html", status=status, info=info,
                  own_staff=client.staff_id, errors=errors or [],
                  rotate_days=(info.rotate_every or 0) // DAY)


async def overview_get(request: web.Request) -> web.StreamResponse:
    return await overview(request)


async def enrol_post(request: web.Request) -> web.StreamResponse:
    """Step one: read the uploaded request file and show its fingerprint."""
    admin_of(request)
    words = words_of(request)
    _fields, uploads = await read_multipart(request, request[SESSION], "request", {})
    try:
        if not uploads:
            return await overview(request, status=400, errors=[
                ("request", words("app.admin.error_no_file"))])
        upload = uploads[0]
        if upload.size > MAX_REQUEST:
            return await overview(request, status=400, errors=[
                ("request", words("app.admin.error_not_request"))])
        data = upload.path.read_bytes()
    finally:
        for u in uploads:
            u.close()
    try:
        req = read_staff_request(data)
    except KokError as exc:
        return await overview(request, status=400, errors=[("request", words.error(exc))])
    return render(request, "admin_enrol.html", req=req,
                  fingerprint=format_fingerprint(fingerprint(req.signing_key)),
                  data=base64.b64encode(data).decode("ascii"), focus="confirm-heading")


async def enrol_confirm(request: web.Request) -> web.StreamResponse:
    """Step two: the admin compared the fingerprint; enrol."""
    client, words = admin_of(request), words_of(request)
    form = await request.post()
    try:
        data = base64.b64decode(str(form.get("request", "")), validate=True)
    except (binascii.Error, ValueError):
        raise web.HTTPBadRequest() from None
    if form.get("compared") != "yes":
        try:
            req = read_staff_request(data)
        except KokError as exc:
            return await overview(request, status=400, errors=[("request", words.error(exc))])
        return render(request, "admin_enrol.html", status=400, req=req,
                      fingerprint=format_fingerprint(fingerprint(req.signing_key)),
                      data=base64.b64encode(data).decode("ascii"),
                      errors=[("compared", words("app.admin.error_not_compared"))])
    try:
        req = await client.org.enrol(data, admin=form.get("role") == "admin")
    except KokError as exc:
        return await overview(request, status=400, errors=[("request", words.error(exc))])
    notice(request, "success", words("app.admin.enrolled", staff=req.staff_id))
    raise web.HTTPSeeOther("/admin")


async def remove_get(request: web.Request) -> web.StreamResponse:
    client = admin_of(request)
    staff_id = f"{client.org_id}/{request.match_info['name']}"
    info = await client.org.show()
    if not any(s.staff_id == staff_id and s.removed is None for s in info.staff):
        raise web.HTTPNotFound()
    return render(request, "admin_remove.html", staff_id=staff_id)


async def remove_post(request: web.Request) -> web.StreamResponse:
    client, words = admin_of(request), words_of(request)
    staff_id = f"{client.org_id}/{request.match_info['name']}"
    try:
        epoch = await client.org.remove(staff_id)
    except KokError as exc:
        return await overview(request, status=400, errors=[("staff", words.error(exc))])
    notice(request, "success", words("app.admin.removed", staff=staff_id, epoch=epoch))
    raise web.HTTPSeeOther("/admin")


async def rotate_post(request: web.Request) -> web.StreamResponse:
    client, words = admin_of(request), words_of(request)
    try:
        epoch = await client.org.rotate()
    except KokError as exc:
        return await overview(request, status=400, errors=[("rotate", words.error(exc))])
    notice(request, "success", words("app.admin.rotated", epoch=epoch))
    raise web.HTTPSeeOther("/admin")


async def schedule_post(request: web.Request) -> web.StreamResponse:
    client, words = admin_of(request), words_of(request)
    form = await request.post()
    text = str(form.get("days", "")).strip()
    if not text.isdigit():
        return await overview(request, status=400, errors=[
            ("days", words("app.admin.error_days"))])
    try:
        await client.org.configure(rotate_every=int(text) * DAY)
    except KokError as exc:
        return await overview(request, status=400, errors=[("days", words.error(exc))])
    notice(request, "success", words.n("app.admin.schedule_done", int(text)))
    raise web.HTTPSeeOther("/admin")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/admin", overview_get)
    r.add_post("/admin/enrol", enrol_post)
    r.add_post("/admin/enrol/confirm", enrol_confirm)
    r.add_get("/admin/remove/{name}", remove_get)
    r.add_post("/admin/remove/{name}", remove_post)
    r.add_post("/admin/rotate", rotate_post)
    r.add_post("/admin/schedule", schedule_post)
