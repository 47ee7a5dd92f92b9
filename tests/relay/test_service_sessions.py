"""Logins and sessions in process, with the clock moved by the test (no sleeping)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import b64encode, sign_auth
from relay import wire
from relay.errors import (
    AuthSignatureInvalid,
    ChallengeExpired,
    ChallengeInvalid,
    NotEnrolled,
    SessionInvalid,
)
from relay.service.domain import LoginRequest
from relay.service.hashing import SESSION, secret_hash
from tests.relay.inprocess import World, service_world
from tests.support.actors import Staff, revoke


def _answer(world: World, staff: Staff, nonce: bytes, origin: str | None = None) -> LoginRequest:
    signature = sign_auth(staff.signing, origin or world.relay.config.origin, nonce)
    return wire.login_request({"staff_id": staff.staff_id, "nonce": b64encode(nonce),
                               "signature": b64encode(signature)})


async def test_a_challenge_expires_after_exactly_its_ttl(tmp_path: Path) -> None:
    async with service_world(tmp_path, challenge_ttl=30) as world:
        org = await world.setup_org("org-a")
        admin = org.staff["org-a/admin"]
        sessions = world.relay.sessions
        nonce, expires = await sessions.challenge(admin.staff_id, world.now())
        assert expires == world.now() + 30
        world.advance(30)
        with pytest.raises(ChallengeExpired):
            await sessions.login(_answer(world, admin, nonce), world.now())
        nonce, _ = await sessions.challenge(admin.staff_id, world.now())
        world.advance(29)
        created = await sessions.login(_answer(world, admin, nonce), world.now())
        assert created.session.staff_id == admin.staff_id


async def test_a_challenge_is_single_use_even_after_a_wrong_answer(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        org = await world.setup_org("org-a")
        admin = org.staff["org-a/admin"]
        sessions = world.relay.sessions
        nonce, _ = await sessions.challenge(admin.staff_id, world.now())
        wrong = _answer(world, admin, nonce, origin="http://elsewhere.example")
        with pytest.raises(AuthSignatureInvalid):
            await sessions.login(wrong, world.now())
        with pytest.raises(ChallengeInvalid):  # the right answer now comes too late
            await sessions.login(_answer(world, admin, nonce), world.now())
        nonce, _ = await sessions.challenge(admin.staff_id, world.now())
        alice = org.staff["org-a/alice"]
        with pytest.raises(ChallengeInvalid):  # a nonce asked for one person is not another's
            await sessions.login(_answer(world, alice, nonce), world.now())


async def test_a_session_ends_at_its_expiry_and_on_removal(tmp_path: Path) -> None:
    async with service_world(tmp_path, session_ttl=600) as world:
        org = await world.setup_org("org-a", ("admin", "alice", "leaver"))
        sessions = world.relay.sessions
        nonce, _ = await sessions.challenge("org-a/alice", world.now())
        created = await sessions.login(_answer(world, org.staff["org-a/alice"], nonce),
                                       world.now())
        assert created.session.expires == world.now() + 600
        assert sessions.authenticate(created.token, world.now() + 599).staff_id == "org-a/alice"
        with pytest.raises(SessionInvalid):
            sessions.authenticate(created.token, world.now() + 600)

        leaver = await world.login(org.staff["org-a/leaver"])
        assert sessions.still_valid(leaver, world.now())
        await world.append(org.remove("org-a/leaver"))
        assert not sessions.still_valid(leaver, world.now())
        with pytest.raises(NotEnrolled):
            await sessions.challenge("org-a/leaver", world.now())


async def test_sessions_survive_a_restart_but_only_their_hash_is_stored(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        org = await world.setup_org("org-a")
        sessions = world.relay.sessions
        nonce, _ = await sessions.challenge("org-a/admin", world.now())
        created = await sessions.login(_answer(world, org.staff["org-a/admin"], nonce),
                                       world.now())
        await sessions.load(world.now())  # what a restart does
        assert sessions.authenticate(created.token, world.now()).staff_id == "org-a/admin"
        stored = {s.token_hash for s in await world.relay.store.live_sessions(world.now())}
        assert secret_hash(SESSION, created.token) in stored
        assert created.token not in stored
        world.advance(world.relay.config.limits.session_ttl)
        await world.relay.purge(world.now())
        assert await world.relay.store.live_sessions(world.now() - 1) == []


async def test_a_revoked_org_cannot_log_in(tmp_path: Path) -> None:
    async with service_world(tmp_path) as world:
        org = await world.setup_org("org-a")
        session = await world.login(org.staff["org-a/admin"])
        await world.append(revoke(world.network, "org-a"))
        assert not world.relay.sessions.still_valid(session, world.now())
        with pytest.raises(NotEnrolled):
            await world.relay.sessions.challenge("org-a/admin", world.now())


async def test_a_session_checked_before_ends_at_once_on_removal_and_logout(
        tmp_path: Path) -> None:
    # authenticate remembers a session it checked against the key log: the very next
    # request after a removal (a log record) or a logout must still be refused
    async with service_world(tmp_path) as world:
        org = await world.setup_org("org-a", ("admin", "alice", "leaver"))
        sessions = world.relay.sessions
        tokens = {}
        for name in ("alice", "leaver"):
            nonce, _ = await sessions.challenge(f"org-a/{name}", world.now())
            tokens[name] = (await sessions.login(
                _answer(world, org.staff[f"org-a/{name}"], nonce), world.now())).token
            for _ in range(2):  # the second answer comes from what was remembered
                assert sessions.authenticate(tokens[name], world.now()).staff_id == (
                    f"org-a/{name}")
        await world.append(org.remove("org-a/leaver"))
        with pytest.raises(SessionInvalid):
            sessions.authenticate(tokens["leaver"], world.now())
        alice = sessions.authenticate(tokens["alice"], world.now())  # checked again: still live
        await sessions.logout(alice)
        with pytest.raises(SessionInvalid):
            sessions.authenticate(tokens["alice"], world.now())
