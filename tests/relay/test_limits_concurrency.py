"""Per-organisation and per-person limits hold exactly under many parallel requests.

Attack: a client that fires many requests at once must not get past a limit because each
request was checked before the others had taken their place (check, await, act). Each
test runs against a real relay and counts what was accepted and what the relay holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support.actors import Api
from tests.support.relayproc import RelayProcess

OPEN_UPLOADS = 3
STREAMS = 2
PARALLEL = 30


@pytest.fixture(scope="module")
def limited_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    relay = RelayProcess.start(tmp_path_factory.mktemp("limits"), env={
        "KOK_RELAY_LIMITS_MAX_OPEN_UPLOADS_PER_ORG": str(OPEN_UPLOADS),
        "KOK_RELAY_LIMITS_MAX_EVENT_STREAMS_PER_STAFF": str(STREAMS),
    })
    yield relay
    relay.stop()


async def test_open_uploads_per_org_hold_under_parallel_creates(
        limited_relay: RelayProcess) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(limited_relay.url, http)
        a = await api.setup_org(limited_relay.network_key, "up-a", ("admin", "alice"))
        b = await api.setup_org(limited_relay.network_key, "up-b", ("admin",))
        tokens = [await api.login(s) for s in a.staff.values()]
        answers = await asyncio.gather(*(
            api.call("POST", "/v1/drops", {"size": 3000, "to": [b.org_id]},
                     token=tokens[i % len(tokens)]) for i in range(PARALLEL)))
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(201) == OPEN_UPLOADS, statuses
    assert {body["code"] for status, body in answers if status != 201} == {"too_many_uploads"}
    stored = list((limited_relay.dir / "blobs").glob("*.part"))
    assert len(stored) == OPEN_UPLOADS


async def test_event_streams_per_person_hold_under_parallel_opens(
        limited_relay: RelayProcess) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(limited_relay.url, http)
        org = await api.setup_org(limited_relay.network_key, "ev-a", ("admin", "alice"))
        alice = org.staff["ev-a/alice"]
        tokens = [await api.login(alice) for _ in range(3)]  # several sessions, one person

        async def open_stream(i: int) -> aiohttp.ClientWebSocketResponse | int:
            try:
                return await http.ws_connect(
                    f"{api.url}/v1/events",
                    headers={"Authorization": f"Bearer {tokens[i % len(tokens)]}"})
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

        opened = await asyncio.gather(*(open_stream(i) for i in range(PARALLEL)))
        sockets = [o for o in opened if not isinstance(o, int)]
        try:
            assert len(sockets) == STREAMS
            assert sorted(set(o for o in opened if isinstance(o, int))) == [429]
        finally:
            for ws in sockets:
                await ws.close()
        # closed streams give their places back
        again = await open_stream(0)
        assert not isinstance(again, int)
        await again.close()
