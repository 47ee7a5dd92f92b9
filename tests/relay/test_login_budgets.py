"""Logins cannot be denied by others: separate budgets, and only failed answers count.

Attacks: (1) a flood of unauthenticated probes (random status tokens) used to spend the one
budget that challenges also drew from, locking everybody out of logging in; (2) staff ids
are public in the key log, and challenges or wrong answers sent in a person's name used to
spend that person's login budget, locking them out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from protocol import b64encode
from tests.support.actors import Api, rand
from tests.support.relayproc import RelayProcess

PUBLIC = 40
STAFF = 5


@pytest.fixture
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    # one relay per test: each test spends budgets on purpose
    started = RelayProcess.start(tmp_path_factory.mktemp("logins"), env={
        "KOK_RELAY_LIMITS_PUBLIC_REQUESTS_PER_MINUTE": str(PUBLIC),
        "KOK_RELAY_LIMITS_STAFF_REQUESTS_PER_MINUTE": str(STAFF)})
    yield started
    started.stop()


@pytest.fixture
async def api(relay: RelayProcess) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(relay.url, http)


async def _wrong_answer(api: Api, staff_id: str) -> tuple[int, str]:
    challenge = await api.ok("POST", "/v1/auth/challenge", {"staff_id": staff_id})
    status, body = await api.call("POST", "/v1/auth/session", {
        "staff_id": staff_id, "nonce": challenge["nonce"], "signature": b64encode(rand(64))})
    return status, body["code"]


async def test_probing_cannot_starve_logins(api: Api, relay: RelayProcess) -> None:
    org = await api.setup_org(relay.network_key, "probed", ("admin",))
    answers = [await api.call("POST", "/v1/status", {"token": b64encode(rand(32))})
               for _ in range(PUBLIC + 5)]
    assert answers[-1][0] == 429 and answers[-1][1]["code"] == "rate_limited"
    assert await api.login(org.staff["probed/admin"])  # logins draw from their own budget


async def test_others_cannot_lock_a_person_out_of_logging_in(api: Api,
                                                             relay: RelayProcess) -> None:
    org = await api.setup_org(relay.network_key, "target", ("admin", "anna"))
    anna = org.staff["target/anna"]
    for _ in range(STAFF * 2):  # challenges in anna's name cost her nothing
        await api.ok("POST", "/v1/auth/challenge", {"staff_id": anna.staff_id})
    outcomes = [await _wrong_answer(api, anna.staff_id) for _ in range(STAFF + 2)]
    assert outcomes[0] == (401, "auth_bad_signature")
    assert outcomes[-1] == (429, "rate_limited")  # wrong answers are limited per person ...
    assert await api.login(anna)  # ... but a right one is never refused for them
    colleague = org.staff["target/admin"]
    assert await api.login(colleague)

