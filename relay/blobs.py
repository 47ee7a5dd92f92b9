"""File-system blob store for file drops.

Theory of operation
-------------------
A drop's bytes live in one file per drop under ``<blob dir>/``. While an upload is open
the file is ``<id>.part``; an upload request appends at the current end through a
``BlobWriter`` whose every write runs in a worker thread (never on the event loop) and
which fsyncs when the request ends. ``durable_size`` fsyncs and then reports the size, so
the offset a client is told to resume from is on disk. ``complete`` fsyncs,
renames ``<id>.part`` to ``<id>.blob`` and fsyncs the directory; only ``.blob`` files are
ever served. Deletion overwrites the file with zeros before unlinking (best effort on
copy-on-write file systems; the bytes are ciphertext in any case).

Blob names are the hex of the 16-byte drop id, so no name from a client reaches the file
system.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from kokshared.private_files import make_private_dir

WRITE_PIECE = 1024 * 1024
READ_PIECE = 1024 * 1024
IOV_MAX = 512


class BlobWriter:
    """Appends to one open upload; writes run in a thread, ``close`` fsyncs."""

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self.offset = offset

    def _write_all(self, pieces: list[bytes]) -> None:
        # one gathering system call for the pieces as they came off the socket (no join)
        views = [memoryview(p) for p in pieces if p]
        pos = self.offset
        while views:
            n = os.pwritev(self._fd, views[:IOV_MAX], pos)
            pos += n
            while views and n >= len(views[0]):
                n -= len(views[0])
                views.pop(0)
            if n:
                views[0] = views[0][n:]

    async def write(self, pieces: list[bytes]) -> None:
        """Append ``pieces`` at the current offset."""
        await asyncio.to_thread(self._write_all, pieces)
        self.offset += sum(map(len, pieces))

    async def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` (undo a refused request's bytes)."""
        await asyncio.to_thread(os.ftruncate, self._fd, size)
        self.offset = size

    async def close(self) -> None:
        """Fsync and close: what was written is durable when this returns."""

        def finish() -> None:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)

        await asyncio.to_thread(finish)


class BlobStore:
    """Blob files of drops: append while open, rename on completion, ranged reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        make_private_dir(root)

    def _part(self, drop_id: bytes) -> Path:
        return self.root / f"{drop_id.hex()}.part"

    def _blob(self, drop_id: bytes) -> Path:
        return self.root / f"{drop_id.hex()}.blob"

    def blob_path(self, drop_id: bytes) -> Path:
        """Where a completed drop's bytes are (for tests and the operator)."""
        return self._blob(drop_id)

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

    async def durable_size(self, drop_id: bytes) -> int | None:
        """Bytes of an open upload, fsynced first so the answer survives a crash."""

        def sync() -> int | None:
            try:
                fd = os.open(self._part(drop_id), os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                os.fsync(fd)
                return os.fstat(fd).st_size
            finally:
                os.close(fd)

        return await asyncio.to_thread(sync)

    async def open_writer(self, drop_id: bytes) -> BlobWriter:
        """A writer at the end of an open upload (the part file is made if it was lost)."""

        def open_part() -> tuple[int, int]:
            fd = os.open(self._part(drop_id), os.O_WRONLY | os.O_CREAT, 0o600)
            return fd, os.fstat(fd).st_size

        fd, size = await asyncio.to_thread(open_part)
        return BlobWriter(fd, size)

    async def complete(self, drop_id: bytes) -> None:
        """Make a finished upload servable: fsync, rename, fsync the directory.

        Safe to repeat: if an earlier call renamed the file but the relay stopped before
        recording completion, the ``.blob`` is already there and nothing more is done.
        """

        def finish() -> None:
            try:
                fd = os.open(self._part(drop_id), os.O_RDONLY)
            except FileNotFoundError:
                if self._blob(drop_id).exists():
                    return
                raise
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self._part(drop_id), self._blob(drop_id))
            self._fsync_dir()

        await asyncio.to_thread(finish)

    def blob_size(self, drop_id: bytes) -> int | None:
        """Size of a completed blob (None if there is none)."""
        try:
            return self._blob(drop_id).stat().st_size
        except FileNotFoundError:
            return None

    async def read_range(self, drop_id: bytes, start: int, end: int,
                         piece: int = READ_PIECE) -> AsyncIterator[bytes]:
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
                    drop_id = bytes.fromhex(path.stem)
                except ValueError:
                    continue
                if len(drop_id) == 16:
                    ids.append(drop_id)
        return ids

    def free_bytes(self) -> int:
        """Bytes still free for an unprivileged writer on the blob file system."""
        stat = os.statvfs(self.root)
        return stat.f_bavail * stat.f_frsize
