"""The Prometheus endpoint: off by default, loopback only, aggregate only, and truthful.

A real relay with ``[metrics] port`` set serves traffic (orgs, sends, an event stream, a
file drop, a refusal burst); the test scrapes ``/metrics`` on the separate listener and
checks each family against what it did, and that no organisation, staff or message
identifier (nor any token) appears anywhere in the scrape.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from protocol import b64encode
from tests.ops.opsworld import make_pair
from tests.support.actors import Api
from tests.support.relayproc import REPO, RelayProcess, _test_env, free_port


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(http: aiohttp.ClientSession, port: int) -> tuple[str, dict]:  # type: ignore[type-arg]
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return text, parse(text)


async def test_metrics_count_what_happened_and_name_nobody(tmp_path: Path) -> None:
    port = free_port()
    relay = RelayProcess.start(tmp_path / "base", env={
        "KOK_RELAY_METRICS_PORT": str(port),
        "KOK_RELAY_LIMITS_PUBLIC_REQUESTS_PER_MINUTE": "300"})
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            pair = await make_pair(api, relay.network_key)
            alice, bob = await api.login(pair.alice), await api.login(pair.bob)
            streaming = asyncio.create_task(pair.receive_ws(bob, 3))
            await asyncio.sleep(0.3)
            _, during = await scrape(http, port)
            assert value(during, "kok_relay_open_event_streams") == 1
            sent = [await pair.send(alice, f"m{i}") for i in range(3)]
            await asyncio.wait_for(streaming, 10)
            drop = os.urandom(300_000)
            drop_id = await pair.drop(alice, drop)
            assert (await api.call("GET", "/v1/messages/AAAAAAAAAAAAAAAAAAAAAA",
                                   token=bob))[0] == 404
            refused = 0
            for _ in range(400):  # the public budget (300 a minute) runs out
                status, _ = await api.call("POST", "/v1/status",
                                           {"token": b64encode(os.urandom(32))})
                if status == 429:
                    refused += 1
                    if refused == 3:
                        break
            assert refused == 3
            await asyncio.sleep(1.1)  # stored totals are re-read at most once a second
            text, samples = await scrape(http, port)
            # the main listener has no /metrics
            assert (await api.call("GET", "/metrics"))[0] == 404

        assert value(samples, "kok_relay_requests_total", route="/v1/messages", method="POST",
                     status_class="2xx") == 3
        assert value(samples, "kok_relay_requests_total", route="/v1/messages/{id}",
                     method="GET", status_class="4xx") == 1
        assert value(samples, "kok_relay_refusals_total", code="rate_limited") == 3
        assert value(samples, "kok_relay_request_duration_seconds_count",
                     route="/v1/messages") == 3
        assert value(samples, "kok_relay_open_event_streams") == 0
        assert value(samples, "kok_relay_requests_total", route="/v1/events", method="GET",
                     status_class="1xx") == 1  # 101 Switching Protocols
        assert value(samples, "kok_relay_stored_envelopes") == 3
        assert value(samples, "kok_relay_stored_envelope_bytes") >= 3 * 100
        assert value(samples, "kok_relay_stored_drops") == 1
        assert value(samples, "kok_relay_stored_drop_bytes") == len(drop)
        assert value(samples, "kok_relay_disk_free_bytes") > 0
        assert value(samples, "kok_relay_purge_runs_total") >= 1
        jobs = value(samples, "kok_relay_commit_batch_jobs_sum")
        commits = value(samples, "kok_relay_commit_batch_jobs_count")
        assert commits >= 1 and jobs >= commits
        assert value(samples, "kok_relay_commit_duration_seconds_count") == commits

        # aggregate only: no identifier of an org, a person, a message or a drop
        secrets_ = [pair.a.org_id, pair.b.org_id, "alice", "bob", drop_id, alice, bob,
                    *(m["id"] for m in sent), *(m["status_token"] for m in sent)]
        for needle in secrets_:
            assert needle not in text, needle
        labels = {k for (_, ls) in samples for k, _ in ls}
        assert labels <= {"route", "method", "status_class", "code", "le"}, labels
    finally:
        relay.stop()


def test_metrics_are_off_by_default_and_refuse_a_non_loopback_host(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "base")
    try:
        assert "metrics_listening" not in relay.log_text()
    finally:
        relay.stop()
    result = subprocess.run(
        [sys.executable, "-m", "relay", "serve", "--dir", str(relay.dir)],
        capture_output=True, text=True, cwd=REPO, timeout=30,
        env=_test_env({"KOK_RELAY_METRICS_PORT": "9999", "KOK_RELAY_METRICS_HOST": "192.0.2.1"}))
    assert result.returncode == 1
    assert "[metrics] host must be a loopback address" in result.stderr
