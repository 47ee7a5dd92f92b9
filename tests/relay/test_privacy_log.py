"""The relay's log: route patterns and statuses; no address, token, id or payload."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from protocol import b64decode, b64encode
from relay.privacylog import Pseudonyms, redact_addresses
from tests.support.actors import Api, envelope, rand
from tests.support.relayproc import RelayProcess


async def test_a_full_session_leaves_no_identifying_data_in_the_log(tmp_path: Path) -> None:
    relay = RelayProcess.start(tmp_path / "r")
    secrets_seen: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            a = await api.setup_org(relay.network_key, "privacy-a", ("admin",))
            b = await api.setup_org(relay.network_key, "privacy-b", ("admin",))
            sender = a.staff["privacy-a/admin"]
            token = await api.login(sender)
            env = envelope(sender, b, "the body of a case consultation")
            sent = (await api.send(token, [env]))["messages"][0]
            reader = await api.login(b.staff["privacy-b/admin"])
            async with http.ws_connect(f"{relay.url}/v1/events?after=0",
                                       headers={"Authorization": f"Bearer {reader}"}) as ws:
                await ws.receive(timeout=5)
            await api.ok("GET", f"/v1/messages/{sent['id']}", token=reader)
            await api.ok("POST", f"/v1/messages/{sent['id']}/ack", token=reader)
            await api.ok("POST", "/v1/status", {"token": sent["status_token"]})
            await api.call("GET", f"/v1/messages/{b64encode(rand(16))}", token=reader)
            await api.call("POST", "/v1/retract", {"token": sent["status_token"]})
            await api.call("GET", "/v1/grants", token=b64encode(rand(32)))
            secrets_seen += [token, reader, sent["status_token"], sent["id"], env["sealed"][:40],
                             b64decode(token).hex(), "privacy-a", "privacy-b",
                             "case consultation"]
    finally:
        relay.stop()  # also asserts the log holds no 127.0.0.1
    relay.assert_log_clean(*secrets_seen)
    access = [e for e in relay.log_events() if e.get("event") == "access"]
    routes = {(e["method"], e["route"], e["status"]) for e in access}
    assert ("GET", "/v1/messages/{id}", 200) in routes
    assert ("GET", "/v1/messages/{id}", 404) in routes
    assert ("POST", "/v1/messages/{id}/ack", 200) in routes
    assert ("GET", "/v1/events", 101) in routes
    assert all(set(e) <= {"method", "route", "status", "ms", "code", "org", "staff", "event",
                          "level", "timestamp"} for e in access)
    refused = [e for e in access if e["status"] == 401]
    assert refused and refused[0]["code"] == "session_invalid"
    # a send names nobody, not even by pseudonym: with its timestamp beside the database's
    # arrival times it would tie the sender to the envelope
    sends = [e for e in access if e["route"] == "/v1/messages" and e["method"] == "POST"]
    assert sends and "org" not in sends[0] and "staff" not in sends[0]
    # other requests carry the day's pseudonyms (the same org under one name within the day)
    reads = [e for e in access if e["route"] == "/v1/messages/{id}" and e["status"] == 200]
    acks = [e for e in access if e["route"] == "/v1/messages/{id}/ack"]
    assert reads and acks and len(reads[0]["org"]) == 12 and reads[0]["org"] == acks[0]["org"]
    assert all(json.dumps(e).count("privacy") == 0 for e in access)


def test_pseudonyms_are_stable_within_a_day_and_change_with_it() -> None:
    pseudonym = Pseudonyms()
    day = 20_000 * 86400
    first = pseudonym("org-a", day + 10)
    assert pseudonym("org-a", day + 80_000) == first
    assert pseudonym("org-b", day + 10) != first
    assert pseudonym("org-a", day + 86400 + 1) != first
    assert "org-a" not in first


def test_addresses_are_redacted_from_any_line() -> None:
    line = "peer 127.0.0.1:8787 and 10.1.2.3 and [::1]:80 and fe80::1ff:fe23:4567:890a here"
    cleaned = redact_addresses(line)
    for address in ("127.0.0.1", "10.1.2.3", "::1", "fe80::1ff:fe23:4567:890a"):
        assert address not in cleaned
    assert redact_addresses("version 1.2 at 12:30") == "version 1.2 at 12:30"
