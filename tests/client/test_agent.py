"""The unlock agent's parts: its folder, the peer check, what it keeps, and new passphrases."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from client import agent as agent_module
from client.agent import Agent
from client.agent_client import ask
from client.agent_protocol import (
    keystore_content,
    make_runtime_dir,
    peer_allowed,
    peer_uid,
    socket_path,
)
from client.cli_common import parse_duration
from client.errors import ProfileError
from client.keystore import FORGOTTEN, Keystore
from client.passphrase_strength import require_strong, weakness

PASSPHRASE = "Leuchtturm Kieselstein Morgenkaffee"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder under /tmp: pytest's own paths can be too long for a socket."""
    path = Path(tempfile.mkdtemp(prefix="kokag-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- who may talk to it -----------------------------------------------------------------


def test_the_peer_check_takes_the_kernels_word_for_the_uid() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert peer_uid(left) == os.getuid()
        assert peer_allowed(left)
        assert not peer_allowed(left, own_uid=os.getuid() + 1)  # another user is refused


def test_the_agent_answers_nobody_its_peer_check_refuses(
        short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keystore = Keystore.create(short_dir / "keystore", PASSPHRASE, {"k": b"secret key"})
    path = short_dir / "a.sock"

    async def scenario(refuse: bool) -> dict[str, object] | None:
        if refuse:  # as if the caller ran under another uid
            monkeypatch.setattr(agent_module, "peer_allowed",
                                lambda sock: peer_allowed(sock, own_uid=os.getuid() + 1))
        agent = Agent(keystore, "anna", expires=2**31)
        ready = asyncio.Event()
        serving = asyncio.create_task(agent.serve(path, ready.set))
        await ready.wait()
        answer = await asyncio.to_thread(ask, path, {"op": "open"})
        agent.stopped.set()
        await serving
        return answer

    allowed = asyncio.run(scenario(refuse=False))
    assert allowed is not None and allowed["secrets"] == {"k": "c2VjcmV0IGtleQ"}
    assert not path.exists()  # removed on the way out
    assert asyncio.run(scenario(refuse=True)) is None


# --- where it listens -------------------------------------------------------------------


def test_the_runtime_dir_is_made_0700(short_dir: Path) -> None:
    folder = short_dir / "kok"
    make_runtime_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    make_runtime_dir(folder)  # a second time: the same folder is fine


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o777])
def test_a_runtime_dir_others_can_enter_is_refused(short_dir: Path, mode: int) -> None:
    folder = short_dir / "kok"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(ProfileError) as err:
        make_runtime_dir(folder)
    assert err.value.code == "agent_dir_unsafe" and str(folder) in err.value.message
    assert stat.S_IMODE(folder.stat().st_mode) == mode  # refused, not "repaired"


def test_a_symlinked_or_foreign_runtime_dir_is_refused(short_dir: Path) -> None:
    real = short_dir / "real"
    real.mkdir(mode=0o700)
    (short_dir / "link").symlink_to(real)
    with pytest.raises(ProfileError):
        make_runtime_dir(short_dir / "link")
    if os.getuid() == 0:  # only root can give a folder to another user
        foreign = short_dir / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(ProfileError):
            make_runtime_dir(foreign)


def test_each_keystore_has_its_own_socket(short_dir: Path) -> None:
    one = socket_path(short_dir / "home1" / "anna" / "keystore", short_dir)
    two = socket_path(short_dir / "home2" / "anna" / "keystore", short_dir)
    assert one != two and one.parent == short_dir and "anna" not in one.name
    with pytest.raises(ProfileError) as err:
        socket_path(short_dir / "keystore", short_dir / ("x" * 120))
    assert err.value.code == "agent_dir_unsafe"


def test_durations_take_seconds_for_short_unlocks() -> None:
    assert parse_duration("2s", "--for") == 2


# --- what it keeps ----------------------------------------------------------------------


def test_saves_through_the_agent_use_a_fresh_salt_and_keep_others_keys(
        short_dir: Path) -> None:
    path = short_dir / "keystore"
    Keystore.create(path, PASSPHRASE, {"identity": b"I" * 32})
    agent = Agent(Keystore.open(path, PASSPHRASE), "anna", expires=2**31)
    salt_before = path.read_bytes()
    other = Keystore.open(path, PASSPHRASE)  # another program, given the passphrase
    other.secrets["epoch-2"] = b"E" * 32
    other.save()
    opened = agent.answer({"op": "open"})
    assert opened["ok"] and set(opened["secrets"]) == {"identity", "epoch-2"}
    saved = agent.answer({"op": "save", **keystore_content(
        {"identity": b"I" * 32, "device": b"D" * 32}, {})})
    assert saved["ok"] and set(saved["secrets"]) == {"identity", "epoch-2", "device"}
    assert path.read_bytes() != salt_before
    assert set(Keystore.open(path, PASSPHRASE).secrets) == {"identity", "epoch-2", "device"}


def test_an_older_copy_put_back_brings_no_forgotten_key_out(short_dir: Path) -> None:
    path = short_dir / "keystore"
    Keystore.create(path, PASSPHRASE, {"identity": b"I" * 32, "epoch-1": b"1" * 32})
    backup = path.read_bytes()
    agent = Agent(Keystore.open(path, PASSPHRASE), "anna", expires=2**31)
    agent.keystore.forget("epoch-1")
    agent.keystore.save()
    path.write_bytes(backup)  # someone of the same user puts the old copy back
    opened = agent.answer({"op": "open"})
    assert opened["ok"] and "epoch-1" not in opened["secrets"]
    assert "epoch-1" in opened["meta"][FORGOTTEN]
    # nor can a save that leaves the name out of "forgotten" bring it back
    saved = agent.answer({"op": "save", **keystore_content({"epoch-1": b"1" * 32}, {})})
    assert saved["ok"] and "epoch-1" not in saved["secrets"]


def test_a_changed_passphrase_ends_the_agent(short_dir: Path) -> None:
    path = short_dir / "keystore"
    Keystore.create(path, PASSPHRASE, {"identity": b"I" * 32})
    agent = Agent(Keystore.open(path, PASSPHRASE), "anna", expires=2**31)
    Keystore.open(path, PASSPHRASE).change_passphrase("Nebelhorn Tintenfass Wanderdüne")
    answer = agent.answer({"op": "open"})
    assert answer == {"ok": False, "error": "keystore_changed"}
    assert agent.stopped.is_set()


@pytest.mark.parametrize("request_", [
    {"op": "save", "secrets": [], "meta": {}},
    {"op": "save", "secrets": {"a": "not base64!"}, "meta": {}},
    {"op": "save", "secrets": {}, "meta": {FORGOTTEN: "epoch-1"}},
    {"op": "fetch-passphrase"},
    {},
])
def test_bad_requests_change_nothing(short_dir: Path, request_: dict[str, object]) -> None:
    path = short_dir / "keystore"
    Keystore.create(path, PASSPHRASE, {"identity": b"I" * 32})
    before = path.read_bytes()
    agent = Agent(Keystore.open(path, PASSPHRASE), "anna", expires=2**31)
    assert agent.answer(request_) == {"ok": False, "error": "bad_request"}
    assert path.read_bytes() == before and set(agent.keystore.secrets) == {"identity"}


# --- new passphrases --------------------------------------------------------------------


@pytest.mark.parametrize(("weak", "reason"), [
    ("passwort", "common word"), ("qwertzuiop", "common word"), ("hunter2hunter2", "repeats"),
    ("abcdefgh12345", "sequence"), ("x7", "too short"), ("anna-weber", "name of the profile"),
    ("", "too short"),
])
def test_weak_passphrases_are_refused_with_the_reason(weak: str, reason: str) -> None:
    with pytest.raises(ProfileError) as err:
        require_strong(weak, ["anna-weber"])
    assert err.value.code == "weak_passphrase"
    assert "too easy to guess" in err.value.message and reason in err.value.message


def test_the_reason_is_given_in_german(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    with pytest.raises(ProfileError) as err:
        require_strong("passwort")
    assert "zu leicht zu erraten" in err.value.message and "Wort" in err.value.message


@pytest.mark.parametrize("strong", [
    PASSPHRASE, "correct horse battery staple", "Nebelhorn Tintenfass Wanderdüne"])
def test_strong_passphrases_are_accepted(strong: str) -> None:
    assert weakness(strong, ["anna"]) is None
