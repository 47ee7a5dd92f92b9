"""A logged-in member floods the relay with large valid bodies: what do others notice?

Attack: ``ATTACKERS`` concurrent connections of one staff member each post, again and
again, a send of the largest size the relay accepts (8 envelopes of 1 MiB: about 11 MB of
JSON), addressed to an organisation that does not exist, so the relay reads and parses the
whole body before it refuses. Meanwhile a colleague's client asks ``GET /v1/grants`` (a
small authenticated request) in a closed loop and records each latency.

Reported: the colleague's p50/p99/max latency without the attack and during it, the ratio
of the two p99s, the attack's answered requests, and the relay's peak resident memory.
Target: p99 during the attack < 100 ms. Rate limits are lifted so the attack is not cut
short by them (the worst case: a member whose allowance is large).

``KOK_BENCH_QUICK=1`` shortens the phases (a smoke run: figures meaningless).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from protocol import b64encode
from tests.support.actors import Api, rand
from tests.support.relayproc import RelayProcess

QUICK = os.environ.get("KOK_BENCH_QUICK") == "1"
BASELINE_SECONDS = 1.0 if QUICK else 3.0
ATTACK_SECONDS = 2.0 if QUICK else 10.0
ATTACKERS = 40
P99_TARGET_MS = 100.0
UNLIMITED = str(10**9)
RELAY_ENV = {
    "KOK_RELAY_LIMITS_STAFF_REQUESTS_PER_MINUTE": UNLIMITED,
    "KOK_RELAY_LIMITS_ORG_REQUESTS_PER_MINUTE": UNLIMITED,
    "KOK_RELAY_LIMITS_PUBLIC_REQUESTS_PER_MINUTE": UNLIMITED,
}


def flood_body() -> bytes:
    sealed = b64encode(os.urandom(1024 * 1024))
    return json.dumps({"idempotency_key": b64encode(rand(16)), "envelopes": [
        {"to_org": f"nobody-{i}", "epoch": 1, "sealed": sealed} for i in range(8)]}).encode()


async def attacker(http: aiohttp.ClientSession, url: str, token: str, body: bytes,
                   end: float, answered: list[int]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    while time.monotonic() < end:
        try:
            async with http.post(url + "/v1/messages", data=body, headers=headers) as answer:
                await answer.read()
                answered.append(answer.status)
        except aiohttp.ClientError:
            answered.append(0)


async def flood(url: str, token: str, seconds: float) -> list[int]:
    body = flood_body()
    answered: list[int] = []
    end = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=ATTACKERS + 5)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(attacker(http, url, token, body, end, answered)
                               for _ in range(ATTACKERS)))
    return answered


def flood_process(url: str, token: str, seconds: float, out: multiprocessing.Queue) -> None:
    """The attacker in a process of its own, so its sending does not slow the measuring."""
    out.put(asyncio.run(flood(url, token, seconds)))


async def colleague(http: aiohttp.ClientSession, url: str, token: str,
                    seconds: float) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        async with http.get(url + "/v1/grants", headers=headers) as answer:
            await answer.read()
            assert answer.status == 200, answer.status
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.005)
    return latencies


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"n={len(ordered)} p50={statistics.median(ordered):.1f} ms "
            f"p99={p99:.1f} ms max={ordered[-1]:.1f} ms")


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def run(relay: RelayProcess) -> bool:
    async with aiohttp.ClientSession() as setup_http:
        api = Api(relay.url, setup_http)
        org = await api.setup_org(relay.network_key, "flood", ("admin", "mallory", "carol"))
        mallory = await api.login(org.staff["flood/mallory"])
        carol = await api.login(org.staff["flood/carol"])
    async with aiohttp.ClientSession() as quiet:
        baseline = await colleague(quiet, relay.url, carol, BASELINE_SECONDS)
        results: multiprocessing.Queue = multiprocessing.Queue()
        attack = multiprocessing.Process(target=flood_process, args=(
            relay.url, mallory, ATTACK_SECONDS + 1.5, results))
        attack.start()
        await asyncio.sleep(1.0)  # the flood is under way
        during = await colleague(quiet, relay.url, carol, ATTACK_SECONDS)
        answered = await asyncio.to_thread(results.get)
        attack.join()
    print(f"body {len(flood_body()) / 1e6:.1f} MB x {ATTACKERS} connections (another process)")
    print(f"colleague without attack: {summary(baseline)}")
    print(f"colleague during attack:  {summary(during)}")
    print(f"p99 ratio (attack / quiet): {p99(during) / max(p99(baseline), 0.001):.1f}")
    statuses = {s: answered.count(s) for s in sorted(set(answered))}
    print(f"attack answers: {statuses}")
    print(f"relay peak RSS: {peak_rss_mib(relay.pid):.0f} MiB")
    ok = p99(during) < P99_TARGET_MS
    print(f"target p99 < {P99_TARGET_MS:.0f} ms during the attack: {'met' if ok else 'NOT met'}")
    return ok


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        relay = RelayProcess.start(Path(tmp), env=RELAY_ENV)
        try:
            met = asyncio.run(run(relay))
        finally:
            relay.stop()
    return 0 if met or QUICK else 1


if __name__ == "__main__":
    raise SystemExit(main())
