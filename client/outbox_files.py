"""Attachments of a message queued while the relay is away: encrypted snapshots.

Theory of operation
-------------------
A message waits in the offline outbox (``MailboxStore.add_outbox``) until the relay can be
reached. Its files cannot wait as paths: a file may be changed, moved or deleted before
then (the staff app's uploads are gone once the page answered), and the message must never
go out without its file or with another file than the one the person chose. So at send
time each file is encrypted at once, exactly as for an upload (``protocol.FileEncryptor``
under a fresh file key and header), into ``<profile>/outbox/<message id>/<n>.kokdrop``
(0600, in a 0700 folder), together with the ciphertext hash. The file key stays in the
outbox entry, which the mailbox keeps encrypted, so the snapshot is ciphertext at rest
like everything else.

When the relay is back, the next flush creates one drop per snapshot, uploads the
snapshot's bytes (resuming at the relay's durable offset after a broken connection, as any
upload) and completes it; the snapshot's hash is checked before (a damaged snapshot is
refused, never sent). Only then is the message signed with its attachments, sealed to the
epochs current at that moment, and posted under the idempotency key it was given when it
was queued. The snapshots are deleted once the drops are complete.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import shutil
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from kokshared.private_files import make_private_dir
from protocol import Attachment, b64encode, ciphertext_size
from protocol.encoding import b64decode
from protocol.stream import ciphertext_hasher

from .api import RelayApi
from .drops import FileProgress
from .transfer import (
    READ_PIECE,
    TransferError,
    _ciphertext,
    _identity,
    _PlainDigests,
    media_type,
    send_into_new_drop,
)

SNAPSHOT_SUFFIX = ".kokdrop"


def snapshot_dir(profile_dir: Path, message_id: str) -> Path:
    """Where the snapshots of queued message ``message_id`` are kept."""
    return profile_dir / "outbox" / message_id


def remove_snapshots(profile_dir: Path, message_id: str) -> None:
    """Delete a queued message's snapshots (ciphertext; its key goes with the outbox entry)."""
    shutil.rmtree(snapshot_dir(profile_dir, message_id), ignore_errors=True)


async def take_snapshots(profile_dir: Path, message_id: str, files: list[tuple[Path, str]],
                         progress: FileProgress | None = None) -> list[dict[str, Any]]:
    """Encrypt each file into the profile now; what the outbox entry keeps about each.

    A file that changes while it is read is refused (``file_changed``); on any failure no
    snapshot is left behind.
    """
    folder = snapshot_dir(profile_dir, message_id)
    kept: list[dict[str, Any]] = []
    name = files[0][1] if files else ""
    try:
        await asyncio.to_thread(make_private_dir, folder)
        for n, (path, name) in enumerate(files):
            report = (lambda done, total, n=name: progress(n, done, total)) if progress else None
            kept.append(await _snapshot(path, name, folder / f"{n}{SNAPSHOT_SUFFIX}", report))
    except OSError as exc:  # a full disk, a profile folder we cannot write to
        await asyncio.to_thread(remove_snapshots, profile_dir, message_id)
        raise TransferError("snapshot_unwritable", name=name, detail=exc.strerror or "") from None
    except BaseException:
        await asyncio.to_thread(remove_snapshots, profile_dir, message_id)
        raise
    return kept


async def _snapshot(path: Path, name: str, target: Path, progress: Any) -> dict[str, Any]:
    try:
        before = await asyncio.to_thread(_identity, path)
    except OSError as exc:
        raise TransferError("file_unreadable", path=str(path), detail=exc.strerror or "") from None
    size = before[0]
    key, header = secrets.token_bytes(32), secrets.token_bytes(24)
    hashes: list[bytes] = []
    out = await asyncio.to_thread(_create_private, target)
    try:
        # one pass under a fresh key and header: its chunk digests have nothing to compare to
        async for chunk in _ciphertext(path, key, header, size, 0, hashes, _PlainDigests(),
                                       progress):
            await asyncio.to_thread(out.write, chunk)
        await asyncio.to_thread(_sync, out)
    finally:
        out.close()
    if await asyncio.to_thread(_identity, path) != before:
        raise TransferError("file_changed", name=path.name)
    name = unicodedata.normalize("NFC", name)
    return {"file": target.name, "key": b64encode(key), "size": size, "name": name,
            "type": media_type(name), "hash": b64encode(hashes[-1])}


def _create_private(path: Path) -> IO[bytes]:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def _sync(fh: IO[bytes]) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _intact(path: Path, size: int, expected: bytes) -> bool:
    """True if the snapshot still has the size and the ciphertext hash it was made with."""
    hasher = ciphertext_hasher()
    try:
        if path.stat().st_size != ciphertext_size(size):
            return False
        with path.open("rb") as fh:
            while piece := fh.read(READ_PIECE):
                hasher.update(piece)
    except OSError:
        return False
    return hmac.compare_digest(hasher.digest(), expected)


async def _read_from(path: Path, offset: int) -> AsyncIterator[bytes]:
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        await asyncio.to_thread(fh.seek, offset)
        while piece := await asyncio.to_thread(fh.read, READ_PIECE):
            yield piece
    finally:
        fh.close()


async def upload_snapshots(api: RelayApi, profile_dir: Path, message_id: str,
                           kept: list[dict[str, Any]], to: list[str], ttl: int,
                           created_drops: list[tuple[str, str]]) -> tuple[Attachment, ...]:
    """Upload each snapshot as a drop to ``to``; the attachments the payload must carry.

    ``created_drops`` gets (drop id, upload token) of each drop as soon as it exists.
    """
    folder = snapshot_dir(profile_dir, message_id)
    out: list[Attachment] = []
    for item in kept:
        path = folder / str(item["file"])
        expected = b64decode(str(item["hash"]), size=32, field="hash")
        size = int(item["size"])
        if not await asyncio.to_thread(_intact, path, size, expected):
            raise TransferError("snapshot_damaged", name=str(item["name"]))
        drop = await _upload(api, path, ciphertext_size(size), to, ttl, created_drops)
        out.append(Attachment(drop=drop, key=b64decode(str(item["key"]), size=32, field="key"),
                              size=size, name=str(item["name"]), type=str(item["type"]),
                              hash=expected))
    return tuple(out)


async def _upload(api: RelayApi, path: Path, total: int, to: list[str], ttl: int,
                  created_drops: list[tuple[str, str]]) -> bytes:
    """Create a drop and send the snapshot's ``total`` bytes into it, resuming after a break."""

    async def body_at(offset: int) -> AsyncIterator[bytes]:
        return _read_from(path, offset)

    drop = await send_into_new_drop(api, total, to, ttl, created_drops, body_at)
    return b64decode(drop, size=16, field="id")
