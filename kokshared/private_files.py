"""Files and folders only their owner may read; a file written so a crash never leaves half of it.

The relay and ``kok`` set ``PRIVATE_UMASK`` at their entry points, so that whatever a library
(SQLite's -wal and -shm files, a log, an exported anchor) creates is private even where the code
does not pass a mode; the places that matter also create with an explicit mode.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_UMASK = 0o077


def use_private_umask() -> None:
    """New files 0600 and folders 0700 for the rest of this process (and its children)."""
    os.umask(PRIVATE_UMASK)


def make_private_dir(path: Path) -> None:
    """Create ``path`` and every missing parent with mode 0700 (``mkdir -p`` ignores the mode)."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is filtered through the umask


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (temp file, fsync, rename).

    The folder is created 0700 if missing; the folder entry is synced after the rename, so
    after a crash the file holds either the old or the new content, never a mix.
    """
    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
