"""Online backup and offline restore of a relay's state (``relay backup`` / ``relay restore``).

Theory of operation. A backup is a folder::

    manifest.json   what the backup holds: when, schema version, key-log size and head
                    hash, the relay's log-key and network fingerprints, and every file
                    with its size and SHA-256. Written last: no manifest, no backup.
    relay.db        the database as of one instant, made by the store (``RelayStore.
                    backup_to``; SQLite: its online backup API in one step, one read
                    transaction, so in WAL mode the relay's writes go on)
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
message cursor sequence forward (``store.snapshot.CURSOR_GAP``): clients that saw cursors
issued after the backup was taken must still see every new message, which they fetch by
"after my last cursor".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol import SigningKeyPair

from .config import CONFIG_FILE, KEY_FILE, NETWORK_FILE, RelayConfig, read_anchor, read_keys
from .dirlock import DirectoryLock, RelayRunning
from .store import create_store
from .store.snapshot import BackupFacts, BackupUnsupported, restore_sqlite

__all__ = ["BackupError", "BackupSummary", "RestoreSummary", "backup_relay", "restore_relay"]

MANIFEST = "manifest.json"
FORMAT = "kok-relay-backup/1"
BLOBS = "blobs"
DATABASE = "relay.db"
PIECE = 1024 * 1024


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


# --- backup --------------------------------------------------------------------------------


async def _copy_store(config: RelayConfig,
                      out: Path) -> tuple[BackupFacts, dict[str, dict[str, Any]]]:
    """The database copy (by the store) and the files of the drops complete in it."""
    files: dict[str, dict[str, Any]] = {}
    store = create_store(config, readers=1)
    await store.open()

    async def keep_drop(drop_id: bytes) -> bool:
        """Copy a complete drop's file; False if the relay deleted the drop meanwhile."""
        name = f"{drop_id.hex()}.blob"
        try:
            size, digest = await asyncio.to_thread(
                _copy_file, config.blob_path / name, out / BLOBS / name)
        except FileNotFoundError:
            return False
        row = await store.get_drop(drop_id)
        if row is None or not row.complete:  # deleted, perhaps wiped while we copied
            await asyncio.to_thread((out / BLOBS / name).unlink)
            return False
        files[f"{BLOBS}/{name}"] = {"size": size, "sha256": digest}
        return True

    try:
        return await store.backup_to(out / DATABASE, keep_drop), files
    except BackupUnsupported as exc:
        raise BackupError(str(exc)) from None
    finally:
        await store.close()


def backup_relay(config: RelayConfig, out: Path) -> BackupSummary:
    """Write a consistent backup of the (running or stopped) relay into the new folder ``out``."""
    started = time.monotonic()
    if not config.database_path.is_file():
        raise BackupError(f"there is no database at {config.database_path}: nothing to back up")
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: give a new folder for each backup")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    (out / BLOBS).mkdir(mode=0o700, exist_ok=True)
    facts, files = asyncio.run(_copy_store(config, out))
    _fsync_dir(out / BLOBS)
    files[DATABASE] = dict(zip(("size", "sha256"), _file_hash(out / DATABASE), strict=True))
    for name in (CONFIG_FILE, NETWORK_FILE):
        size, digest = _copy_file(config.directory / name, out / name)
        files[name] = {"size": size, "sha256": digest}
    manifest = {
        "format": FORMAT,
        "taken": int(time.time()),
        "schema_version": facts.schema_version,
        "log_size": facts.log_size,
        "log_head_hash": facts.log_head_hash,
        "log_key_fingerprint": SigningKeyPair.from_seed(config.log_seed).fingerprint,
        "network_fingerprint": config.network.fingerprint,
        "messages": facts.messages,
        "drops": facts.drops,
        "files": files,
    }
    _write_json(out / MANIFEST, manifest)
    _fsync_dir(out)
    return BackupSummary(path=out, messages=facts.messages, drops=facts.drops,
                         total_bytes=sum(int(f["size"]) for f in files.values()),
                         seconds=time.monotonic() - started, log_size=facts.log_size)


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
    restore_sqlite(temp, target)
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
