"""File-system blob store for file drops.

Theory of operation
-------------------
A drop's bytes live in one file per drop under ``<blob dir>/``. While an upload is open
the file is ``<id>.part``; each append is written at the current end, flushed and
fsynced in a worker thread (never on the event loop), so an acknowledged offset survives a
crash. ``complete`` renames ``<id>.part`` to ``<id>.blob`` and fsyncs the directory; only
``.blob`` files are ever served. Deletion overwrites the file with zeros before unlinking
(best effort on copy-on-write file systems; the bytes are ciphertext in any case).

Blob names are the hex of the 16-byte drop id, so no name from a client reaches the file
system.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

WRITE_PIECE = 1024 * 1024


class BlobStore:
    """Blob files of drops: append while open, rename on completion, ranged reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _part(self, drop_id: bytes) -> Path:
        return self.root / f"{drop_id.hex()}.part"

    def _blob(self, drop_id: bytes) -> Path:
        return self.root / f"{drop_id.hex()}.blob"

    def _fsync_dir(self) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    async def create(self, drop_id: bytes) -> None:
        """An empty part file for a new upload."""

        def create() -> None:
            fd = os.open(self._part(drop_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            self._fsync_dir()

        await asyncio.to_thread(create)

    async def part_size(self, drop_id: bytes) -> int | None:
        """Bytes durably written to an open upload (None if there is none)."""
        try:
            return (await asyncio.to_thread(os.stat, self._part(drop_id))).st_size
        except FileNotFoundError:
            return None

    async def append(self, drop_id: bytes, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` (which must be the end) and fsync."""

        def write() -> None:
            fd = os.open(self._part(drop_id), os.O_WRONLY)
            try:
                view = memoryview(data)
                pos = offset
                while view:
                    n = os.pwrite(fd, view, pos)
                    view = view[n:]
                    pos += n
                os.fsync(fd)
            finally:
                os.close(fd)

        await asyncio.to_thread(write)

    async def truncate(self, drop_id: bytes, size: int) -> None:
        """Cut an open upload back to ``size`` (drops bytes of an unacknowledged request)."""
        await asyncio.to_thread(os.truncate, self._part(drop_id), size)

    async def complete(self, drop_id: bytes) -> None:
        """Make a finished upload servable: fsync, rename, fsync the directory."""

        def finish() -> None:
            fd = os.open(self._part(drop_id), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._part(drop_id), self._blob(drop_id))
            self._fsync_dir()

        await asyncio.to_thread(finish)

    def blob_size(self, drop_id: bytes) -> int | None:
        try:
            return self._blob(drop_id).stat().st_size
        except FileNotFoundError:
            return None

    async def read_range(self, drop_id: bytes, start: int, end: int,
                         piece: int = WRITE_PIECE) -> AsyncIterator[bytes]:
        """Yield bytes ``[start, end)`` of a completed blob in pieces, read in a thread."""
        fd = await asyncio.to_thread(os.open, self._blob(drop_id), os.O_RDONLY)
        try:
            pos = start
            while pos < end:
                data = await asyncio.to_thread(os.pread, fd, min(piece, end - pos), pos)
                if not data:
                    break
                pos += len(data)
                yield data
        finally:
            os.close(fd)

    async def delete(self, drop_id: bytes) -> None:
        """Overwrite with zeros, then unlink, whichever of part/blob exists."""

        def wipe(path: Path) -> None:
            try:
                fd = os.open(path, os.O_WRONLY)
            except FileNotFoundError:
                return
            try:
                size = os.fstat(fd).st_size
                zeros = bytes(min(size, WRITE_PIECE))
                pos = 0
                while pos < size:
                    pos += os.pwrite(fd, zeros[: min(len(zeros), size - pos)], pos)
                os.fsync(fd)
            finally:
                os.close(fd)
            path.unlink(missing_ok=True)

        def both() -> None:
            wipe(self._part(drop_id))
            wipe(self._blob(drop_id))
            self._fsync_dir()

        await asyncio.to_thread(both)

    def stored_ids(self) -> list[bytes]:
        """Every drop id with a file on disk (for orphan clean-up)."""
        ids = []
        for path in self.root.iterdir():
            if path.suffix in (".part", ".blob"):
                try:
                    ids.append(bytes.fromhex(path.stem))
                except ValueError:
                    continue
        return ids

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.iterdir() if p.is_file())
