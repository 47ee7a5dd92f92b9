"""The Devices page: this person's devices, linking a new one with a code, removing one.

Theory of operation
-------------------
Linking runs on this device as ``kok device link`` does (``Client.link_device``): the
code is shown, and a task of the app awaits the new device (``DeviceLink.wait``) while the
page polls ``/devices/link/status`` (or the person presses "check again": the page works
without script). One link at a time per app: a new one and "cancel" end the one before
(its mailbox is closed, so the old code stops working at once); locking the app closes the
client and so fails a waiting link. The status poll does not count as activity: a
forgotten link page does not keep the keys open past the idle lock.

Removing another device asks first, saying what follows: its sessions end at once and the
organisation key is renewed.

Joining is the other side: ``kok --profile NEW app`` on a computer without that profile
shows only the join page (``needs_join``), which takes the code, the relay's address, the
network file and a new passphrase, runs ``Client.join_device`` and then unlocks the new
profile. Nothing is written before the exchange succeeded (the library's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from protocol.errors import ProtocolError
from protocol.keys import format_fingerprint
from protocol.link import LinkCode

from .._client import Client
from ..api import check_relay_url
from ..device_link import DeviceLink
from ..errors import KokError
from ..passphrase_strength import weakness_key
from ..profile import NetworkAnchor, default_home, default_profile, profile_dir
from .pages import read_multipart
from .rendering import SESSION, STATE, client_of, notice, render, words_of
from .state import AppState

DEVICE_ID = re.compile(r"^[A-Z2-7]{32}$")
"""A device id: the base32 fingerprint of its signing key."""


@dataclass
class LinkJob:
    """A link offered from this app: its code and how the wait for the new device went."""

    link: DeviceLink
    task: asyncio.Task[None] | None = None
    state: str = "waiting"
    """``waiting``, ``linked`` or ``failed``."""
    device: str | None = None
    error: KokError | None = None
    detail: str | None = field(default=None)
    """A failure that was no ``KokError`` (the relay went away, the app was locked)."""

    async def run(self) -> None:
        try:
            self.device = await self.link.wait()
            self.state = "linked"
        except asyncio.CancelledError:
            self.state = "failed"
            raise
        except KokError as exc:
            self.error, self.state = exc, "failed"
        except Exception as exc:  # shown as "failed", never as a trace
            self.detail, self.state = type(exc).__name__, "failed"

    async def end(self) -> None:
        """Stop waiting; the code stops working (its mailbox is closed)."""
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await self.link.cancel()


LINK = web.AppKey("device_link", dict)
"""The app's current link, under ``"job"`` (absent when none)."""


def job_of(request: web.Request) -> LinkJob | None:
    job = request.app[LINK].get("job")
    return job if isinstance(job, LinkJob) else None


async def end_job(app: web.Application) -> None:
    job = app[LINK].pop("job", None)
    if isinstance(job, LinkJob):
        await job.end()


def spelled(code: str) -> str:
    """The code for a screen reader: digit by digit, the groups apart."""
    return ", ".join(" ".join(group) for group in code.split("-"))


def status_text(words: Any, job: LinkJob) -> str:
    if job.state == "linked":
        return str(words("app.devices.status_linked", device=format_fingerprint(job.device or "")))
    if job.state == "failed":
        reason = (words.error(job.error) if job.error is not None
                  else words("app.devices.status_broken"))
        return str(words("app.devices.status_failed", reason=reason))
    return str(words("app.devices.status_waiting"))


def staff_client(request: web.Request) -> Client:
    client = client_of(request)
    if client.staff_id is None:
        raise web.HTTPNotFound()
    return client


# --- the list -------------------------------------------------------------------------


async def devices_page(request: web.Request, *, errors: list[tuple[str, str]] | None = None,
                       status: int = 200) -> web.Response:
    client, words = staff_client(request), words_of(request)
    job = job_of(request)
    if job is not None and job.state != "waiting":
        await end_job(request.app)  # its outcome was shown; the list shows the new device
        job = None
    try:
        found = await client.devices()
    except KokError as exc:
        return render(request, "devices.html", status=502, devices=[], job=job,
                      errors=[("devices", words.error(exc))])
    log = client.context.directory.log.staff(client.require_staff()).devices
    rows = []
    for d in found:
        keys = log[d.device_id].box_keys if d.device_id in log else []
        rows.append({"id": d.device_id, "added": d.added, "removed": d.removed,
                     "this": d.this_device,
                     "rotated": keys[-1][1] if len(keys) > 1 else None})
    return render(request, "devices.html", status=status, devices=rows, job=job,
                  errors=errors or [])


async def devices_get(request: web.Request) -> web.StreamResponse:
    return await devices_page(request)


# --- linking a new device -------------------------------------------------------------


async def link_post(request: web.Request) -> web.StreamResponse:
    client, words = staff_client(request), words_of(request)
    await end_job(request.app)
    try:
        link = await client.link_device()
    except KokError as exc:
        return await devices_page(request, status=400, errors=[("link", words.error(exc))])
    job = LinkJob(link)
    job.task = asyncio.create_task(job.run())
    request.app[LINK]["job"] = job
    raise web.HTTPSeeOther("/devices/link")


async def link_get(request: web.Request) -> web.StreamResponse:
    client, words = staff_client(request), words_of(request)
    job = job_of(request)
    if job is None:
        raise web.HTTPSeeOther("/devices")
    relay = client.profile.info.relay or ""
    return render(request, "device_link.html", job=job, code=job.link.code,
                  spelled=spelled(job.link.code), relay=relay,
                  status_text=status_text(words, job),
                  focus="link-status" if job.state != "waiting" else None)


async def link_status(request: web.Request) -> web.StreamResponse:
    """The link's state as JSON, for the page's script."""
    staff_client(request)
    job = job_of(request)
    if job is None:
        data = {"state": "none", "text": ""}
    else:
        data = {"state": job.state, "text": status_text(words_of(request), job)}
    return web.Response(text=json.dumps(data), content_type="application/json")


async def link_cancel(request: web.Request) -> web.StreamResponse:
    staff_client(request)
    job = job_of(request)
    waiting = job is not None and job.state == "waiting"
    await end_job(request.app)
    if waiting:
        notice(request, "info", words_of(request)("app.devices.cancelled"))
    raise web.HTTPSeeOther("/devices")


async def network_file(request: web.Request) -> web.StreamResponse:
    """The network file the new device needs (public: the network's name and key)."""
    client = staff_client(request)
    body = json.dumps(client.profile.info.network.to_json(), indent=2) + "\n"
    return web.Response(text=body, content_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="kok-network.json"'})


# --- removing a device ----------------------------------------------------------------


def device_param(request: web.Request) -> str:
    device = request.match_info["device"].replace(" ", "").upper()
    if not DEVICE_ID.match(device):
        raise web.HTTPNotFound()
    return device


async def remove_get(request: web.Request) -> web.StreamResponse:
    client, device = staff_client(request), device_param(request)
    found = await client.devices()
    if not any(d.device_id == device and d.removed is None and not d.this_device
               for d in found):
        raise web.HTTPNotFound()
    return render(request, "device_remove.html", device=device)


async def remove_post(request: web.Request) -> web.StreamResponse:
    client, words, device = staff_client(request), words_of(request), device_param(request)
    found = await client.devices()
    if any(d.device_id == device and d.this_device for d in found):
        return await devices_page(request, status=400, errors=[
            ("devices", words("app.devices.error_this_device"))])
    try:
        await client.remove_device(device)
    except KokError as exc:
        return await devices_page(request, status=400, errors=[("devices", words.error(exc))])
    notice(request, "success", words("app.devices.removed", device=format_fingerprint(device)))
    raise web.HTTPSeeOther("/devices")


def add_routes(app: web.Application) -> None:
    app[LINK] = {}

    async def on_cleanup(app: web.Application) -> None:
        await end_job(app)

    app.on_cleanup.append(on_cleanup)
    r = app.router
    r.add_get("/devices", devices_get)
    r.add_post("/devices/link", link_post)
    r.add_get("/devices/link", link_get)
    r.add_get("/devices/link/status", link_status)
    r.add_post("/devices/link/cancel", link_cancel)
    r.add_get("/devices/network.json", network_file)
    r.add_get("/devices/remove/{device}", remove_get)
    r.add_post("/devices/remove/{device}", remove_post)
    r.add_get("/join", join_get)
    r.add_post("/join", join_post)



# --- joining: this computer becomes a new device of a person ----------------------------

MAX_NETWORK_FILE = 16 * 1024
JOIN_FIELDS = {"code": 64, "relay": 512, "new": 1024, "again": 1024}


def needs_join(state: AppState) -> bool:
    """No profile of this name here yet: the app offers to join with a code."""
    if state.client is not None:
        return False
    home = Path(state.home) if state.home is not None else default_home()
    return not (profile_dir(home, state.profile or default_profile()) / "profile.json").exists()


async def join_page(request: web.Request, *, values: dict[str, str] | None = None,
                    errors: list[tuple[str, str]] | None = None,
                    status: int = 200) -> web.Response:
    state = request.app[STATE]
    return render(request, "device_join.html", status=status, values=values or {},
                  new_profile=state.profile or default_profile(), errors=errors or [],
                  ca_file=str(state.ca_file) if state.ca_file is not None else "")


async def join_get(request: web.Request) -> web.StreamResponse:
    if not needs_join(request.app[STATE]):
        raise web.HTTPSeeOther("/inbox")
    return await join_page(request)


async def join_post(request: web.Request) -> web.StreamResponse:
    state, words = request.app[STATE], words_of(request)
    if not needs_join(state):
        raise web.HTTPSeeOther("/inbox")
    fields, uploads = await read_multipart(request, request[SESSION], "network", JOIN_FIELDS)
    try:
        network = uploads[0].path.read_bytes() if uploads and \
            uploads[0].size <= MAX_NETWORK_FILE else None
    finally:
        for u in uploads:
            u.close()
    values = {k: (fields.get(k) or [""])[0] for k in JOIN_FIELDS}
    errors: list[tuple[str, str]] = []
    code = values["code"].strip()
    try:
        LinkCode.parse(code)
    except ProtocolError:
        errors.append(("code", words("app.devices.error_code_empty" if not code
                                     else "error.link_bad_code")))
    relay = values["relay"].strip()
    try:
        relay = check_relay_url(relay)
    except KokError as exc:
        errors.append(("relay", words("app.devices.error_relay_empty") if not relay
                       else words.error(exc)))
    anchor = None
    if network is None:
        errors.append(("network", words("app.devices.error_network")))
    else:
        try:
            anchor = NetworkAnchor.from_json(json.loads(network.decode("utf-8")))
        except (KokError, ValueError):
            errors.append(("network", words("app.devices.error_network")))
    new, again = values["new"], values["again"]
    if not new:
        errors.append(("new", words("app.settings.error_new_empty")))
    elif new != again:
        errors.append(("again", words("app.settings.error_again")))
    elif (weak := await asyncio.to_thread(weakness_key, new, [state.profile or ""])):
        errors.append(("new", words("prompt.weak_passphrase", reason=words(weak))))
    shown = {"code": code, "relay": values["relay"]}  # never a passphrase back into the page
    if errors or anchor is None:
        return await join_page(request, values=shown, errors=errors, status=400)
    try:
        await Client.join_device(state.home, state.profile, new, code, relay=relay,
                                 network=anchor, ca_file=state.ca_file)
        await state.unlock(new)
    except KokError as exc:
        return await join_page(request, values=shown, status=400,
                               errors=[("code", words.error(exc))])
    notice(request, "success", words("app.devices.joined"))
    raise web.HTTPSeeOther("/inbox")
