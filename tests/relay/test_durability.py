"""What the relay answered 2xx for survives a restart and even ``kill -9``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.support.actors import Api, envelope
from tests.support.relayproc import RelayProcess


async def test_kill_9_loses_nothing_answered_and_delivers_it_once(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "r")
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            a = await api.setup_org(relay.network_key, "crash-a", ("admin",))
            b = await api.setup_org(relay.network_key, "crash-b", ("admin", "alice"))
            sender = a.staff["crash-a/admin"]
            token = await api.login(sender)
            reader_token = await api.login(b.staff["crash-b/alice"])
            # many concurrent sends share group commits; every one answered must survive
            answers = await asyncio.gather(*(
                api.send(token, [envelope(sender, b, f"n{i}")]) for i in range(40)))
            sent_ids = {m["messages"][0]["id"] for m in answers}
            head_before = await api.ok("GET", "/v1/log/head")
        relay.kill()  # SIGKILL: no shutdown code, no final checkpoint
        relay.restart()
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            head_after = await api.ok("GET", "/v1/log/head")
            assert (head_after["size"], head_after["hash"]) == (head_before["size"],
                                                                head_before["hash"])
            # sessions survive a restart as well
            listing = await api.ok("GET", "/v1/messages?limit=1000", token=reader_token)
            ids = [m["id"] for m in listing["messages"]]
            assert sorted(ids) == sorted(sent_ids)  # each exactly once
            assert len(ids) == len(set(ids))
            for message_id in ids:
                await api.ok("POST", f"/v1/messages/{message_id}/ack", token=reader_token)
            again = await api.ok("GET", f"/v1/messages?after={listing['cursor']}",
                                 token=reader_token)
            assert again["messages"] == []
            # cursors are never reused: a new message gets a higher one
            new = await api.send(token, [envelope(sender, b, "after restart")])
            fresh = await api.ok("GET", f"/v1/messages?after={listing['cursor']}",
                                 token=reader_token)
            assert [m["id"] for m in fresh["messages"]] == [new["messages"][0]["id"]]
    finally:
        relay.stop()


async def test_restart_keeps_log_grants_and_status(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "r")
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            a = await api.setup_org(relay.network_key, "keep-a", ("admin",))
            b = await api.setup_org(relay.network_key, "keep-b", ("admin", "alice", "bob"))
            sender = a.staff["keep-a/admin"]
            sent = (await api.send(await api.login(sender), [envelope(sender, b)]))["messages"][0]
            alice = await api.login(b.staff["keep-b/alice"])
            await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=alice)
        relay.restart()
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            assert await api.ok("POST", "/v1/status", {"token": sent["status_token"]}) == {
                "state": "pending", "acknowledged": 1, "of": 3, "read": 0}
            bob = b.staff["keep-b/bob"]
            assert (await api.ok("GET", "/v1/grants", token=await api.login(bob)))["grants"]
            # removing bob (who never acked) means everyone left has: delivered
            await api.append(b.remove(bob.staff_id))
            assert await api.ok("POST", "/v1/status", {"token": sent["status_token"]}) == {
                "state": "pending", "acknowledged": 1, "of": 2, "read": 0}
            admin = await api.login(b.staff["keep-b/admin"])
            assert await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=admin) == {
                "deleted": True}
            assert (await api.ok("POST", "/v1/status", {"token": sent["status_token"]}))[
                "state"] == "delivered"
    finally:
        relay.stop()
