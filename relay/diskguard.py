"""A full disk is a clear state: below a free-space watermark, new data is refused with 507.

Theory of operation. The relay keeps ``[limits] min_free_disk_bytes`` free on the file
systems of its database and its file drops. Below that watermark it refuses what *adds*
data: sends (``POST /v1/messages``), new drops (``POST /v1/drops``) and upload bytes
(``PATCH /v1/drops/{id}``; the upload keeps its offset and resumes later), each with
``507 storage_full``. Everything that reads or frees space goes on: logins (a session row
is tiny, and the watermark is the room kept for it), fetches, downloads, acknowledgements,
retractions, deletions. So recipients can still read and acknowledge, which frees space.

Crossing the watermark also starts a purge at once (not only every ``expiry.interval``):
uploads idle past ``drop_idle_ttl`` and part files without a drop are deleted then, so
abandoned uploads give their space back.

Should the disk fill completely anyway (another program wrote to it), a write that fails
for lack of space (SQLite's "database or disk is full", ``ENOSPC``) is answered
``507 storage_full`` as well, never ``500``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog
from aiohttp import web

from .config import RelayConfig
from .errors import StorageFull

log = structlog.get_logger("relay")

GUARDED = frozenset({
    ("POST", "/v1/messages"),
    ("POST", "/v1/drops"),
    ("PATCH", "/v1/drops/{id}"),
})
CHECK_EVERY = 1.0  # seconds a free-space reading is reused
PURGE_EVERY = 30.0  # at most one extra purge per this many seconds while low


def free_bytes(paths: tuple[Path, ...]) -> int:
    """The lowest free space (for an unprivileged writer) among the file systems of ``paths``."""
    free = []
    for path in paths:
        try:
            stat = os.statvfs(path)
        except OSError:
            continue
        free.append(stat.f_bavail * stat.f_frsize)
    return min(free) if free else 0


def is_disk_full(exc: BaseException) -> bool:
    """Did a write fail for lack of space?"""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


class DiskGuard:
    """The watermark check, and the answer to a write that found the disk full."""

    def __init__(self, config: RelayConfig,
                 purge: Callable[[], Awaitable[object]] | None = None) -> None:
        self.watermark = config.limits.min_free_disk_bytes
        self.paths = (config.database_path.parent, config.blob_path)
        self._purge = purge
        self._free = 0
        self._read_at = -CHECK_EVERY
        self._purged_at = -PURGE_EVERY
        self._purging: asyncio.Task[object] | None = None

    def free(self) -> int:
        """Free bytes now (a reading at most ``CHECK_EVERY`` seconds old)."""
        clock = time.monotonic()
        if clock - self._read_at >= CHECK_EVERY:
            self._free = free_bytes(self.paths)
            self._read_at = clock
        return self._free

    def require_room(self) -> None:
        """Raise ``StorageFull`` below the watermark (and start reclaiming space)."""
        free = self.free()
        if free >= self.watermark:
            return
        self._start_purge()
        raise StorageFull("The relay's disk is nearly full, so it takes no new messages or "
                          "files now; reading and acknowledging still work. Try again later.")

    def _start_purge(self) -> None:
        clock = time.monotonic()
        if self._purge is None or clock - self._purged_at < PURGE_EVERY:
            return
        if self._purging is not None and not self._purging.done():
            return
        self._purged_at = clock
        log.warning("disk_low", watermark=self.watermark)
        self._purging = asyncio.get_running_loop().create_task(self._purge_quietly())

    async def _purge_quietly(self) -> object:
        assert self._purge is not None
        try:
            return await self._purge()
        except Exception as exc:  # the regular expiry task retries
            log.error("purge_failed", error=type(exc).__name__)
            return None
        finally:
            self._read_at = -CHECK_EVERY  # read the space again after reclaiming

    def admit(self, request: web.Request) -> None:
        """Refuse a request that adds data while the disk is below the watermark (the
        relay's middleware, ``relay.edge``, asks before every handler)."""
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else ""
        if (request.method, route) in GUARDED:
            self.require_room()

    def storage_full(self, exc: BaseException) -> StorageFull | None:
        """``StorageFull`` if ``exc`` is a write that failed for lack of space (and start
        reclaiming space), else None."""
        if is_disk_full(exc):
            self._start_purge()
            return StorageFull("The relay's disk is full; try again later.")
        return None
