"""Attachments: files sent as encrypted drops beside a message, and saved from one.

Sending: every file is checked first (exists, readable, not a folder), then encrypted and
uploaded as a drop to the message's recipient organisations (``client.transfer``); the
drop id, file key, size, name, media type and ciphertext hash go into the signed payload.
Saving: the attachments of a verified message are fetched, checked chunk by chunk and
against the signed hash, written under sanitised names into the chosen folder (never over
an existing file unless ``force``), and acknowledged to the relay, which deletes a drop once
every recipient has it. An interrupted save goes on from its last checkpoint
(``client.save_checkpoints``) without decrypting again what it had written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from protocol import Attachment, b64encode
from protocol.errors import ProtocolError
from protocol.message import MAX_ATTACHMENTS

from .api import RelayApi
from .errors import KokError, RelayRefused, RelayUnreachable, UsageError, VerificationError
from .save_checkpoints import SaveCheckpoints
from .transfer import TransferError, download_attachment, sanitize_name, upload_file

if TYPE_CHECKING:
    from .context import ClientContext

AttachmentSource = str | Path | tuple[str | Path, str]
"""A file to attach: its path, or (path, name the recipient sees)."""
FileProgress = Callable[[str, int, int], None]
"""Called with (file name, bytes done, bytes in all) while a file moves."""


@dataclass(frozen=True)
class SavedFile:
    """One attachment written to disk after every check passed."""

    name: str
    path: Path
    size: int
    type: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "size": self.size, "type": self.type}


def check_sources(sources: Sequence[AttachmentSource]) -> list[tuple[Path, str]]:
    """(path, name) of every file to attach; refuses missing, unreadable or folder paths."""
    if len(sources) > MAX_ATTACHMENTS:
        raise UsageError("too_many_attachments", max=MAX_ATTACHMENTS)
    out: list[tuple[Path, str]] = []
    for source in sources:
        path, name = (Path(source[0]), str(source[1])) if isinstance(source, tuple) else (
            Path(source), Path(source).name)
        if not path.exists():
            raise UsageError("file_missing", path=str(path))
        if not path.is_file():
            raise UsageError("attachment_not_file", path=str(path))
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise UsageError("file_unreadable", path=str(path), detail=exc.strerror or "") from None
        if not name.strip():
            raise UsageError("attachment_no_name", path=str(path))
        out.append((path, name))
    return out


async def upload_attachments(ctx: ClientContext, files: list[tuple[Path, str]], to: list[str],
                             ttl: int, progress: FileProgress | None = None,
                             created_drops: list[tuple[str, str]] | None = None
                             ) -> tuple[Attachment, ...]:
    """Encrypt and upload each file as a drop to ``to``; what the payload must carry.

    ``created_drops`` collects (drop id, upload token) of each drop as it is created.
    """
    out: list[Attachment] = []
    api = await ctx.api()
    for path, name in files:
        report = (lambda done, total, n=name: progress(n, done, total)) if progress else None
        out.append(await upload_file(api, path, to, ttl, name=name, progress=report,
                                     created_drops=created_drops))
    return tuple(out)


async def withdraw_drops(ctx: ClientContext, created_drops: list[tuple[str, str]]) -> None:
    """Delete drops no message will refer to; one the relay cannot delete now expires later."""
    if not created_drops:
        return  # nothing to ask the relay (which may be away: a send being queued)
    api = await ctx.api()
    for drop, upload_token in created_drops:
        with contextlib.suppress(KokError, aiohttp.ClientError, OSError):
            await api.withdraw_drop(drop, upload_token)


async def save_attachments(ctx: ClientContext, message_id: str, directory: str | Path, *,
                           force: bool = False, progress: FileProgress | None = None,
                           mkdir: bool = False) -> list[SavedFile]:
    """Fetch, verify and save every attachment of a received message into ``directory``."""
    full = await ctx.store.resolve_id(message_id)
    row = await ctx.store.message(full)
    assert row is not None
    try:
        attachments = [Attachment.from_json(a) for a in row[0].get("attachments") or ()]
    except ProtocolError as exc:
        raise VerificationError.from_protocol(exc) from exc
    if not attachments:
        raise UsageError("no_attachments", id=full[:8])
    target = Path(directory)
    names = _local_names(attachments)
    checkpoints = SaveCheckpoints(ctx.store, ctx.now)
    where = Path(await asyncio.to_thread(os.path.abspath, target))
    # files an interrupted save of this message completed: saved, not "existing"
    done = [await checkpoints.saved_earlier(where / name, b64encode(a.drop), b64encode(a.hash))
            for a, name in zip(attachments, names, strict=True)]
    await asyncio.to_thread(_check_target, target,
                            [n for n, d in zip(names, done, strict=True) if not d], force, mkdir)
    await ctx.sync_log()
    ctx.require_staff()
    saved: list[SavedFile] = []
    api = await ctx.api()
    for attachment, name, earlier in zip(attachments, names, done, strict=True):
        if earlier:
            path = target / name
        else:
            report = (lambda got, total, n=name: progress(n, got, total)) if progress else None
            path = await download_attachment(api, attachment, target, name=name, force=force,
                                             progress=report, checkpoints=checkpoints)
            if len(attachments) > 1:
                await checkpoints.record_saved(where / name, b64encode(attachment.drop),
                                               b64encode(attachment.hash))
        saved.append(SavedFile(name=name, path=path, size=attachment.size,
                               type=attachment.type))
        await _acknowledge(api, attachment)
    if len(attachments) > 1:
        for name in names:  # the whole message is saved: a later save is a new one
            await checkpoints.forget_saved(where / name)
    return saved


def _check_target(target: Path, names: list[str], force: bool, mkdir: bool) -> None:
    """The folder exists (or, with ``mkdir``, is made), and (without ``force``) holds none
    of the names yet."""
    if mkdir and not target.exists():
        try:
            target.mkdir(parents=True, mode=0o700)
        except OSError as exc:
            raise UsageError("save_dir_unmakeable", path=str(target),
                             detail=exc.strerror or "") from None
    if not target.is_dir():
        raise UsageError("save_dir_missing", path=str(target))
    if not force:
        for name in names:
            if (target / name).exists():
                raise TransferError("file_exists", path=str(target / name))


def _local_names(attachments: list[Attachment]) -> list[str]:
    """Sanitised names, made unique within the message (``name (2).ext``)."""
    names: list[str] = []
    for attachment in attachments:
        name = sanitize_name(attachment.name)
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem:
            stem, dot, ext = name, "", ""
        n = 1
        while name.casefold() in (x.casefold() for x in names):
            n += 1
            name = f"{stem} ({n}){dot}{ext}"
        names.append(name)
    return names


async def _acknowledge(api: RelayApi, attachment: Attachment) -> None:
    """Tell the relay we have the file (best effort: it expires in any case)."""
    try:
        await api.ack_drop(b64encode(attachment.drop))
    except (RelayRefused, RelayUnreachable):
        pass
