"""Graceful shutdown: SIGTERM closes event streams with 1001, answers no 5xx, exits at once,
and an upload cut off by it keeps what was written and resumes after the restart.

A real relay serves a WebSocket reader, a sender that keeps sending and an upload whose
client has sent part of the body and is still holding the request open. Then SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from protocol import b64encode
from tests.ops.opsworld import CT_UPLOAD, make_pair
from tests.support.actors import Api, envelope
from tests.support.relayproc import RelayProcess

MIB = 1024 * 1024
EXIT_WITHIN = 3.0  # the requirement; the relay's own grace is 1 s


async def test_sigterm_closes_streams_with_1001_answers_no_5xx_and_uploads_resume(
        tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "base")
    data = os.urandom(4 * MIB)
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            pair = await make_pair(api, relay.network_key)
            alice, bob = await api.login(pair.alice), await api.login(pair.bob)
            ws = await http.ws_connect(relay.url.replace("http", "ws", 1) + "/v1/events",
                                       headers={"Authorization": f"Bearer {bob}"})

            created = await api.ok("POST", "/v1/drops", {"size": len(data),
                                                         "to": [pair.b.org_id], "ttl": 3600},
                                   token=alice, expect=201)
            upload = {"Authorization": f"Bearer {alice}", "Content-Type": CT_UPLOAD,
                      "Kok-Upload-Token": created["upload_token"]}
            url = f"{relay.url}/v1/drops/{created['id']}"
            first_part_sent = asyncio.Event()
            never = asyncio.Event()

            async def body() -> AsyncIterator[bytes]:
                for offset in range(0, 3 * MIB // 2, 256 * 1024):
                    yield data[offset:offset + 256 * 1024]
                first_part_sent.set()
                await never.wait()  # the client stalls: the request stays in flight
                yield data[3 * MIB // 2:]

            async def uploading() -> int | str:
                try:
                    async with http.patch(url, data=body(),
                                          headers={**upload, "Upload-Offset": "0"}) as resp:
                        return resp.status
                except aiohttp.ClientError as exc:
                    return type(exc).__name__

            statuses: list[int | str] = []
            stop_sending = asyncio.Event()

            async def sending() -> None:
                while not stop_sending.is_set():
                    try:
                        status, _ = await api.call("POST", "/v1/messages", {
                            "idempotency_key": b64encode(os.urandom(16)), "ttl": 60,
                            "envelopes": [envelope(pair.alice, pair.b)]}, token=alice)
                        statuses.append(status)
                    except aiohttp.ClientError as exc:
                        statuses.append(type(exc).__name__)
                        await asyncio.sleep(0.01)

            upload_task = asyncio.create_task(uploading())
            send_task = asyncio.create_task(sending())
            await asyncio.wait_for(first_part_sent.wait(), 10)
            await asyncio.sleep(0.5)  # the relay has the first part

            assert relay.proc is not None
            signalled = time.monotonic()
            os.kill(relay.pid, signal.SIGTERM)
            closing = await ws.receive(timeout=EXIT_WITHIN)
            while closing.type == aiohttp.WSMsgType.TEXT:  # envelopes pushed before the end
                closing = await ws.receive(timeout=EXIT_WITHIN)
            exit_code = await asyncio.to_thread(relay.proc.wait, 10)
            exited = time.monotonic() - signalled
            stop_sending.set()
            never.set()
            await send_task
            upload_result = await upload_task
            relay.proc = None
            print(f"shutdown: exited {exited:.2f} s after SIGTERM")

            assert closing.type == aiohttp.WSMsgType.CLOSE, closing
            assert closing.data == 1001, closing
            assert exit_code == 0, relay.log_text()[-2000:]
            assert exited < EXIT_WITHIN, f"took {exited:.2f} s to exit"
            assert 201 in statuses, statuses  # sends were stored up to the signal
            assert not [s for s in statuses if isinstance(s, int) and s >= 500], statuses
            assert upload_result != 204 and not (
                isinstance(upload_result, int) and upload_result >= 500), upload_result

        relay._spawn()
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            pair.api = api
            alice, bob = await api.login(pair.alice), await api.login(pair.bob)
            upload["Authorization"] = f"Bearer {alice}"
            async with http.head(url, headers=upload) as resp:
                assert resp.status == 200
                kept = int(resp.headers["Upload-Offset"])
            assert 0 < kept <= 3 * MIB // 2, kept  # what arrived before SIGTERM was kept
            async with http.patch(url, data=data[kept:],
                                  headers={**upload, "Upload-Offset": str(kept)}) as resp:
                assert resp.status == 204, await resp.text()
            async with http.post(url + "/complete", headers=upload) as resp:
                assert resp.status == 200, await resp.text()
            status, got = await pair.download(bob, created["id"])
            assert status == 200 and got == data
    finally:
        relay.stop()
