"""Start-up checks: refuse damaged or unusable state at once, with one clear sentence.

A relay that cannot serve must exit non-zero within seconds, so that systemd shows it as
failed (and restarts it, or the operator looks) instead of a process that runs without
listening. Two layers:

* ``preflight`` runs before anything is opened: the relay directory must be writable
  (a probe file is created and removed, which also catches read-only mounts for root),
  the database must be a writable SQLite file, and a missing or empty database beside an
  existing ``relay.key`` is refused unless the operator says ``--new-store``: that
  directory has served before, and a new empty store would silently drop its key log.
* ``explain`` turns whatever opening the store and rebuilding the key log raised
  (a malformed file, a future schema, an altered key-log row) into ``StartupRefused``
  with what happened and what to do; the app closes the store first, so no connection
  thread keeps the process alive.

``relay init`` creates the (empty) database, so a freshly initialised directory passes
without ``--new-store``.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

from .config import RelayConfig

__all__ = ["StartupRefused", "create_store_now", "explain", "preflight"]

SQLITE_HEADER = b"SQLite format 3\x00"
RESTORE_HINT = "restore it from a backup (relay restore, deploy/OPERATOR.md section 6)"


class StartupRefused(Exception):
    """The relay must not start; the message says why and what to do."""


def _probe_writable(directory: Path) -> None:
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise StartupRefused(
            f"the relay directory {directory} is not writable ({exc.strerror}): the relay "
            "must write its database there; check its owner, mode and mount") from None


def preflight(config: RelayConfig, *, new_store: bool = False) -> None:
    """Check the directory and database before opening anything (see the module docstring)."""
    _probe_writable(config.directory)
    if config.store.is_postgresql:  # no database file here: the store checks its server
        _blob_dir_writable(config.blob_path)
        return
    database = config.database_path
    try:
        size = database.stat().st_size
    except FileNotFoundError:
        size = None
    if size is None or size == 0:
        if not new_store:
            state = "is missing" if size is None else "is empty"
            raise StartupRefused(
                f"the database {database.name} {state} in {config.directory}, but relay.key "
                "is there: this relay has served before, and a new empty store would lose "
                f"its key log; {RESTORE_HINT}, or start once with --new-store to begin anew")
        return
    for path in (database, database.with_name(database.name + "-wal"),
                 database.with_name(database.name + "-shm")):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StartupRefused(
                f"the database file {path.name} cannot be written ({exc.strerror}): the relay "
                "would refuse every write; give the relay's user write access to it") from None
        try:
            header = os.read(fd, len(SQLITE_HEADER)) if path == database else SQLITE_HEADER
        finally:
            os.close(fd)
        if header != SQLITE_HEADER:
            raise StartupRefused(
                f"{database.name} is not an SQLite database (damaged or replaced); "
                f"{RESTORE_HINT}")
    _blob_dir_writable(config.blob_path)


def _blob_dir_writable(blobs: Path) -> None:
    if blobs.is_dir():
        try:
            _probe_writable(blobs)
        except StartupRefused as exc:
            raise StartupRefused(str(exc).replace("relay directory", "file-drop folder")) from None


def explain(exc: BaseException, config: RelayConfig) -> StartupRefused:
    """What an exception raised while opening the store or loading the key log means."""
    name = config.database_path.name
    if isinstance(exc, StartupRefused):
        return exc
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc)
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return StartupRefused(f"the database {name} cannot be written ({text}); give the "
                                  "relay's user write access to it and its directory")
        if "not a database" in text or "malformed" in text or "encrypted" in text:
            return StartupRefused(f"the database {name} is damaged ({text}); {RESTORE_HINT}")
        return StartupRefused(f"the database {name} cannot be used ({text}); {RESTORE_HINT}")
    if isinstance(exc, RuntimeError):
        text = str(exc)
        if "key-log entry" in text:
            return StartupRefused(f"{text}; {RESTORE_HINT}, and tell the network office")
        return StartupRefused(text)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return StartupRefused(f"cannot use the relay's files{where}: {exc.strerror or exc}")
    return StartupRefused(f"the relay could not start: {type(exc).__name__}: {exc}")


def create_store_now(config: RelayConfig) -> None:
    """Create the (empty) store at once; usable inside or outside a running event loop."""
    from .store import create_store

    async def create() -> None:
        store = create_store(config, readers=1)
        await store.open()
        await store.close()

    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(create())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="create-store")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    if config.database_path.exists():
        # SQLite gives its -wal and -shm files the database file's mode: private to all three
        config.database_path.chmod(0o600)
