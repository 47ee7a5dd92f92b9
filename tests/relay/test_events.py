"""The event stream: backlog by cursor, live push, and sessions that end at once."""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import pytest

from protocol import b64encode
from tests.support.actors import Api, envelope, revoke
from tests.support.relayproc import RelayProcess

from .conftest import db_rows, unique


async def _next_message(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    event = json.loads(msg.data)
    assert event["type"] == "message"
    return dict(event["message"])


def _ws(api: Api, token: str, after: int = 0):  # type: ignore[no-untyped-def]
    return api.http.ws_connect(f"{api.url}/v1/events?after={after}",
                               headers={"Authorization": f"Bearer {token}"})


async def test_backlog_then_live_then_catch_up_after_reconnect(api: Api,
                                                               shared_relay: RelayProcess
                                                               ) -> None:
    a = await api.setup_org(shared_relay.network_key, unique("ea"), ("admin",))
    b = await api.setup_org(shared_relay.network_key, unique("eb"), ("admin", "alice"))
    sender = a.staff[f"{a.org_id}/admin"]
    send_token = await api.login(sender)
    early = (await api.send(send_token, [envelope(sender, b, "early")]))["messages"][0]
    reader = await api.login(b.staff[f"{b.org_id}/alice"])
    async with _ws(api, reader) as ws:
        first = await _next_message(ws)
        assert first["id"] == early["id"]
        live = (await api.send(send_token, [envelope(sender, b, "live")]))["messages"][0]
        pushed = await _next_message(ws)
        assert pushed["id"] == live["id"] and pushed["cursor"] > first["cursor"]
        # a message for another org is not pushed here
        await api.send(send_token, [envelope(sender, a, "not for b")])
        last_seen = pushed["cursor"]
    while_away = (await api.send(send_token, [envelope(sender, b, "away")]))["messages"][0]
    async with _ws(api, reader, after=last_seen) as ws:
        caught_up = await _next_message(ws)
        assert caught_up["id"] == while_away["id"]
        with pytest.raises(TimeoutError):  # nothing else: no duplicate of what we had
            await ws.receive(timeout=0.3)


async def test_stream_needs_a_session(api: Api) -> None:
    async with api.http.get(f"{api.url}/v1/events") as answer:
        assert answer.status == 401
        assert (await answer.json())["code"] == "auth_required"


async def test_a_plain_get_is_told_to_use_a_websocket(api: Api,
                                                       shared_relay: RelayProcess) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("pg"), ("admin",))
    token = await api.login(org.staff[f"{org.org_id}/admin"])
    async with api.http.get(f"{api.url}/v1/events",
                            headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 426
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert answer.headers["Upgrade"] == "websocket"
        assert (await answer.json())["code"] == "websocket_required"
    async with _ws(api, token) as ws:  # the refused request took no stream place
        assert not ws.closed


async def test_removed_staff_is_locked_out_at_once(api: Api, shared_relay: RelayProcess) -> None:
    # "At once": the removal itself closes the stream (no periodic check is involved);
    # test_service_events.py shows it in process without any time bound.
    org = await api.setup_org(shared_relay.network_key, unique("rm"), ("admin", "leaver"))
    leaver = org.staff[f"{org.org_id}/leaver"]
    token = await api.login(leaver)
    async with _ws(api, token) as ws:
        await api.append(org.remove(leaver.staff_id))
        closing = await ws.receive(timeout=10.0)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4401)
    status, body = await api.call("GET", "/v1/messages", token=token)
    assert (status, body["code"]) == (401, "session_invalid")
    status, body = await api.call("POST", "/v1/auth/challenge", {"staff_id": leaver.staff_id})
    assert (status, body["code"]) == (403, "not_enrolled")
    # their grants are gone from the relay; the colleague's stay
    holders = {r[0] for r in await db_rows(
        shared_relay, "SELECT staff_id FROM grants WHERE org_id = ?", org.org_id)}
    assert holders == {f"{org.org_id}/admin"}


async def test_revoked_org_sessions_and_streams_end(api: Api, shared_relay: RelayProcess) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("rv"), ("admin", "alice"))
    token = await api.login(org.staff[f"{org.org_id}/alice"])
    async with _ws(api, token) as ws:
        await api.append(revoke(shared_relay.network_key, org.org_id))
        closing = await ws.receive(timeout=1.0)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4401)
    status, body = await api.call("GET", "/v1/grants", token=token)
    assert (status, body["code"]) == (401, "session_invalid")


async def test_logout_closes_the_stream(api: Api, shared_relay: RelayProcess) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("lo"), ("admin",))
    token = await api.login(org.staff[f"{org.org_id}/admin"])
    async with _ws(api, token) as ws:
        await api.ok("DELETE", "/v1/auth/session", token=token, expect=204)
        closing = await asyncio.wait_for(ws.receive(), 1.0)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4401)


async def test_removal_stops_a_backlog_replay_at_once(api: Api, shared_relay: RelayProcess
                                                      ) -> None:
    """Attack: a leaver opens a stream over a large backlog just before being removed.

    The replay used to run to its end after the removal (the close was only looked at once
    the backlog was sent); it must stop at the next envelope. The backlog is far larger
    than the socket buffers, so what the leaver gets after the removal is bounded by them.
    """
    a = await api.setup_org(shared_relay.network_key, unique("ba"), ("admin",))
    b = await api.setup_org(shared_relay.network_key, unique("bb"), ("admin", "leaver"))
    sender = a.staff[f"{a.org_id}/admin"]
    send_token = await api.login(sender)
    total = 32
    big = b64encode(os.urandom(1024 * 1024))  # 1 MiB of opaque "sealed" bytes each
    for _ in range(total):
        await api.send(send_token, [{"to_org": b.org_id, "epoch": b.epoch, "sealed": big}])
    leaver = b.staff[f"{b.org_id}/leaver"]
    token = await api.login(leaver)
    async with _ws(api, token) as ws:
        await _next_message(ws)
        await api.append(b.remove(leaver.staff_id))
        await asyncio.sleep(0.3)
        received = 1
        while True:
            msg = await ws.receive(timeout=10.0)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            received += 1
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 4401)
    assert received < total, received
