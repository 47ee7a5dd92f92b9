"""Export a received message for a case record: a readable text file, and its attachments.

Local retention (``client.retention``) deletes mail from the device; what a case needs
longer goes into the case file, outside the app. An export is a folder the person chooses
holding ``message-<id>.txt`` (labelled header lines, then the text as written) and, if
asked, the attachments, fetched and checked exactly as ``kok save`` does. The export is
plaintext and nothing in kok deletes it again: the person (and the case file's own rules)
decide how long it stays, which the CLI and the app say each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kokshared.private_files import make_private_dir, write_private_file

from .drops import SavedFile, save_attachments
from .errors import KokError, UsageError
from .i18n import file_size, local_time, t
from .models import Message

if TYPE_CHECKING:
    from .context import ClientContext


@dataclass(frozen=True)
class Export:
    """What one export wrote."""

    folder: Path
    text_file: Path
    files: list[SavedFile] = field(default_factory=list)
    attachments_missing: str | None = None
    """Why the attachments could not be written (e.g. expired on the relay), if so."""

    def to_json(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "text_file": str(self.text_file),
                "files": [f.to_json() for f in self.files],
                "attachments_missing": self.attachments_missing}


def text_name(message: Message) -> str:
    """The export's text file name: ``message-<first 8 of the id>.txt``."""
    return f"message-{message.id[:8]}.txt"


Words = Callable[..., str]
"""A translator: ``words(key, **params)`` (``client.i18n.t``, or the app's page words)."""


def message_text(message: Message, exported: int, tr: Words = t,
                 when: Callable[[int], str] = local_time) -> str:
    """The message as a readable text document (labels in the person's language)."""
    lines = [
        tr("export.head"),
        tr("export.id", id=message.id),
        tr("export.from", staff=message.from_staff, org=message.from_org),
        tr("export.to", orgs=", ".join(message.to)),
        tr("export.sent", when=when(message.sent)),
        tr("export.received", when=when(message.received)),
        tr("export.subject", subject=message.subject),
        tr("export.thread", thread=message.thread),
    ]
    if message.reply_to:
        lines.append(tr("export.reply_to", id=message.reply_to))
    for attachment in message.attachments:
        lines.append(tr("export.attachment", name=str(attachment.get("name", "")),
                       size=file_size(int(attachment.get("size") or 0))))
    lines += [tr("export.exported", when=when(exported)), "", message.body]
    text = "\n".join(lines)
    return text if text.endswith("\n") else text + "\n"


async def export_message(ctx: ClientContext, message: Message, folder: str | Path, *,
                         attachments: bool = True, force: bool = False) -> Export:
    """Write ``message`` (and its attachments) into ``folder``; see the module docstring."""
    target = Path(folder)
    text_file = target / text_name(message)
    await asyncio.to_thread(_prepare, target, text_file, force)
    data = message_text(message, ctx.now()).encode("utf-8")
    await asyncio.to_thread(write_private_file, text_file, data)
    files: list[SavedFile] = []
    missing = None
    if attachments and message.attachments:
        try:
            files = await save_attachments(ctx, message.id, target, force=force)
        except KokError as exc:
            # the text is the record; a file the relay no longer holds is named, not fatal
            missing = str(exc)
    return Export(folder=target, text_file=text_file, files=files,
                  attachments_missing=missing)


def _prepare(target: Path, text_file: Path, force: bool) -> None:
    if target.exists() and not target.is_dir():
        raise UsageError("export_not_folder", path=str(target))
    try:
        make_private_dir(target)
    except OSError as exc:
        raise UsageError("save_dir_unmakeable", path=str(target),
                         detail=exc.strerror or "") from None
    if text_file.exists() and not force:
        raise UsageError("export_exists", path=str(text_file))
