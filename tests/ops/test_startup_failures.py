"""Start-up on damaged or unusable state: one clear ``Error:`` line, non-zero exit, at once.

A real relay builds some state (two organisations, messages) and stops. Each case copies
that relay directory, damages the copy the way a disk, an operator or an attacker would,
and runs ``relay serve`` as a process: it must exit non-zero long before the hang
detector (``HANG``) fires, print exactly one line, starting ``Error:`` and naming the
problem and the remedy, no traceback, and leave the files as they were. Read-only files
and folders are made with read-only bind mounts when the tests run as root (root ignores
file modes), with file modes otherwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.ops.opsworld import make_pair
from tests.support.actors import Api
from tests.support.relayproc import REPO, RelayProcess, _test_env, free_port

HANG = 20.0  # a relay that has not exited by then hangs (the bug this guards against)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A relay directory that has served: key log with two orgs, three messages."""
    import asyncio

    base = tmp_path_factory.mktemp("served")
    relay = RelayProcess.start(base / "base")

    async def populate() -> None:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            pair = await make_pair(api, relay.network_key)
            alice = await api.login(pair.alice)
            for i in range(3):
                await pair.send(alice, f"m{i}")

    try:
        asyncio.run(populate())
    finally:
        relay.stop()
    return relay.dir


def copy_of(served: Path, tmp_path: Path) -> Path:
    target = tmp_path / "relay"
    shutil.copytree(served, target)
    return target


def serve(directory: Path, *extra: str) -> tuple[int, str, float]:
    """Run ``relay serve``; (exit code, stderr, seconds). A relay that serves is stopped."""
    port = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--dir", str(directory), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        env=_test_env({"KOK_RELAY_SERVER_PORT": str(port),
                       "KOK_RELAY_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}"}))
    try:
        _, err = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError("the relay neither served nor exited: it hangs\n"
                             + err.decode(errors="replace")[-2000:]) from None
    return proc.returncode, err.decode(errors="replace"), time.monotonic() - started


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir()) if p.is_file() and p.name != "relay.lock"}


def assert_refused(directory: Path, case: str, *needles: str, extra: tuple[str, ...] = ()) -> None:
    before = digest(directory)
    code, err, _ = serve(directory, *extra)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert digest(directory) == before, "a refused start changed the relay's files"


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` (file or folder) read-only for the relay: a bind mount for root, modes else."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield
        finally:
            path.chmod(mode)


def damage_truncate(db: Path) -> None:
    with db.open("r+b") as fh:
        fh.truncate(db.stat().st_size // 2)


def damage_random(db: Path) -> None:
    db.write_bytes(os.urandom(db.stat().st_size))


def damage_header(db: Path) -> None:
    with db.open("r+b") as fh:
        fh.write(bytes(100))


@pytest.mark.parametrize(("case", "damage", "needles"), [
    ("truncated", damage_truncate, ("damaged", "relay restore")),
    ("random", damage_random, ("not an SQLite database", "relay restore")),
    ("header destroyed", damage_header, ("not an SQLite database", "relay restore")),
])
def test_a_damaged_database_is_refused_at_once(
        served: Path, tmp_path: Path, case: str, damage: Callable[[Path], None],
        needles: tuple[str, ...]) -> None:
    directory = copy_of(served, tmp_path)
    damage(directory / "relay.db")
    assert_refused(directory, case, *needles)


def test_an_altered_key_log_row_is_refused(served: Path, tmp_path: Path) -> None:
    directory = copy_of(served, tmp_path)
    db = sqlite3.connect(directory / "relay.db")
    record = bytearray(db.execute("SELECT record FROM log_entries WHERE idx = 2").fetchone()[0])
    record[len(record) // 2] ^= 0x01  # one bit, as a forger or a bad sector would
    db.execute("UPDATE log_entries SET record = ? WHERE idx = 2", (bytes(record),))
    db.commit()
    db.close()
    assert_refused(directory, "altered key-log row", "key-log entry 2", "network office")


def test_a_database_of_a_future_schema_is_refused(served: Path, tmp_path: Path) -> None:
    directory = copy_of(served, tmp_path)
    db = sqlite3.connect(directory / "relay.db")
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    assert_refused(directory, "future schema", "schema version 99", "upgrade the relay")


def test_an_unwritable_relay_directory_is_refused(served: Path, tmp_path: Path) -> None:
    directory = copy_of(served, tmp_path)
    with read_only(directory):
        assert_refused(directory, "unwritable folder", "is not writable")


def test_a_read_only_database_is_refused(served: Path, tmp_path: Path) -> None:
    directory = copy_of(served, tmp_path)
    with read_only(directory / "relay.db"):
        assert_refused(directory, "read-only database", "cannot be written", "relay.db")


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_missing_or_empty_database_beside_relay_key_needs_new_store(
        served: Path, tmp_path: Path, state: str) -> None:
    directory = copy_of(served, tmp_path)
    if state == "missing":
        (directory / "relay.db").unlink()
    else:
        (directory / "relay.db").write_bytes(b"")
    assert_refused(directory, f"{state} database", f"relay.db is {state}", "--new-store",
                   "relay restore")
    # the operator says so: a new, empty store
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--dir", str(directory), "--new-store"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
        env=_test_env({"KOK_RELAY_SERVER_PORT": str(port),
                       "KOK_RELAY_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}"}))
    try:
        deadline = time.monotonic() + HANG
        while True:
            assert proc.poll() is None, "the relay refused --new-store"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/log/head",
                                            timeout=1) as answer:
                    assert json.loads(answer.read())["size"] == 0  # a new, empty key log
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(HANG)
    assert (directory / "relay.db").stat().st_size > 0


def test_a_freshly_initialised_directory_starts_without_new_store(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "base")  # init, then serve: no --new-store
    relay.stop()
