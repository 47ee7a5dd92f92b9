"""Online backup and offline restore of a relay's state (``relay backup`` / ``relay restore``).

Theory of operation. A backup is a folder::

    manifest.json   what the backup holds: when, schema version, key-log size and head
                    hash, the relay's log-key and network fingerprints, and every file
                    with its size and SHA-256. Written last: no manifest, no backup.
    relay.db        the database as of one instant, made by SQLite's online backup API
                    in one step (one read transaction; in WAL mode writers go on)
    blobs/ID.blob   the file of every drop that is complete in that snapshot
    relay.toml, network.json   the (public) configuration and network anchor

``relay.key`` is never in it: it is the relay's secret and is kept offline, apart from the
backups (deploy/OPERATOR.md). Unfinished uploads are not in it either: after a restore an
uploader is told to resume at offset 0.

Nothing is ever torn. Every file is written under a temporary name, fsynced and renamed.
A completed drop's file never changes; it is only wiped (zeros, then unlink) *after* its
row was deleted. So a blob copied while its row still exists in the live database *after*
the copy finished is intact; a blob whose row is gone by then is dropped from the backup
(file and row), since the relay deleted it anyway.

Restore goes into a relay directory whose relay is stopped (the directory lock proves it)
and which holds the ``relay.key`` the backup was made with (its log-key fingerprint must
match). It moves the current database and blobs aside into ``replaced-<time>/`` (nothing
is deleted), copies the backup in after checking every file's hash, and moves the
message cursor sequence forward by ``CURSOR_GAP``: clients that saw cursors issued after
the backup was taken must still see every new message, which they fetch by "after my
last cursor".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol import SigningKeyPair

from .config import CONFIG_FILE, KEY_FILE, NETWORK_FILE, RelayConfig, read_anchor, read_keys
from .dirlock import DirectoryLock, RelayRunning

__all__ = ["BackupError", "BackupSummary", "RestoreSummary", "backup_relay", "restore_relay"]

MANIFEST = "manifest.json"
FORMAT = "kok-relay-backup/1"
BLOBS = "blobs"
DATABASE = "relay.db"
PIECE = 1024 * 1024
# Far more messages than a relay stores between two backups: cursors after a restore are
# larger than any a client saw before it.
CURSOR_GAP = 1 << 32


class BackupError(Exception):
    """A backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class BackupSummary:
    """What ``backup_relay`` wrote."""

    path: Path
    messages: int
    drops: int
    total_bytes: int
    seconds: float
    log_size: int


@dataclass(frozen=True)
class RestoreSummary:
    """What ``restore_relay`` put in place."""

    messages: int
    drops: int
    taken: int
    replaced: Path | None


# --- writing files that are never torn ----------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_file(source: Path, target: Path) -> tuple[int, str]:
    """Copy through ``target.tmp`` with fsync and rename; returns (size, SHA-256 hex)."""
    temp = target.with_name(target.name + ".tmp")
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as src, temp.open("wb") as dst:
        os.fchmod(dst.fileno(), 0o600)
        while piece := src.read(PIECE):
            dst.write(piece)
            digest.update(piece)
            size += len(piece)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(temp, target)
    return size, digest.hexdigest()


def _file_hash(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while piece := fh.read(PIECE):
            digest.update(piece)
            size += len(piece)
    return size, digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    temp = path.with_name(path.name + ".tmp")
    with temp.open("w", encoding="utf-8") as fh:
        json.dump(value, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


@contextlib.contextmanager
def _connect(path: Path, *, readonly: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    db = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


# --- backup --------------------------------------------------------------------------------


def _snapshot(live: Path, target: Path) -> None:
    """One consistent copy of the live database (one step: a single read transaction)."""
    temp = target.with_name(target.name + ".tmp")
    temp.unlink(missing_ok=True)
    with _connect(live) as src, _connect(temp) as dst:
        src.execute("PRAGMA busy_timeout=10000")
        src.backup(dst)  # pages=-1: everything in one step, so one instant's state
        # a self-contained file: no -wal beside it
        dst.execute("PRAGMA journal_mode=DELETE")
        dst.execute("PRAGMA secure_delete=ON")
    os.chmod(temp, 0o600)
    fd = os.open(temp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, target)


def _log_facts(db: sqlite3.Connection) -> tuple[int, str]:
    row = db.execute("SELECT COUNT(*), (SELECT hash FROM log_entries ORDER BY idx DESC LIMIT 1)"
                     " FROM log_entries").fetchone()
    return int(row[0]), bytes(row[1] or b"").hex()


def _schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def backup_relay(config: RelayConfig, out: Path) -> BackupSummary:
    """Write a consistent backup of the (running or stopped) relay into the new folder ``out``."""
    started = time.monotonic()
    live = config.database_path
    if not live.is_file():
        raise BackupError(f"there is no database at {live}: nothing to back up")
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: give a new folder for each backup")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    (out / BLOBS).mkdir(mode=0o700, exist_ok=True)
    database = out / DATABASE
    _snapshot(live, database)
    files: dict[str, dict[str, Any]] = {}
    with _connect(database) as snap, _connect(live, readonly=True) as now_db:
        now_db.execute("PRAGMA busy_timeout=10000")
        complete = [bytes(r[0]) for r in snap.execute(
            "SELECT id FROM drops WHERE complete = 1 ORDER BY id")]
        dropped = []
        for drop_id in complete:
            name = f"{drop_id.hex()}.blob"
            source = config.blob_path / name
            try:
                size, digest = _copy_file(source, out / BLOBS / name)
            except FileNotFoundError:
                dropped.append(drop_id)
                continue
            still = now_db.execute("SELECT 1 FROM drops WHERE id = ? AND complete = 1",
                                   (drop_id,)).fetchone()
            if still is None:  # deleted (and perhaps being wiped) meanwhile: not in the backup
                (out / BLOBS / name).unlink()
                dropped.append(drop_id)
                continue
            files[f"{BLOBS}/{name}"] = {"size": size, "sha256": digest}
        if dropped:
            snap.executemany("DELETE FROM drops WHERE id = ?", [(d,) for d in dropped])
        snap.execute("VACUUM")
        log_size, head_hash = _log_facts(snap)
        messages = int(snap.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        schema = _schema_version(snap)
    _fsync_dir(out / BLOBS)
    files[DATABASE] = dict(zip(("size", "sha256"), _file_hash(database), strict=True))
    for name in (CONFIG_FILE, NETWORK_FILE):
        size, digest = _copy_file(config.directory / name, out / name)
        files[name] = {"size": size, "sha256": digest}
    manifest = {
        "format": FORMAT,
        "taken": int(time.time()),
        "schema_version": schema,
        "log_size": log_size,
        "log_head_hash": head_hash,
        "log_key_fingerprint": SigningKeyPair.from_seed(config.log_seed).fingerprint,
        "network_fingerprint": config.network.fingerprint,
        "messages": messages,
        "drops": len(complete) - len(dropped),
        "files": files,
    }
    _write_json(out / MANIFEST, manifest)
    _fsync_dir(out)
    return BackupSummary(path=out, messages=messages, drops=len(complete) - len(dropped),
                         total_bytes=sum(int(f["size"]) for f in files.values()),
                         seconds=time.monotonic() - started, log_size=log_size)


# --- restore -------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a backup folder, checked against the files it lists."""
    try:
        manifest = json.loads((source / MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST}: it is not a finished kok relay "
                          "backup") from None
    except ValueError as exc:
        raise BackupError(f"{source / MANIFEST} is damaged: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is not a backup this relay can restore (format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else '?'})")
    for name, expected in manifest["files"].items():
        path = source / name
        if not path.is_file():
            raise BackupError(f"the backup lacks {name}: restore from another backup")
        if _file_hash(path) != (expected["size"], expected["sha256"]):
            raise BackupError(f"{name} in the backup does not match its manifest (damaged): "
                              "restore from another backup")
    return manifest


def restore_relay(directory: Path, source: Path) -> RestoreSummary:
    """Put the backup at ``source`` in place in the stopped relay's ``directory``."""
    manifest = read_manifest(source)
    directory = directory.resolve()
    key_path = directory / KEY_FILE
    if not key_path.is_file():
        raise BackupError(f"there is no {KEY_FILE} in {directory}: put the offline copy of the "
                          f"relay's {KEY_FILE} there first (mode 0600); backups never hold it")
    log_seed, _ = read_keys(key_path)
    if SigningKeyPair.from_seed(log_seed).fingerprint != manifest["log_key_fingerprint"]:
        raise BackupError(f"the {KEY_FILE} in {directory} belongs to another relay than the "
                          "backup: restore it into the directory of the relay it came from")
    try:
        lock = DirectoryLock(directory).acquire()
    except RelayRunning as exc:
        raise BackupError(f"{exc}: stop it before restoring (systemctl stop kok-relay)") from None
    try:
        return _restore_locked(directory, source, manifest)
    finally:
        lock.release()


def _restore_locked(directory: Path, source: Path, manifest: dict[str, Any]) -> RestoreSummary:
    for name in (CONFIG_FILE, NETWORK_FILE):
        if not (directory / name).exists():
            _copy_file(source / name, directory / name)
    if read_anchor(directory / NETWORK_FILE).fingerprint != manifest["network_fingerprint"]:
        raise BackupError(f"{directory / NETWORK_FILE} is another network's anchor than the "
                          "backup's")
    from .config import load_config

    config = load_config(directory)
    replaced = _move_aside(config)
    blob_root = config.blob_path
    blob_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in manifest["files"]:
        if name.startswith(BLOBS + "/"):
            _copy_file(source / name, blob_root / name.split("/", 1)[1])
    _fsync_dir(blob_root)
    target = config.database_path
    temp = target.with_name(target.name + ".restore")
    _copy_file(source / DATABASE, temp)
    with _connect(temp) as db:
        db.execute("UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'messages'",
                   (CURSOR_GAP,))
        db.execute("INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', ? WHERE NOT "
                   "EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages')",
                   (CURSOR_GAP,))
    os.replace(temp, target)
    _fsync_dir(target.parent)
    return RestoreSummary(messages=int(manifest["messages"]), drops=int(manifest["drops"]),
                          taken=int(manifest["taken"]), replaced=replaced)


def _move_aside(config: RelayConfig) -> Path | None:
    """Move the current database files and blobs into ``replaced-<time>/`` (never delete)."""
    database = config.database_path
    present = [p for p in (database, database.with_name(database.name + "-wal"),
                           database.with_name(database.name + "-shm"), config.blob_path)
               if p.exists()]
    if not present:
        return None
    aside = config.directory / time.strftime("replaced-%Y%m%dT%H%M%SZ", time.gmtime())
    aside.mkdir(mode=0o700)
    for path in present:
        shutil.move(str(path), aside / path.name)
    _fsync_dir(config.directory)
    return aside
