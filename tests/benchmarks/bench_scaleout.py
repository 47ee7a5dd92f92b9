"""Scaling out: the PostgreSQL store and several relay processes, beside bare aiohttp.

Three figures, each measured in this run (machine-dependent; ratios are what compare):

* **Ingest at N = 64** concurrent senders (1 KiB envelopes, closed loop, every 201
  durable) for SQLite / 1 process, PostgreSQL / 1 process and PostgreSQL / 2 processes
  (``serve --workers 2``), each as a ratio of a bare aiohttp handler's rate, rounds
  interleaved so all see the same machine load. The PostgreSQL server is a throw-away
  cluster on this machine (fsync on, synchronous_commit on), competing for the same cores.
  Beside them, the same relay whose send store keeps nothing (``storeless_relay``, a
  measuring device): the ceiling that HTTP, sessions, parsing and the service set before
  any storage.
* **Send-to-push across processes**: two relay processes on one database; 16 senders at
  50/s send through one, a staff member listens on the other; p50/p99 from writing a send
  to the push arriving (LISTEN/NOTIFY in between).
* **2,000 WebSocket listeners on one relay** (SQLite, one process): the relay's RSS
  growth per open stream, and p99 latency from a send to its push reaching each of the
  2,000 listeners (target < 100 ms).

Needs PostgreSQL (tests/support/pgcluster.py finds it); without it only the SQLite and
listener figures are printed. ``KOK_BENCH_QUICK=1`` shortens everything (smoke run).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import secrets
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from protocol import b64decode

from .bench_relay import (
    INGEST_TARGET,
    LATENCY_RATE,
    LATENCY_SECONDS,
    LATENCY_SENDERS,
    QUICK,
    RELAY_ENV,
    ROUNDS,
    SECONDS,
    Connection,
    World,
    build_world,
    closed_loop,
    cpu_seconds,
    percentile,
    request_head,
    run_loop,
    send_body,
    start_bare,
)

N = 64
CEILING = "sends not stored (ceiling)"
"""The relay with a send store that keeps nothing (``storeless_relay``): what everything
but storage allows, measured beside the real relay."""
LISTENERS = 200 if QUICK else 2000
PUSHES = 5 if QUICK else 20
LISTENER_TARGET_MS = 100.0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def across(world: World, send_port: int, listen_port: int) -> list[float]:
    """Milliseconds from writing a send (to one process) to its push (from the other)."""
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"http://127.0.0.1:{listen_port}/v1/events", params={"after": "0"},
            headers={"Authorization": f"Bearer {world.reader_token}"}) as ws:

        async def listen() -> None:
            async for msg in ws:
                arrived = time.perf_counter()
                event = json.loads(msg.data)
                counter = int.from_bytes(b64decode(event["message"]["sealed"][:12])[:8], "big")
                if counter in sent_at:
                    latencies.append((arrived - sent_at.pop(counter)) * 1000)

        async def sender(index: int) -> None:
            conn = await Connection.open(send_port)
            head = request_head(send_port, world.tokens[index])
            interval = 1.0 / LATENCY_RATE
            start = time.perf_counter() + index * interval / LATENCY_SENDERS
            n = 0
            while start + n * interval <= start + LATENCY_SECONDS:
                await asyncio.sleep(max(0.0, start + n * interval - time.perf_counter()))
                counter = index * 10_000_000 + n
                body = send_body(world.live_org, world.live_epoch, counter)
                sent_at[counter] = time.perf_counter()
                status, _ = await conn.post(head, body)
                if status != 201:
                    raise RuntimeError(f"send answered {status}")
                n += 1
            conn.close()

        listener = asyncio.get_running_loop().create_task(listen())
        await asyncio.sleep(0.3)
        await asyncio.gather(*(sender(i) for i in range(LATENCY_SENDERS)))
        await asyncio.sleep(0.5)
        listener.cancel()
    return latencies


class _Listener(asyncio.Protocol):
    """The receiving end of one ``/v1/events`` WebSocket, as cheap as it can be.

    2,000 aiohttp client WebSockets in this one process would spend longer parsing each
    push than the relay takes to send it, and that time would be counted as the relay's:
    so this notes the time each text frame's last byte arrives and keeps the frame for
    later, answering only pings (the relay closes a stream that does not answer them).
    """

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.frames: list[tuple[float, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(self.head)

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        self.buffer += data
        if not self.upgraded.done():
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.upgraded.set_exception(RuntimeError(head.split(b"\r\n")[0].decode()))
                return
            self.upgraded.set_result(None)
            self.buffer = rest
        while len(self.buffer) >= 2:
            opcode, length, start = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + length:
                return
            payload = self.buffer[start:start + length]
            self.buffer = self.buffer[start + length:]
            if opcode == 0x1:
                self.frames.append((arrived, payload))
            elif opcode == 0x9 and self.transport is not None:  # ping: pong, masked by zeros
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + bytes(4) + payload)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open_listener(port: int, token: str) -> _Listener:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    head = (f"GET /v1/events?after=0 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    _, listener = await asyncio.get_running_loop().create_connection(
        lambda: _Listener(head), "127.0.0.1", port)
    await asyncio.wait_for(listener.upgraded, 30)
    return listener


async def many_listeners(world: World, pid: int
                         ) -> tuple[float, list[float], float, float]:
    """(RSS KiB per open stream, push latencies in ms to every listener, relay CPU ms per
    push to all of them, this process's CPU ms per push: the readers and the one sender).

    The readers share this process and the machine's cores with the relay, so their CPU
    is printed beside the relay's: a figure of the benchmark rather than of the relay
    would show there. Moving the 2,000 readers into one or two processes of their own
    made no consistent difference to p99 or to the relay's CPU per push in same-run
    comparisons on the 2-core machine (the readers need about 60 % of what the relay
    spends per push; p99 followed the machine's load), so they stay here.
    """
    latencies: list[float] = []
    sent_at: dict[int, float] = {}
    await asyncio.sleep(0.5)
    before = _rss_kib(pid)
    listeners: list[_Listener] = []
    for start in range(0, LISTENERS, 100):
        listeners += await asyncio.gather(*(
            _open_listener(world.port, world.reader_token)
            for _ in range(start, min(LISTENERS, start + 100))))
    await asyncio.sleep(1.0)
    per_stream = (_rss_kib(pid) - before) / LISTENERS
    conn = await Connection.open(world.port)
    head = request_head(world.port, world.tokens[0])
    cpu_before, ours_before = cpu_seconds(pid), time.process_time()
    for n in range(PUSHES):
        body = send_body(world.live_org, world.live_epoch, n)
        sent_at[n] = time.perf_counter()
        status, _ = await conn.post(head, body)
        if status != 201:
            raise RuntimeError(f"send answered {status}")
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)
    cpu_per_push = (cpu_seconds(pid) - cpu_before) * 1000 / PUSHES
    ours_per_push = (time.process_time() - ours_before) * 1000 / PUSHES
    conn.close()
    for listener in listeners:
        listener.close()
    for listener in listeners:
        for arrived, data in listener.frames:
            event = json.loads(data)
            counter = int.from_bytes(b64decode(event["message"]["sealed"][:12])[:8], "big")
            if counter in sent_at:
                latencies.append((arrived - sent_at[counter]) * 1000)
    return per_stream, latencies, cpu_per_push, ours_per_push


@contextlib.contextmanager
def _no_collector_pauses() -> Iterator[None]:
    """No garbage collection in this process while pushes are timed.

    The readers stamp each frame's arrival here, so a pause of this process's own
    collector would delay the stamps of every frame that arrived meanwhile and count
    against the relay (a full collection took 43 ms at that point after the ingest
    rounds). Everything allocated until then is frozen out of later collections.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _commit_totals(port: int) -> tuple[float, float, float]:
    """Group commits so far, the writes in them and their seconds, from a relay's metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        samples = {sample.name: sample.value for family in text_string_to_metric_families(
            answer.read().decode()) for sample in family.samples}
    return (samples["kok_relay_commit_batch_jobs_count"],
            samples["kok_relay_commit_batch_jobs_sum"],
            samples["kok_relay_commit_duration_seconds_sum"])


def main() -> int:
    from tests.support.pgcluster import PgCluster, find_bin_dir
    from tests.support.relayproc import RelayProcess, free_port

    os.environ.setdefault("KOK_ARGON2_MEMORY_KIB", "1024")
    os.environ.setdefault("KOK_ARGON2_TIME", "1")
    os.environ.setdefault("KOK_TEST_WEAK_KDF", "1")
    env = {**RELAY_ENV, "KOK_RELAY_LIMITS_MAX_EVENT_STREAMS_PER_STAFF": str(LISTENERS * 2)}
    bin_dir = find_bin_dir()
    cluster = PgCluster.start(bin_dir) if bin_dir is not None else None
    relays: dict[str, RelayProcess] = {}
    with tempfile.TemporaryDirectory(prefix="kok-bench-") as tmp:
        bare_port = free_port()
        bare = start_bare(bare_port)
        try:
            metrics_port = free_port()  # the SQLite writer's group commits, seen from outside
            relays["SQLite / 1 process"] = RelayProcess.start(
                Path(tmp) / "sqlite", env={**env, "KOK_RELAY_METRICS_PORT": str(metrics_port)})
            relays[CEILING] = RelayProcess.start(Path(tmp) / "storeless", env=env,
                                                 module="tests.benchmarks.storeless_relay")
            if cluster is not None:
                relays["PostgreSQL / 1 process"] = RelayProcess.start(
                    Path(tmp) / "pg1", env=env, store_url=cluster.new_database())
                relays["PostgreSQL / 2 processes"] = RelayProcess.start(
                    Path(tmp) / "pg2", env=env, store_url=cluster.new_database(), workers=2)
            worlds = {name: run_loop(build_world(relay, N)) for name, relay in relays.items()}
            rates: dict[str, list[float]] = {name: [] for name in ["bare", *relays]}
            cpu: dict[str, list[float]] = {name: [] for name in ["bare", *relays]}
            pids = {"bare": bare.pid, **{name: relay.pid for name, relay in relays.items()}}
            print(f"load average before: {_load()}", flush=True)
            commits_before = _commit_totals(metrics_port)  # only its rounds write from here
            for _ in range(ROUNDS):
                any_world = next(iter(worlds.values()))
                rates["bare"].append(run_loop(closed_loop(
                    bare_port, any_world.tokens, any_world.to_org, any_world.epoch, SECONDS, 200,
                    pids["bare"], cpu["bare"])))
                for name, world in worlds.items():
                    rates[name].append(run_loop(closed_loop(
                        world.port, world.tokens, world.to_org, world.epoch, SECONDS, 201,
                        pids[name], cpu[name])))
            bare_rate = statistics.median(rates["bare"])
            bare_cpu = statistics.median(cpu["bare"])
            print(f"ingest N={N}: bare aiohttp {bare_rate:8.0f} req/s "
                  f"({', '.join(f'{r:.0f}' for r in rates['bare'])}); "
                  f"{bare_cpu:.0f} us CPU per request", flush=True)
            ratios = {}
            for name in relays:
                ratio = statistics.median(r / b for r, b in zip(rates[name], rates["bare"],
                                                                 strict=True))
                ratios[name] = ratio
                relay_cpu = statistics.median(cpu[name])
                kept = "not kept" if name == CEILING else "durable"
                print(f"ingest N={N}: {name:<25} {statistics.median(rates[name]):8.0f} msg/s "
                      f"{kept}, {ratio:6.1%} of bare "
                      f"({', '.join(f'{r:.0f}' for r in rates[name])}); {relay_cpu:.0f} us "
                      f"CPU per send, bare/relay CPU {bare_cpu / relay_cpu:6.1%}", flush=True)
            count, sends, seconds = (after - before for after, before in zip(
                _commit_totals(metrics_port), commits_before, strict=True))
            if count:
                print(f"SQLite / 1 process: {count:.0f} group commits in its rounds, "
                      f"{sends / count:.1f} sends and {seconds / count * 1e3:.2f} ms each "
                      "(from handing a batch to the writer thread to its answers)", flush=True)
            sqlite_ratio = ratios["SQLite / 1 process"]
            print(f"target SQLite / 1 process >= {INGEST_TARGET:.0%} of bare: "
                  f"{sqlite_ratio:.1%} {'MET' if sqlite_ratio >= INGEST_TARGET else 'NOT MET'}; "
                  f"the same relay storing nothing reaches {ratios[CEILING]:.1%} "
                  f"(load average after: {_load()})", flush=True)
            if cluster is not None:
                pg = relays["PostgreSQL / 1 process"]
                other = pg.sibling()
                try:
                    world = worlds["PostgreSQL / 1 process"]
                    with _no_collector_pauses():
                        samples = run_loop(across(world, pg.port, other.port))
                finally:
                    other.stop()
                print(f"send-to-push across processes, {LATENCY_SENDERS} senders x "
                      f"{LATENCY_RATE:.0f}/s: {len(samples)} pushes timed; p50 "
                      f"{percentile(samples, 0.5):.1f} ms, p99 {percentile(samples, 0.99):.1f} "
                      f"ms, max {max(samples):.1f} ms", flush=True)
            sqlite = relays["SQLite / 1 process"]
            with _no_collector_pauses():
                per_stream, pushes, cpu_ms, reader_ms = run_loop(
                    many_listeners(worlds["SQLite / 1 process"], sqlite.pid))
            p99 = percentile(pushes, 0.99)
            print(f"{LISTENERS} WebSocket listeners on one relay: RSS +{per_stream:.1f} KiB per "
                  f"stream; {len(pushes)} of {LISTENERS * PUSHES} pushes timed; p50 "
                  f"{percentile(pushes, 0.5):.1f} ms, p99 {p99:.1f} ms; relay CPU "
                  f"{cpu_ms:.0f} ms per push to all (readers {reader_ms:.0f} ms) "
                  f"(target < {LISTENER_TARGET_MS:.0f} ms: "
                  f"{'MET' if p99 < LISTENER_TARGET_MS else 'NOT MET'}; load average "
                  f"{_load()})", flush=True)
        finally:
            bare.terminate()
            bare.wait(10)
            for relay in relays.values():
                relay.stop(check_log=False)
            if cluster is not None:
                cluster.stop()
    return 0
