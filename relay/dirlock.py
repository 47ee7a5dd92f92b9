"""One relay per directory: an advisory lock on ``relay.lock`` held while a relay serves.

``relay serve`` holds it for its whole life; ``relay restore`` takes it so that it never
writes under a running relay (nor lets one start meanwhile). The lock is ``flock``-based:
the kernel drops it when the process ends, however it ends, so a crash leaves no stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "relay.lock"


class RelayRunning(Exception):
    """Another process (a running relay, or a restore) holds the relay directory."""


class DirectoryLock:
    """The exclusive lock on one relay directory."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> DirectoryLock:
        """Take the lock now or raise ``RelayRunning`` (never waits)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RelayRunning(f"a relay is running on {self.path.parent}") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
