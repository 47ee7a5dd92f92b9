"""File drops: create, upload at an offset, ask the offset, complete, download, acknowledge.

Upload bodies are streamed from ``request.content`` in pieces and bounded by the drop's
declared size while they stream (``client_max_size`` does not bound streamed bodies).
Downloads are streamed from the blob in pieces with HTTP ``Range`` (one range).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from protocol.encoding import b64decode, b64encode
from protocol.errors import EncodingError

from .. import wire
from ..errors import (
    BadHeader,
    BadRange,
    UnsupportedMediaType,
    UploadInterrupted,
    UploadTokenRequired,
)
from ..problems import SERVER_NAME
from ..service.domain import UPLOAD_TOKEN_SIZE
from .common import now, ok, read_json, require_session, service

UPLOAD_TOKEN_HEADER = "Kok-Upload-Token"  # noqa: S105 (a header name, not a secret)
UPLOAD_MEDIA_TYPE = "application/offset+octet-stream"
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")


def _upload_token(request: web.Request) -> bytes:
    value = request.headers.get(UPLOAD_TOKEN_HEADER)
    if value is None:
        raise UploadTokenRequired()
    try:
        return b64decode(value.strip(), size=UPLOAD_TOKEN_SIZE, field="upload token")
    except EncodingError:
        raise UploadTokenRequired(f"The {UPLOAD_TOKEN_HEADER} header is malformed.") from None


def _upload_offset(request: web.Request) -> int:
    offset = wire.decimal(request.headers.get("Upload-Offset", ""), 19)
    if offset is None:
        raise BadHeader("Upload-Offset must be the byte offset the body starts at.")
    return offset


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of one ``Range: bytes=...`` over ``size`` bytes; None for no header."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise BadRange("Only one range is served: bytes=FIRST-, bytes=FIRST-LAST or "
                       "bytes=-SUFFIX.", size)
    first, last = match.group(1), match.group(2)
    if first == "":  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise BadRange("An empty suffix range selects nothing.", size)
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or (last != "" and int(last) < start):
        raise BadRange(f"The range {header.strip()} lies outside the {size} bytes.", size)
    return start, end


async def _pieces(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in pieces as they arrive (never the whole body)."""
    while True:
        try:
            piece = await request.content.readany()
        except (ConnectionError, HttpProcessingError) as exc:
            # the uploader went away (or its body ended short): keep what came, resume later
            raise UploadInterrupted() from exc
        if not piece:
            return
        yield piece


async def create(request: web.Request) -> web.Response:
    """Reserve a drop; answer its id, the upload token and its expiry."""
    at = now()
    session = require_session(request, at)
    drop = wire.drop_create(await read_json(request))
    created = await service(request).drops.create(session, drop, at)
    return ok({"id": b64encode(created.id), "upload_token": b64encode(created.upload_token),
               "expires": created.expires}, status=201)


async def offset(request: web.Request) -> web.Response:
    """How many bytes of an upload the relay holds durably (where to resume)."""
    at = now()
    require_session(request, at)
    have, size = await service(request).drops.offset(
        wire.drop_id(request.match_info["id"]), _upload_token(request), at)
    return web.Response(status=200, headers={"Upload-Offset": str(have),
                                             "Upload-Length": str(size),
                                             "Cache-Control": "no-store"})


async def upload(request: web.Request) -> web.Response:
    """Append the body at ``Upload-Offset``."""
    at = now()
    require_session(request, at)
    token = _upload_token(request)
    start = _upload_offset(request)
    if request.content_type != UPLOAD_MEDIA_TYPE:
        raise UnsupportedMediaType()
    end = await service(request).drops.upload(
        wire.drop_id(request.match_info["id"]), token, start, request.content_length,
        _pieces(request), at)
    return web.Response(status=204, headers={"Upload-Offset": str(end)})


async def complete(request: web.Request) -> web.Response:
    """Every byte is there: make the drop downloadable."""
    at = now()
    require_session(request, at)
    row = await service(request).drops.complete(wire.drop_id(request.match_info["id"]),
                                                _upload_token(request), at)
    return ok({"id": b64encode(row.id), "size": row.size, "expires": row.expires})


async def withdraw(request: web.Request) -> web.Response:
    """The uploader deletes its drop (a send that failed after the upload)."""
    at = now()
    require_session(request, at)
    await service(request).drops.withdraw(wire.drop_id(request.match_info["id"]),
                                          _upload_token(request), at)
    return web.Response(status=204)


async def download(request: web.Request) -> web.StreamResponse:
    """The drop's bytes (or one range of them) for current staff of a recipient org."""
    at = now()
    session = require_session(request, at)
    drops = service(request).drops
    drop_id = wire.drop_id(request.match_info["id"])
    size = await drops.open_download(session, drop_id, at)
    wanted = byte_range(request.headers.get("Range"), size)
    start, end = wanted or (0, size)
    # sent from here, so the middleware cannot name the server (relay.edge): this does
    response = web.StreamResponse(status=206 if wanted else 200, headers={
        "Accept-Ranges": "bytes", "Cache-Control": "no-store",
        "Content-Type": "application/octet-stream", "Server": SERVER_NAME})
    if wanted:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    response.content_length = end - start
    await response.prepare(request)
    try:
        async for piece in drops.read(drop_id, start, end):
            await response.write(piece)
        await response.write_eof()
    except ConnectionError:
        pass  # the downloader went away; it resumes with Range
    return response


async def acknowledge(request: web.Request) -> web.Response:
    """The caller has the file."""
    at = now()
    session = require_session(request, at)
    drop_id = wire.drop_id(request.match_info["id"])
    deleted = await service(request).drops.acknowledge(session, drop_id, at)
    return ok({"deleted": deleted})

