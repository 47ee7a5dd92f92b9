"""Limits: body size while streaming, storage quota, request rates; each a specific 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from protocol import b64encode
from tests.support.actors import Api, envelope, rand
from tests.support.relayproc import RelayProcess

LIMITS = {
    "KOK_RELAY_LIMITS_ORG_STORAGE_BYTES": "6000",
    "KOK_RELAY_LIMITS_STAFF_REQUESTS_PER_MINUTE": "40",
    "KOK_RELAY_LIMITS_MAX_SEND_BYTES": "100000",
}


@pytest.fixture(scope="module")
def tight_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    relay = RelayProcess.start(tmp_path_factory.mktemp("tight"), env=LIMITS)
    yield relay
    relay.stop()


@pytest.fixture
async def api(tight_relay: RelayProcess) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(tight_relay.url, http)


async def test_info_reports_the_configured_limits(api: Api) -> None:
    limits = (await api.ok("GET", "/v1/info"))["limits"]
    assert limits["org_storage_bytes"] == 6000
    assert limits["staff_requests_per_minute"] == 40


async def test_bodies_are_bounded_while_streaming(api: Api, tight_relay: RelayProcess) -> None:
    org = await api.setup_org(tight_relay.network_key, "stream", ("admin",))
    token = await api.login(org.staff["stream/admin"])

    async def endless() -> AsyncIterator[bytes]:
        yield b'{"idempotency_key": "' + b"A" * 22 + b'", "envelopes": [{"sealed": "'
        for _ in range(400):  # 400 x 64 KiB, far past the limit; no Content-Length header
            yield b"A" * 65536

    async with api.http.post(api.url + "/v1/messages", data=endless(),
                             headers={"Authorization": f"Bearer {token}"}) as answer:
        body = await answer.json()
    assert (answer.status, body["code"]) == (413, "body_too_large")
    status, body = await api.call("POST", "/v1/messages", raw=b"x" * 300_000, token=token)
    assert (status, body["code"]) == (413, "body_too_large")


async def test_storage_quota_per_recipient_org(api: Api, tight_relay: RelayProcess) -> None:
    a = await api.setup_org(tight_relay.network_key, "qa", ("admin",))
    b = await api.setup_org(tight_relay.network_key, "qb", ("admin",))
    sender = a.staff["qa/admin"]
    token = await api.login(sender)
    padding = "x" * 2500  # each sealed envelope is padded to a little over 2.5 KB
    first = await api.send(token, [envelope(sender, b, padding)])
    await api.send(token, [envelope(sender, b, padding)])
    status, body = await api.call("POST", "/v1/messages", {
        "idempotency_key": b64encode(rand(16)), "envelopes": [envelope(sender, b, padding)]},
        token=token)
    assert (status, body["code"]) == (413, "quota_exceeded")
    # the quota is the recipient's: another org's mailbox is unaffected
    await api.send(token, [envelope(sender, a, padding)])
    # space frees when a message is retracted
    await api.ok("POST", "/v1/retract", {"token": first["messages"][0]["status_token"]})
    await api.send(token, [envelope(sender, b, padding)])


async def test_request_rate_per_staff_member(api: Api, tight_relay: RelayProcess) -> None:
    org = await api.setup_org(tight_relay.network_key, "rate", ("admin", "other"))
    token = await api.login(org.staff["rate/admin"])
    answers = [await api.call("GET", "/v1/grants", token=token) for _ in range(45)]
    statuses = [s for s, _ in answers]
    assert 200 in statuses and 429 in statuses
    limited = next(body for status, body in answers if status == 429)
    assert limited["code"] == "rate_limited"
    async with api.http.get(api.url + "/v1/grants",
                            headers={"Authorization": f"Bearer {token}"}) as answer:
        assert answer.status == 429 and int(answer.headers["Retry-After"]) >= 1
    # a colleague has their own budget
    other = await api.login(org.staff["rate/other"])
    assert (await api.call("GET", "/v1/grants", token=other))[0] == 200



async def test_logins_in_someone_elses_name_do_not_spend_their_budget(
        api: Api, tight_relay: RelayProcess) -> None:
    org = await api.setup_org(tight_relay.network_key, "victim", ("admin", "anna"))
    token = await api.login(org.staff["victim/anna"])
    answers = [await api.call("POST", "/v1/auth/challenge", {"staff_id": "victim/anna"})
               for _ in range(45)]
    assert {status for status, _ in answers} == {200}  # a challenge costs anna nothing
    assert (await api.call("GET", "/v1/grants", token=token))[0] == 200
    assert await api.login(org.staff["victim/anna"])
