"""Streaming, resumable transfer of encrypted file drops.

Theory of operation
-------------------
Upload: the file is read in pieces and pushed through ``protocol.FileEncryptor`` straight
into the request body; no plaintext copy and no whole file is ever held. The encryption is
deterministic for a given (key, header), so after a broken connection the client asks the
relay for its durable offset (``HEAD``), runs the encryptor again from the start and sends
only the bytes past that offset. The ciphertext hash that goes into the signed message
comes from the last, complete pass.

Download: the ciphertext is appended to a hidden ``.kokpart`` file beside the target
(ciphertext only, so nothing readable lies around); an interrupted download resumes with
``Range``. When all bytes are there, the file is decrypted and every chunk, the size and
the ciphertext hash are checked into a hidden temporary file, which is renamed to its final
name only when everything verified. On any failure both hidden files are removed.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
import secrets
import unicodedata
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from protocol import Attachment, FileDecryptor, FileEncryptor, b64decode, b64encode, ciphertext_size
from protocol.errors import ProtocolError, StreamSizeMismatch

READ_PIECE = 1024 * 1024
RETRIES = 8
Progress = Callable[[int], None]


class TransferError(Exception):
    """A file could not be transferred; the message says why in plain words."""

    code = "transfer_failed"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


@dataclass(frozen=True)
class DropEndpoint:
    """Where and how to reach the relay's drop API."""

    http: aiohttp.ClientSession
    base_url: str
    headers: dict[str, str]

    def url(self, *parts: str) -> str:
        return "/".join([self.base_url.rstrip("/"), "v1", "drops", *parts])


async def _problem(resp: aiohttp.ClientResponse) -> TransferError:
    try:
        body = await resp.json(content_type=None)
        return TransferError(str(body.get("detail") or body.get("title")), body.get("code"))
    except (ValueError, aiohttp.ContentTypeError):
        return TransferError(f"the relay answered {resp.status}")


def sanitize_name(name: str) -> str:
    """A safe local file name from a sender's name: no directories, no control characters."""
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r'[<>:"|?*]', "_", name).strip().lstrip(".").strip()
    if name in ("", ".", ".."):
        name = "attachment"
    _stem, dot, ext = name.rpartition(".")
    if len(name.encode("utf-8")) > 200:
        keep = ext if dot and len(ext) <= 16 else ""
        name = name.encode("utf-8")[: 180].decode("utf-8", "ignore") + ("." + keep if keep else "")
    return name


def media_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


async def _ciphertext_from(path: Path, key: bytes, header: bytes, size: int, skip: int,
                           hashes: list[bytes], progress: Progress | None) -> AsyncIterator[bytes]:
    """The file's ciphertext from byte ``skip`` on, read and encrypted off the event loop."""
    enc = FileEncryptor(key, header, size)
    position = 0
    fh = await asyncio.to_thread(open, path, "rb")
    try:
        while True:
            data = await asyncio.to_thread(fh.read, READ_PIECE)
            if data:
                out = await asyncio.to_thread(enc.update, data)
            else:
                out = enc.finalize()
            if position + len(out) > skip:
                piece = out[max(0, skip - position):]
                if progress:
                    progress(len(piece))
                yield piece
            position += len(out)
            if not data:
                break
    finally:
        fh.close()
    if position != ciphertext_size(size):
        raise StreamSizeMismatch("the file changed while it was being sent")
    hashes.append(enc.ciphertext_hash)


async def upload_file(ep: DropEndpoint, path: Path, to: list[str], ttl: int,
                      progress: Progress | None = None) -> Attachment:
    """Encrypt and upload one file as a drop; return what the message must carry about it."""
    size = (await asyncio.to_thread(path.stat)).st_size
    key = secrets.token_bytes(32)
    header = secrets.token_bytes(24)
    total = ciphertext_size(size)
    async with ep.http.post(ep.url(), json={"size": total, "to": to, "ttl": ttl},
                            headers=ep.headers) as resp:
        if resp.status != 201:
            raise await _problem(resp)
        created = await resp.json()
    drop_id = b64decode(created["id"], size=16)
    token_headers = {**ep.headers, "Kok-Upload-Token": created["upload_token"]}
    offset = 0
    hashes: list[bytes] = []
    for attempt in range(RETRIES):
        try:
            if attempt:
                async with ep.http.head(ep.url(created["id"]), headers=token_headers) as resp:
                    if resp.status != 200:
                        raise await _problem(resp)
                    offset = int(resp.headers["Upload-Offset"])
            if offset < total:
                hashes.clear()
                body = _ciphertext_from(path, key, header, size, offset, hashes, progress)
                async with ep.http.patch(
                    ep.url(created["id"]), data=body,
                    headers={**token_headers, "Upload-Offset": str(offset),
                             "Content-Type": "application/offset+octet-stream"},
                ) as resp:
                    if resp.status != 204:
                        raise await _problem(resp)
                    offset = int(resp.headers["Upload-Offset"])
            if not hashes:  # everything was on the relay already: hash a full local pass
                async for _ in _ciphertext_from(path, key, header, size, total, hashes, None):
                    pass
            async with ep.http.post(ep.url(created["id"], "complete"),
                                    headers=token_headers) as resp:
                if resp.status != 200:
                    raise await _problem(resp)
            break
        except (TimeoutError, aiohttp.ClientConnectionError):
            if attempt == RETRIES - 1:
                raise
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
    return Attachment(drop=drop_id, key=key, size=size, name=path.name, type=media_type(path),
                      hash=hashes[-1])


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _decrypt_file(part: Path, tmp: Path, attachment: Attachment) -> None:
    dec = FileDecryptor(attachment.key, expected_size=attachment.size,
                        expected_hash=attachment.hash)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, open(part, "rb") as src:
        while data := src.read(READ_PIECE):
            out.write(dec.update(data))
        out.write(dec.finalize())
        out.flush()
        os.fsync(out.fileno())


async def download_attachment(ep: DropEndpoint, attachment: Attachment, dest_dir: Path, *,
                              force: bool = False, progress: Progress | None = None) -> Path:
    """Fetch, verify and decrypt one attachment into ``dest_dir``; returns the final path."""
    name = sanitize_name(attachment.name)
    final = dest_dir / name
    if final.exists() and not force:
        raise TransferError(f"{final} exists already; use --force to replace it", "file_exists")
    tag = attachment.drop.hex()[:12]
    part = dest_dir / f".{name}.{tag}.kokpart"
    tmp = dest_dir / f".{name}.{tag}.koktmp"
    total = ciphertext_size(attachment.size)
    drop = b64encode(attachment.drop)
    for attempt in range(RETRIES):
        have = part.stat().st_size if part.exists() else 0
        if have > total:
            part.unlink()
            have = 0
        if have == total:
            break
        try:
            headers = {**ep.headers, "Range": f"bytes={have}-"} if have else dict(ep.headers)
            async with ep.http.get(ep.url(drop), headers=headers) as resp:
                if resp.status not in (200, 206):
                    raise await _problem(resp)
                if have and resp.status != 206:
                    have = 0  # the relay ignored Range: start over
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if have else os.O_TRUNC),
                             0o600)
                with os.fdopen(fd, "ab" if have else "wb") as out:
                    async for data in resp.content.iter_chunked(READ_PIECE):
                        if have + len(data) > total:
                            raise TransferError("the relay sent more bytes than the file has",
                                                "stream_trailing_data")
                        await asyncio.to_thread(out.write, data)
                        have += len(data)
                        if progress:
                            progress(len(data))
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
            if attempt == RETRIES - 1:
                raise
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        except TransferError:
            part.unlink(missing_ok=True)
            raise
    try:
        await asyncio.to_thread(_decrypt_file, part, tmp, attachment)
        if final.exists() and not force:
            raise TransferError(f"{final} exists already; use --force to replace it", "file_exists")
        os.replace(tmp, final)
        dir_fd = os.open(dest_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except (ProtocolError, TransferError, OSError):
        tmp.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
        raise
    part.unlink(missing_ok=True)
    return final
