"""The relay process starts, answers, and carries one message from org to org."""

from __future__ import annotations

import aiohttp

from protocol import KeyLog, SignedItem, b64decode, open_message
from tests.support.actors import Api, envelope
from tests.support.relayproc import RelayProcess


async def test_message_from_org_to_org(shared_relay: RelayProcess) -> None:
    async with aiohttp.ClientSession() as http:
        api = Api(shared_relay.url, http)
        assert (await api.ok("GET", "/healthz")) == {"status": "ok"}
        sender_org = await api.setup_org(shared_relay.network_key, "smoke-a")
        recipient_org = await api.setup_org(shared_relay.network_key, "smoke-b")
        sender = sender_org.staff["smoke-a/alice"]
        reader = recipient_org.staff["smoke-b/alice"]
        sent = await api.send(await api.login(sender), [envelope(sender, recipient_org, "hi")])
        token = await api.login(reader)
        listing = await api.ok("GET", "/v1/messages?after=0", token=token)
        assert [m["id"] for m in listing["messages"]] == [sent["messages"][0]["id"]]
        stored = listing["messages"][0]
        log = KeyLog(shared_relay.network_key.public)
        for entry in (await api.ok("GET", "/v1/log"))["entries"]:
            log.apply_item(SignedItem.from_json(entry["record"]), 2**40)
        opened = open_message(b64decode(stored["sealed"]), to_org="smoke-b", epoch=1,
                              epoch_secret=recipient_org.epochs[1].secret, keylog=log,
                              now=stored["received"])
        assert opened.payload.body == "hi"
        assert opened.payload.from_staff == "smoke-a/alice"
