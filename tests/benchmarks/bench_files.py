"""File drops end to end beside raw secretstream and a bare aiohttp upload+download.

Figures, for a 1 GiB file and a 256 MiB one (to show memory flat in file size):

* **kok**: ``Client.send(attachments=[file])`` (encrypt while uploading to a real relay
  process: streamed to disk, fsynced, renamed) plus ``Client.save`` (download with the
  resumable ``.kokpart``, decrypt and verify while it arrives, fsync, rename), in MB/s of
  file size over the sum of both times. The client runs in a child process of its own,
  so its peak RSS (VmHWM) is its own; the relay's VmHWM is read from /proc as well.
* **bare aiohttp**: the same file uploaded (PUT, streamed to a file in a thread, fsynced)
  to a bare aiohttp server process and downloaded from it (``web.FileResponse``: sendfile)
  to a file that is fsynced, by an aiohttp client in its own child process: the ceiling for
  moving these bytes over HTTP on this machine with no crypto and no checks.
* **secretstream**: ``protocol.FileEncryptor`` then ``FileDecryptor`` over the same number
  of bytes in memory, single-threaded: the cost of the crypto alone (encrypt + decrypt +
  two SHA-256 passes).
* **the relay without crypto**: the file's bytes as they are, PATCHed to and GET from the
  relay's drop API by a plain aiohttp client (to a file, fsynced): what the relay itself
  costs beside the bare server, so the gap to kok shows where it is spent.

Target: kok >= 50 % of the bare round trip; RSS flat in file size. The runs of kok and bare
alternate (ROUNDS each) so both see the same machine load; the medians are reported.

Environment: ``KOK_BENCH_QUICK=1`` uses 16 and 64 MiB (a smoke run: figures meaningless);
``KOK_BENCH_ROUNDS`` sets the rounds per size (default 2).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
QUICK = os.environ.get("KOK_BENCH_QUICK") == "1"
SIZES = (16 * MIB, 64 * MIB) if QUICK else (256 * MIB, 1024 * MIB)
ROUNDS = int(os.environ.get("KOK_BENCH_ROUNDS", "2"))
TARGET = 0.50
PASSPHRASE = "test passphrase"
RELAY_ENV = {
    "KOK_RELAY_LIMITS_ORG_DROP_BYTES": str(64 * 2**30),
    "KOK_RELAY_LIMITS_MAX_OPEN_UPLOADS_PER_ORG": "1000",
    "KOK_RELAY_LIMITS_MIN_FREE_DISK_BYTES": "0",
    "KOK_RELAY_EXPIRY_INTERVAL": "3600",
}

BARE_SERVER = """
import asyncio, os, sys
from aiohttp import web

try:  # the same event loop as the relay uses, so the comparison is fair
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
except ImportError:
    pass

STORE = sys.argv[2]

async def put(request):
    fd = os.open(STORE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        buffered = bytearray()
        async for piece in request.content.iter_any():
            buffered += piece
            if len(buffered) >= 1 << 20:
                await asyncio.to_thread(os.write, fd, buffered)
                buffered = bytearray()
        if buffered:
            await asyncio.to_thread(os.write, fd, buffered)
        await asyncio.to_thread(os.fsync, fd)
    finally:
        os.close(fd)
    return web.Response(status=204)

async def get(request):
    return web.FileResponse(STORE)

app = web.Application()
app.router.add_put("/f", put)
app.router.add_get("/f", get)
app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def vm_hwm_mib(pid: int | str = "self") -> float:
    """Peak resident memory of a process in MiB (VmHWM from /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        left = size
        while left:
            piece = os.urandom(min(MIB, left))
            fh.write(piece)
            left -= len(piece)


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


# --- the child processes ----------------------------------------------------------------


async def _bare_client(port: int, source: Path, target: Path) -> dict[str, float]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/f"
    size = source.stat().st_size

    async def body() -> Any:
        with source.open("rb") as fh:
            while data := await asyncio.to_thread(fh.read, MIB):
                yield data

    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout, read_bufsize=MIB) as http:
        started = time.perf_counter()
        async with http.put(url, data=body(), headers={"Content-Length": str(size)}) as resp:
            assert resp.status == 204, resp.status
        uploaded = time.perf_counter()
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            async with http.get(url) as resp:
                async for data in resp.content.iter_chunked(MIB):
                    await asyncio.to_thread(os.write, fd, data)
            await asyncio.to_thread(os.fsync, fd)
        finally:
            os.close(fd)
        downloaded = time.perf_counter()
    return {"up": uploaded - started, "down": downloaded - uploaded}


async def _kok_client(home: Path, sender: str, reader: str, to: str, source: Path,
                      target: Path) -> dict[str, float]:
    from client import Client

    async with await Client.open(home, sender, PASSPHRASE) as anna, \
            await Client.open(home, reader, PASSPHRASE) as ben:
        await anna.sync_log()
        await ben.sync_log()
        started = time.perf_counter()
        message_id = await anna.send(to=[to], subject="bench", body="", ttl=3600,
                                     attachments=[source])
        uploaded = time.perf_counter()
        await ben.sync()
        synced = time.perf_counter()
        [saved] = await ben.save(message_id, target, force=True)
        downloaded = time.perf_counter()
    if saved.path.stat().st_size != source.stat().st_size:
        raise RuntimeError("the saved file has the wrong size")
    saved.path.unlink()
    return {"up": uploaded - started, "down": downloaded - synced}


async def _relay_raw_client(home: Path, sender: str, reader: str, to: str, source: Path,
                            target: Path) -> dict[str, float]:
    """The file's bytes as they are (no crypto) through the relay's drop API: its own cost."""
    import aiohttp

    from client import Client

    size = source.stat().st_size

    async def body() -> Any:
        with source.open("rb") as fh:
            while data := await asyncio.to_thread(fh.read, MIB):
                yield data

    async with await Client.open(home, sender, PASSPHRASE) as anna, \
            await Client.open(home, reader, PASSPHRASE) as ben:
        up_api, down_api = await anna.api(), await ben.api()
        await up_api.login()
        await down_api.login()
        base = anna.relay_url + "/v1/drops"
        auth_up = {"Authorization": f"Bearer {up_api.token}"}
        timeout = aiohttp.ClientTimeout(total=None)
        async with aiohttp.ClientSession(timeout=timeout, read_bufsize=MIB) as http:
            started = time.perf_counter()
            async with http.post(base, json={"size": size, "to": [to], "ttl": 3600},
                                 headers=auth_up) as resp:
                created = await resp.json()
            token = {**auth_up, "Kok-Upload-Token": created["upload_token"]}
            async with http.patch(f"{base}/{created['id']}", data=body(), headers={
                    **token, "Upload-Offset": "0", "Content-Length": str(size),
                    "Content-Type": "application/offset+octet-stream"}) as resp:
                assert resp.status == 204, resp.status
            async with http.post(f"{base}/{created['id']}/complete", headers=token) as resp:
                assert resp.status == 200, resp.status
            uploaded = time.perf_counter()
            out = target / "relay-raw.bin"
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                async with http.get(f"{base}/{created['id']}", headers={
                        "Authorization": f"Bearer {down_api.token}"}) as resp:
                    async for data in resp.content.iter_chunked(MIB):
                        await asyncio.to_thread(os.write, fd, data)
                await asyncio.to_thread(os.fsync, fd)
            finally:
                os.close(fd)
            downloaded = time.perf_counter()
    out.unlink()
    return {"up": uploaded - started, "down": downloaded - uploaded}


def child(argv: list[str]) -> int:
    """Entry point of the client child processes: print timings and own VmHWM as JSON."""
    kind, *args = argv
    if kind == "bare":
        result = asyncio.run(_bare_client(int(args[0]), Path(args[1]), Path(args[2])))
    elif kind == "relay-raw":
        result = asyncio.run(_relay_raw_client(Path(args[0]), args[1], args[2], args[3],
                                               Path(args[4]), Path(args[5])))
    else:
        result = asyncio.run(_kok_client(Path(args[0]), args[1], args[2], args[3],
                                         Path(args[4]), Path(args[5])))
    result["hwm"] = vm_hwm_mib()
    print(json.dumps(result))
    return 0


def _run_child(*args: str) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_files", "--child",
                           *args], capture_output=True, text=True, env=env, check=False,
                          timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the parts ------------------------------------------------------------------------


def raw_secretstream(size: int) -> float:
    """MB/s of encrypt + decrypt (with both hashes) of ``size`` bytes in memory."""
    from protocol.stream import FileDecryptor, FileEncryptor

    pieces = [os.urandom(MIB) for _ in range(4)]
    key, header = secrets.token_bytes(32), secrets.token_bytes(24)
    enc = FileEncryptor(key, header, size)
    dec = FileDecryptor(key, expected_size=size)
    started = time.perf_counter()
    left = size
    i = 0
    while left:
        piece = pieces[i % 4][:min(MIB, left)]
        dec.update(enc.update(piece))
        left -= len(piece)
        i += 1
    dec.update(enc.finalize())
    dec.finalize()
    return mbps(size, time.perf_counter() - started)


def start_bare(port: int, store: Path) -> subprocess.Popen[bytes]:
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(port), str(store)])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the bare aiohttp server did not start")


async def build_world(relay: Any, home: Path) -> tuple[str, str, str]:
    """Two orgs; returns (sender profile, reader profile, recipient org id)."""
    from tests.integration.people import close_all, new_org, new_staff, open_office

    office = await open_office(relay)
    nord = await new_org(relay, home, office, "bench-nord")
    sued = await new_org(relay, home, office, "bench-sued")
    anna = await new_staff(relay, home, nord, "anna")
    ben = await new_staff(relay, home, sued, "ben")
    await close_all(office, nord, sued, anna, ben)
    return "bench-nord.anna", "bench-sued.ben", "bench-sued"


def main() -> int:
    """Run every figure; print them; non-zero exit only if the run itself failed."""
    from tests.support.relayproc import RelayProcess, free_port

    os.environ.setdefault("KOK_ARGON2_MEMORY_KIB", "1024")
    os.environ.setdefault("KOK_ARGON2_TIME", "1")
    os.environ.setdefault("KOK_TEST_WEAK_KDF", "1")
    with tempfile.TemporaryDirectory(prefix="kok-bench-files-", dir=os.environ.get("TMPDIR")
                                     ) as tmp_name:
        tmp = Path(tmp_name)
        relay = RelayProcess.start(tmp / "relay", env=RELAY_ENV, network_profile=True)
        bare_port = free_port()
        bare = start_bare(bare_port, tmp / "bare.store")
        try:
            home = tmp / "home"
            sender, reader, to = asyncio.run(build_world(relay, home))
            out = tmp / "out"
            out.mkdir()
            rows = []
            for size in SIZES:
                source = tmp / f"file-{size // MIB}MiB.bin"
                write_random(source, size)
                kok_runs, bare_runs, raw_runs = [], [], []
                for _ in range(ROUNDS):  # interleaved, so all see the same machine load
                    bare_runs.append(_run_child("bare", str(bare_port), str(source),
                                                str(out / "bare.bin")))
                    (out / "bare.bin").unlink()
                    kok_runs.append(_run_child("kok", str(home), sender, reader, to,
                                               str(source), str(out)))
                    raw_runs.append(_run_child("relay-raw", str(home), sender, reader, to,
                                               str(source), str(out)))
                raw = raw_secretstream(size)
                source.unlink()
                kok = statistics.median(mbps(size, r["up"] + r["down"]) for r in kok_runs)
                bare_rate = statistics.median(mbps(size, r["up"] + r["down"]) for r in bare_runs)
                row = {
                    "size_mib": size // MIB,
                    "kok_mbps": kok,
                    "kok_up_mbps": statistics.median(mbps(size, r["up"]) for r in kok_runs),
                    "kok_down_mbps": statistics.median(mbps(size, r["down"]) for r in kok_runs),
                    "bare_mbps": bare_rate,
                    "bare_up_mbps": statistics.median(mbps(size, r["up"]) for r in bare_runs),
                    "bare_down_mbps": statistics.median(mbps(size, r["down"])
                                                        for r in bare_runs),
                    "raw_secretstream_mbps": raw,
                    "relay_no_crypto_mbps": statistics.median(
                        mbps(size, r["up"] + r["down"]) for r in raw_runs),
                    "ratio": kok / bare_rate,
                    "relay_hwm_mib": vm_hwm_mib(relay.pid),
                    "kok_client_hwm_mib": max(r["hwm"] for r in kok_runs),
                    "bare_client_hwm_mib": max(r["hwm"] for r in bare_runs),
                }
                rows.append(row)
                print(f"{row['size_mib']:>5} MiB: kok {kok:6.0f} MB/s (up {row['kok_up_mbps']:.0f}"
                      f", down {row['kok_down_mbps']:.0f}); bare aiohttp {bare_rate:6.0f} MB/s "
                      f"(up {row['bare_up_mbps']:.0f}, down {row['bare_down_mbps']:.0f}); ratio "
                      f"{row['ratio']:6.1%} (target {TARGET:.0%}); raw secretstream enc+dec "
                      f"{raw:6.0f} MB/s; the relay without crypto "
                      f"{row['relay_no_crypto_mbps']:.0f} MB/s; peak RSS relay "
                      f"{row['relay_hwm_mib']:.0f} MiB, kok "
                      f"client {row['kok_client_hwm_mib']:.0f} MiB, bare client "
                      f"{row['bare_client_hwm_mib']:.0f} MiB", flush=True)
            big = rows[-1]
            verdict = "meets" if big["ratio"] >= TARGET else "MISSES"
            print(f"kok end to end at {big['size_mib']} MiB is {big['ratio']:.1%} of the bare "
                  f"aiohttp round trip: {verdict} the {TARGET:.0%} target; relay peak RSS "
                  f"{rows[0]['relay_hwm_mib']:.0f} MiB after {rows[0]['size_mib']} MiB, "
                  f"{big['relay_hwm_mib']:.0f} MiB after {big['size_mib']} MiB", flush=True)
            print("json " + json.dumps(rows), flush=True)
        finally:
            bare.kill()
            bare.wait()
            relay.stop(check_log=False)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sys.exit(child(sys.argv[2:]))
    sys.exit(main())
