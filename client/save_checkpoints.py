"""Where an interrupted save stands: checkpoints sealed in the profile's ``state.db``.

Theory of operation
-------------------
A save (``client.transfer.download_attachment``) appends the ciphertext to a hidden
``.<name>.<drop>.kokpart`` beside its target and decrypts it, in the same pass, into a
hidden ``.<name>.<drop>.koktmp``. Every ``CHECKPOINT_EVERY`` bytes, and when the relay
cannot be reached any more, it records here how far it got: the drop and signed hash the
files belong to, the part file's path, the temporary file's device and inode, how much
ciphertext and plaintext they hold, a SHA-256 of that ciphertext and a BLAKE2b of that
plaintext, and the decryptor's secretstream state. The state decrypts the rest of the
file, so it is as secret as the file key: it is stored only sealed (SecretBox under the
keystore's storage key, bound to its row, ``MailboxStore.set_sealed_state``), as the
message that carries the file key is. The row's name is a keyed hash of the temporary
file's path, so ``state.db`` does not show where a person saves files.

A save that finds a checkpoint for its temporary file checks both files against it and
goes on from there: nothing already written is decrypted or written again. Whatever does
not match (another file at that name, bytes changed, a checkpoint that does not open)
starts the save over from nothing.

A message with several attachments is saved one file after the other. The files a save
completed before it was interrupted are noted too (``record_saved``: the drop, the signed
hash and the file's size, inode and modification time), so the next save of that message
into that folder counts them as saved instead of refusing them as existing files or
fetching and decrypting them again; a file changed since is not counted (then it is an
existing file as any other). The notes go when the whole message is saved.

The plaintext of an interrupted save stays only in that temporary file, and only while a
checkpoint names it. It goes when the save completes (it becomes the file), when a check
fails, when a save into the same folder finds no checkpoint of its profile for it, and at
the first opening of the profile (every ``kok`` command, the app, the agent) once the
checkpoint is older than ``RESUME_WINDOW``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .mailbox import MailboxCorrupt, MailboxStore, ProfileTampered
from .transfer import discard_save_file

RESUME_WINDOW = 24 * 3600
"""Seconds an interrupted save can be resumed; then its files are removed."""
PREFIX = "save_checkpoint/"
SAVED_PREFIX = "saved_file/"


def _identity(facts: os.stat_result) -> str:
    # as text: inode numbers and nanosecond times pass JSON's safe integer range
    return f"{facts.st_size}:{facts.st_ino}:{facts.st_mtime_ns}"


class SaveCheckpoints:
    """The sealed checkpoints of one profile's interrupted saves, by temporary file."""

    def __init__(self, store: MailboxStore, clock: Callable[[], int]) -> None:
        self._store = store
        self._clock = clock

    def _key(self, tmp: Path) -> str:
        return self._store.private_key_name(PREFIX, str(tmp))

    async def load(self, tmp: Path) -> dict[str, Any] | None:
        """The checkpoint for ``tmp``, if one was stored (and opens) and is still recent."""
        key = self._key(tmp)
        try:
            facts = await self._store.sealed_state(key, what="save_checkpoint")
        except (ProfileTampered, MailboxCorrupt):
            facts = None  # not ours to trust: the save starts over
        if facts is None or facts.get("tmp") != str(tmp) or not self._recent(facts):
            await self._store.delete_state(key)
            return None
        return facts

    async def store(self, tmp: Path, facts: dict[str, Any]) -> None:
        """Record how far the save into ``tmp`` got."""
        await self._store.set_sealed_state(self._key(tmp),
                                           {**facts, "tmp": str(tmp), "at": self._clock()})

    async def forget(self, tmp: Path) -> None:
        await self._store.delete_state(self._key(tmp))

    async def _facts(self, key: str) -> dict[str, Any] | None:
        try:
            return await self._store.sealed_state(key, what="save_checkpoint")
        except (ProfileTampered, MailboxCorrupt):
            await self._store.delete_state(key)  # not ours to trust
            return None

    async def record_saved(self, path: Path, drop: str, signed_hash: str) -> None:
        """Note that an interrupted save of a message completed ``path`` (drop ``drop``)."""
        here = await asyncio.to_thread(os.stat, path, follow_symlinks=False)
        await self._store.set_sealed_state(
            self._store.private_key_name(SAVED_PREFIX, str(path)),
            {"drop": drop, "hash": signed_hash, "at": self._clock(),
             "file": _identity(here)})

    async def saved_earlier(self, path: Path, drop: str, signed_hash: str) -> bool:
        """True if an interrupted save of this message completed ``path`` from ``drop`` and
        the file is still as it was then."""
        facts = await self._facts(self._store.private_key_name(SAVED_PREFIX, str(path)))
        if (facts is None or not self._recent(facts) or facts.get("drop") != drop
                or facts.get("hash") != signed_hash):
            return False
        try:
            here = await asyncio.to_thread(os.stat, path, follow_symlinks=False)
        except OSError:
            return False
        return _identity(here) == facts.get("file")

    async def forget_saved(self, path: Path) -> None:
        await self._store.delete_state(self._store.private_key_name(SAVED_PREFIX, str(path)))

    def _recent(self, facts: dict[str, Any]) -> bool:
        at, now = facts.get("at"), self._clock()
        # a checkpoint from the future (a clock set back) counts as old: remove it
        return isinstance(at, int) and now - RESUME_WINDOW <= at <= now + 300

    async def sweep(self) -> int:
        """Remove the files of saves not resumed within ``RESUME_WINDOW``; how many."""
        removed = 0
        for key in await self._store.state_keys(PREFIX):
            try:
                facts = await self._store.sealed_state(key, what="save_checkpoint")
            except (ProfileTampered, MailboxCorrupt):
                await self._store.delete_state(key)
                continue
            if facts is None or self._recent(facts):
                continue
            for name in ("tmp", "part"):
                if isinstance(facts.get(name), str):
                    await asyncio.to_thread(discard_save_file, Path(facts[name]))
            await self._store.delete_state(key)
            removed += 1
        for key in await self._store.state_keys(SAVED_PREFIX):
            facts = await self._facts(key)
            if facts is not None and not self._recent(facts):
                await self._store.delete_state(key)  # the note only: the file is the person's
        return removed
