"""Login: single-use, short-lived challenges; signatures bound to the relay; hashed tokens."""

from __future__ import annotations

import sqlite3

import aiohttp

from protocol import b64decode, b64encode, sign_auth
from relay.service.hashing import SESSION, secret_hash
from tests.support.actors import Api, Staff, rand
from tests.support.relayproc import RelayProcess

from .conftest import unique


async def _challenge(api: Api, staff: Staff) -> bytes:
    return b64decode((await api.ok("POST", "/v1/auth/challenge",
                                   {"staff_id": staff.staff_id}))["nonce"])


async def _answer(api: Api, staff: Staff, nonce: bytes, origin: str | None = None,
                  key: Staff | None = None) -> tuple[int, dict]:
    signer = (key or staff).signing
    return await api.call("POST", "/v1/auth/session", {
        "staff_id": staff.staff_id, "nonce": b64encode(nonce),
        "signature": b64encode(sign_auth(signer, origin or api.url, nonce))})


async def test_login_gives_a_session_that_works_until_logout(api: Api,
                                                             shared_relay: RelayProcess) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("auth"))
    alice = org.staff[f"{org.org_id}/alice"]
    status, session = await _answer(api, alice, await _challenge(api, alice))
    assert status == 200
    assert (session["staff_id"], session["org_id"], session["role"]) == (
        alice.staff_id, org.org_id, "staff")
    assert len(b64decode(session["token"])) == 32
    token = session["token"]
    assert (await api.ok("GET", "/v1/grants", token=token))["grants"]
    status, _ = await api.call("DELETE", "/v1/auth/session", token=token)
    assert status == 204
    status, body = await api.call("GET", "/v1/grants", token=token)
    assert (status, body["code"]) == (401, "session_invalid")


async def test_a_challenge_is_single_use(api: Api, shared_relay: RelayProcess) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("once"), ("admin",))
    admin = org.staff[f"{org.org_id}/admin"]
    nonce = await _challenge(api, admin)
    assert (await _answer(api, admin, nonce))[0] == 200
    status, body = await _answer(api, admin, nonce)
    assert (status, body["code"]) == (401, "challenge_invalid")


async def test_wrong_signatures_are_refused_and_burn_the_challenge(api: Api,
                                                                  shared_relay: RelayProcess
                                                                  ) -> None:
    org = await api.setup_org(shared_relay.network_key, unique("sig"), ("admin", "bob"))
    admin, bob = org.staff[f"{org.org_id}/admin"], org.staff[f"{org.org_id}/bob"]
    # signed by a colleague's key
    nonce = await _challenge(api, admin)
    status, body = await _answer(api, admin, nonce, key=bob)
    assert (status, body["code"]) == (401, "auth_bad_signature")
    # the right key cannot use that nonce any more
    status, body = await _answer(api, admin, nonce)
    assert (status, body["code"]) == (401, "challenge_invalid")
    # signed for another relay's origin (a relay passing challenges through)
    nonce = await _challenge(api, admin)
    status, body = await _answer(api, admin, nonce, origin="https://evil.example")
    assert (status, body["code"]) == (401, "auth_bad_signature")
    # a nonce issued to someone else
    nonce = await _challenge(api, bob)
    status, body = await _answer(api, admin, nonce)
    assert (status, body["code"]) == (401, "challenge_invalid")
    # a nonce never issued
    status, body = await _answer(api, admin, rand(32))
    assert (status, body["code"]) == (401, "challenge_invalid")


async def test_unknown_and_malformed_logins(api: Api, shared_relay: RelayProcess) -> None:
    status, body = await api.call("POST", "/v1/auth/challenge", {"staff_id": "nobody/here"})
    assert (status, body["code"]) == (403, "not_enrolled")
    status, body = await api.call("POST", "/v1/auth/challenge", {"staff_id": "not an id"})
    assert (status, body["code"]) == (422, "bad_field")
    status, body = await api.call("POST", "/v1/auth/challenge", {})
    assert (status, body["code"]) == (422, "missing_field")
    status, body = await api.call("POST", "/v1/auth/session",
                                  {"staff_id": "a1/b1", "nonce": "AA", "signature": "AA"})
    assert (status, body["code"]) == (422, "bad_field")
    for header in ("", "Bearer", "Basic abc", "Bearer !!!", "Bearer " + b64encode(rand(16))):
        status, body = await api.call("GET", "/v1/grants", headers={"Authorization": header})
        assert (status, body["code"]) == (401, "auth_required"), header
    status, body = await api.call("GET", "/v1/grants")
    assert (status, body["code"]) == (401, "auth_required")
    status, body = await api.call("GET", "/v1/grants", token=b64encode(rand(32)))
    assert (status, body["code"]) == (401, "session_invalid")


async def test_only_the_hash_of_a_session_token_is_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # (challenge expiry is tested in process with a moved clock: test_service_sessions.py)
    relay = RelayProcess.start(tmp_path / "r")
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(relay.url, http)
            org = await api.setup_org(relay.network_key, "expiry", ("admin",))
            token = await api.login(org.staff["expiry/admin"])
    finally:
        relay.stop()
    raw = relay.raw_database()
    assert b64decode(token) not in raw  # only its hash is stored
    with sqlite3.connect(relay.db_path) as db:
        hashes = {bytes(r[0]) for r in db.execute("SELECT token_hash FROM sessions")}
    assert secret_hash(SESSION, b64decode(token)) in hashes
