"""Operations figures: backup and restore of a full relay, shutdown, start-up refusals.

    python -m tests.benchmarks ops        # 10,000 messages and 1 GiB of drops (a few minutes)
    KOK_BENCH_QUICK=1 python -m tests.benchmarks ops   # smoke run, figures meaningless

* **Backup**: a real relay holding ``MESSAGES`` 1 KiB envelopes and ``DROP_BYTES`` of
  completed file drops; ``relay backup`` runs as a process while the relay serves. Its
  time and size, beside a baseline measured in the same run: copying the same relay
  directory with ``shutil.copytree`` (no consistency, just the bytes). Then
  ``relay restore`` of it into the stopped relay, and the time to be serving again.
* **Shutdown**: seconds from SIGTERM to exit for the relay with 20 open event streams and
  a stalled upload, beside the same relay idle.
* **Start-up refusals**: seconds until ``relay serve`` exits with ``Error:`` on each kind of
  damaged state, beside the baseline ``relay --help`` (interpreter start and imports).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp

from tests.ops.opsworld import CT_UPLOAD, Pair, make_pair
from tests.support.actors import Api, envelope
from tests.support.relayproc import REPO, RelayProcess, _test_env, free_port

QUICK = os.environ.get("KOK_BENCH_QUICK") == "1"
MIB = 1024 * 1024
MESSAGES = 200 if QUICK else 10_000
DROPS = 2 if QUICK else 16
DROP_SIZE = 2 * MIB if QUICK else 64 * MIB  # 16 x 64 MiB = 1 GiB
SENDERS = 32
# the load generator is one staff member: lift the per-person and per-org rate limits
UNLIMITED = {"KOK_RELAY_LIMITS_STAFF_REQUESTS_PER_MINUTE": "0",
             "KOK_RELAY_LIMITS_ORG_REQUESTS_PER_MINUTE": "0"}


def relay_cli(relay_dir: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "relay", *args, "--dir", str(relay_dir)],
                            capture_output=True, text=True, env=_test_env({}), cwd=REPO,
                            check=False)
    return time.monotonic() - started, result


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def fill(pair: Pair, alice: str) -> None:
    """``MESSAGES`` sends by ``SENDERS`` concurrent senders, then ``DROPS`` drops."""
    left = list(range(MESSAGES))

    async def sender() -> None:
        while left:
            left.pop()
            await pair.api.send(alice, [envelope(pair.alice, pair.b, "x" * 700)], ttl=86400)

    await asyncio.gather(*(sender() for _ in range(SENDERS)))
    piece = os.urandom(8 * MIB if not QUICK else MIB)
    for _ in range(DROPS):
        data = (piece * (DROP_SIZE // len(piece) + 1))[:DROP_SIZE]
        await pair.drop(alice, data, piece=8 * MIB)


def bench_backup(base: Path) -> None:
    relay = RelayProcess.start(base / "full", env=UNLIMITED)

    async def populate() -> None:
        timeout = aiohttp.ClientTimeout(total=3600)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            api = Api(relay.url, http)
            pair = await make_pair(api, relay.network_key)
            await fill(pair, await api.login(pair.alice))

    try:
        started = time.monotonic()
        asyncio.run(populate())
        print(f"  filled: {MESSAGES} messages, {DROPS * DROP_SIZE / MIB:.0f} MiB of drops "
              f"in {time.monotonic() - started:.1f} s")
        relay_bytes = tree_bytes(relay.dir)
        started = time.monotonic()
        shutil.copytree(relay.dir, base / "plain-copy")
        copy_seconds = time.monotonic() - started
        shutil.rmtree(base / "plain-copy")
        seconds, result = relay_cli(relay.dir, "backup", "--out", str(base / "backup"))
        assert result.returncode == 0, result.stderr
        size = tree_bytes(base / "backup")
        print(f"  relay directory: {relay_bytes / MIB:.1f} MiB")
        print(f"  relay backup while serving: {seconds:.2f} s, {size / MIB:.1f} MiB "
              f"({seconds / max(copy_seconds, 1e-6) * 100:.0f} % of the time of a plain "
              f"copy: {copy_seconds:.2f} s)")
    finally:
        relay.stop()
    seconds, result = relay_cli(relay.dir, "restore", str(base / "backup"))
    assert result.returncode == 0, result.stderr
    started = time.monotonic()
    relay._spawn()
    serving = time.monotonic() - started
    relay.stop()
    print(f"  relay restore: {seconds:.2f} s; serving again {serving:.2f} s after start")


async def _hold_streams(relay: RelayProcess, streams: int) -> aiohttp.ClientSession:
    """Open ``streams`` event streams and one stalled upload; returns the session holding them."""
    http = aiohttp.ClientSession()
    api = Api(relay.url, http)
    pair = await make_pair(api, relay.network_key)
    alice, bob = await api.login(pair.alice), await api.login(pair.bob)
    for _ in range(streams):
        await http.ws_connect(relay.url.replace("http", "ws", 1) + "/v1/events",
                              headers={"Authorization": f"Bearer {bob}"})
    created = await api.ok("POST", "/v1/drops", {"size": 2 * MIB, "to": [pair.b.org_id]},
                           token=alice, expect=201)
    stalled = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield bytes(MIB)
        await stalled.wait()

    async def upload() -> None:
        try:
            async with http.patch(f"{relay.url}/v1/drops/{created['id']}", data=body(),
                                  headers={"Authorization": f"Bearer {alice}",
                                           "Content-Type": CT_UPLOAD, "Upload-Offset": "0",
                                           "Kok-Upload-Token": created["upload_token"]}):
                pass
        except aiohttp.ClientError:
            pass

    uploading = asyncio.get_running_loop().create_task(upload())
    await asyncio.sleep(0.5)
    http.uploading = uploading  # type: ignore[attr-defined]  # keep the task referenced
    return http


def _time_sigterm(relay: RelayProcess) -> float:
    assert relay.proc is not None
    started = time.monotonic()
    os.kill(relay.pid, signal.SIGTERM)
    relay.proc.wait(30)
    relay.proc = None
    return time.monotonic() - started


def bench_shutdown(base: Path) -> None:
    relay = RelayProcess.start(base / "shutdown")
    idle = _time_sigterm(relay)
    relay._spawn()

    async def busy() -> float:
        http = await _hold_streams(relay, 20)
        seconds = await asyncio.to_thread(_time_sigterm, relay)
        await http.close()
        return seconds

    loaded = asyncio.run(busy())
    print(f"  shutdown after SIGTERM: {loaded:.2f} s with 20 event streams and a stalled "
          f"upload ({loaded / idle * 100:.0f} % of an idle relay's {idle:.2f} s)")


def bench_refusals(base: Path) -> None:
    relay = RelayProcess.start(base / "refusals")
    relay.stop()
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "relay", "--help"], capture_output=True, cwd=REPO,
                   env=_test_env({}), check=True)
    baseline = time.monotonic() - started

    def truncate(d: Path) -> None:
        with (d / "relay.db").open("r+b") as fh:
            fh.truncate((d / "relay.db").stat().st_size // 2)

    def header(d: Path) -> None:
        with (d / "relay.db").open("r+b") as fh:
            fh.write(bytes(100))

    def future(d: Path) -> None:
        import sqlite3

        db = sqlite3.connect(d / "relay.db")
        db.execute("UPDATE schema_version SET version = 99")
        db.commit()
        db.close()

    cases: dict[str, Callable[[Path], object]] = {
        "truncated database": truncate,
        "header destroyed": header,
        "random bytes": lambda d: (d / "relay.db").write_bytes(
            os.urandom((d / "relay.db").stat().st_size)),
        "future schema": future,
        "missing database": lambda d: (d / "relay.db").unlink(),
    }
    for name, damage in cases.items():
        target = base / f"case-{len(os.listdir(base))}"
        shutil.copytree(relay.dir, target)
        damage(target)
        port = free_port()
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "relay", "serve", "--dir", str(target)], capture_output=True,
            text=True, cwd=REPO, timeout=60, check=False,
            env=_test_env({"KOK_RELAY_SERVER_PORT": str(port)}))
        seconds = time.monotonic() - started
        assert result.returncode == 1 and result.stderr.startswith("Error:"), result.stderr
        print(f"  start-up refusal, {name}: {seconds:.2f} s "
              f"({seconds / baseline * 100:.0f} % of `relay --help`: {baseline:.2f} s)")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="kok-bench-ops-") as tmp:
        base = Path(tmp)
        print(f"ops: backup of a relay with {MESSAGES} messages and "
              f"{DROPS * DROP_SIZE / MIB:.0f} MiB of drops")
        bench_backup(base)
        print("ops: shutdown")
        bench_shutdown(base)
        print("ops: start-up refusals")
        bench_refusals(base)


if __name__ == "__main__":
    main()
