"""``kok unlock`` / ``kok lock`` against a real relay: one passphrase per working session.

Every ``kok`` here runs without a terminal; ``locked_env`` gives no passphrase at all, so a
command that succeeds with it got its keys from the agent.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.keystore import Keystore
from protocol.encoding import b64encode
from tests.integration.kokcli import TEST_PASSPHRASE, kok, kok_env, ok
from tests.integration.people import close_all, new_org, new_staff, open_office, unique

STRONG = "Leuchtturm Kieselstein Morgenkaffee"


@pytest.fixture(scope="module")
def world(shared_relay: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An org (admin profile ``nord``) and its staff member ``anna``, built with the library."""
    home = tmp_path_factory.mktemp("agent")

    async def build() -> dict[str, Any]:
        office = await open_office(shared_relay)
        nord = await new_org(shared_relay, home, office, unique("nord"))
        anna = await new_staff(shared_relay, home, nord, "anna")
        facts = {"home": home, "relay": shared_relay, "nord": str(nord.org_id),
                 "anna": f"{nord.org_id}.anna"}
        await close_all(office, nord, anna)
        return facts

    return asyncio.run(build())


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A private ``XDG_RUNTIME_DIR`` for this test's agents (short: socket paths are)."""
    path = Path(tempfile.mkdtemp(prefix="kokrt-", dir="/tmp"))
    yield path
    for sock in (path / "kok").glob("*.sock") if (path / "kok").is_dir() else ():
        stop_agent_at(sock)
    shutil.rmtree(path, ignore_errors=True)


def stop_agent_at(sock: Path) -> None:
    """End a test's agent that is still running (by its pid, which it reports itself)."""
    from client.agent_client import ask

    answer = ask(sock, {"op": "status"})
    if answer and answer.get("pid"):
        os.kill(int(answer["pid"]), signal.SIGTERM)


def locked_env(runtime: Path, **extra: str) -> dict[str, str]:
    return kok_env(None, XDG_RUNTIME_DIR=str(runtime), **extra)


def unlock(world: dict[str, Any], runtime: Path, profile: str, *args: str,
           default_time: bool = False) -> dict[str, Any]:
    """``kok unlock ARGS`` (``--for 10m`` unless told: an agent a killed test run leaves
    behind ends soon by itself)."""
    args = args or (() if default_time else ("--for", "10m"))
    result = ok(kok("--json", "unlock", *args, home=world["home"], profile=profile,
                    env=kok_env(TEST_PASSPHRASE, XDG_RUNTIME_DIR=str(runtime))))
    return dict(json.loads(result.out))


def wait_until(predicate: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def asks_for_passphrase(result: Any) -> bool:
    return result.code == 1 and "KOK_PASSPHRASE" in result.error_line


def test_unlocked_commands_ask_nothing_until_locked(world: dict[str, Any], runtime: Path) -> None:
    home, anna = world["home"], world["anna"]
    assert asks_for_passphrase(kok("inbox", home=home, profile=anna, env=locked_env(runtime)))
    first = unlock(world, runtime, anna, default_time=True)  # 8 hours
    assert first["already"] is False and first["expires"] > time.time() + 7 * 3600
    folder = runtime / "kok"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (sock,) = folder.iterdir()
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
    ok(kok("sync", home=home, profile=anna, env=locked_env(runtime)))
    assert "0 messages" in ok(kok("inbox", home=home, profile=anna, env=locked_env(runtime))).out
    # anna only: her admin's profile stays locked
    assert asks_for_passphrase(kok("inbox", home=home, profile=world["nord"],
                                   env=locked_env(runtime)))
    again = unlock(world, runtime, anna)
    assert again["already"] is True and again["pid"] == first["pid"]
    locked = ok(kok("lock", home=home, profile=anna, env=locked_env(runtime)))
    assert "is locked" in locked.out
    assert not list(folder.iterdir())  # the socket went with the agent
    assert asks_for_passphrase(kok("inbox", home=home, profile=anna, env=locked_env(runtime)))


def test_a_save_goes_through_the_agent_and_no_secret_reaches_the_disk(
        world: dict[str, Any], runtime: Path) -> None:
    home, nord = world["home"], world["nord"]
    keystore_path = home / nord / "keystore"
    before = Keystore.open(keystore_path, TEST_PASSPHRASE)
    salt_before = json.loads(keystore_path.read_text())["salt"]
    unlock(world, runtime, nord)
    ok(kok("org", "rotate", home=home, profile=nord, env=locked_env(runtime)))
    after = Keystore.open(keystore_path, TEST_PASSPHRASE)  # still the same passphrase
    assert set(after.secrets) - set(before.secrets)  # the new epoch key was saved
    assert json.loads(keystore_path.read_text())["salt"] != salt_before
    files = [p for root in (runtime, home / nord) for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "keystore" for p in files)
    needles = [*after.secrets.values(), *(b64encode(v).encode() for v in after.secrets.values()),
               TEST_PASSPHRASE.encode()]
    for path in files:
        data = path.read_bytes()
        assert not [n for n in needles if n in data], path
    ok(kok("lock", home=home, profile=nord, env=locked_env(runtime)))


def test_the_time_limit_ends_the_agent_by_itself(world: dict[str, Any], runtime: Path) -> None:
    home, anna = world["home"], world["anna"]
    started = unlock(world, runtime, anna, "--for", "2s")
    assert started["expires"] <= time.time() + 3
    assert wait_until(lambda: not list((runtime / "kok").iterdir()))
    assert wait_until(lambda: not Path(f"/proc/{started['pid']}").exists())
    assert asks_for_passphrase(kok("inbox", home=home, profile=anna, env=locked_env(runtime)))


def test_sigterm_ends_it_cleanly_and_a_stale_socket_is_cleared(world: dict[str, Any],
                                                               runtime: Path) -> None:
    home, anna = world["home"], world["anna"]
    started = unlock(world, runtime, anna)
    os.kill(started["pid"], signal.SIGTERM)
    assert wait_until(lambda: not list((runtime / "kok").iterdir()))
    # an agent killed outright leaves its socket behind: the next command clears it and asks
    killed = unlock(world, runtime, anna)
    os.kill(killed["pid"], signal.SIGKILL)
    assert wait_until(lambda: not Path(f"/proc/{killed['pid']}").exists()
                      or "zombie" in Path(f"/proc/{killed['pid']}/status").read_text().lower())
    (sock,) = (runtime / "kok").iterdir()
    assert asks_for_passphrase(kok("inbox", home=home, profile=anna, env=locked_env(runtime)))
    assert not sock.exists()
    ok(kok("inbox", home=home, profile=anna, env=kok_env(XDG_RUNTIME_DIR=str(runtime))))


def test_a_runtime_folder_others_can_enter_is_refused(world: dict[str, Any],
                                                      runtime: Path) -> None:
    folder = runtime / "kok"
    folder.mkdir(mode=0o755)  # as if another user had made it first, open for all
    folder.chmod(0o755)
    refused = kok("unlock", home=world["home"], profile=world["anna"],
                  env=kok_env(TEST_PASSPHRASE, XDG_RUNTIME_DIR=str(runtime)))
    assert refused.code == 1 and "not safe" in refused.error_line
    assert str(folder) in refused.error_line
    assert not list(folder.iterdir()) and stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_passwd_needs_the_current_passphrase_and_ends_the_agent(
        world: dict[str, Any], runtime: Path) -> None:
    home, nord = world["home"], world["nord"]
    unlock(world, runtime, nord)
    refused = kok("passwd", home=home, profile=nord,
                  env=locked_env(runtime, KOK_NEW_PASSPHRASE=STRONG))
    assert asks_for_passphrase(refused)  # the agent does not stand in for the current one
    weak = kok("passwd", home=home, profile=nord,
               env=kok_env(XDG_RUNTIME_DIR=str(runtime), KOK_NEW_PASSPHRASE="passwort"))
    assert weak.code == 1 and "too easy to guess" in weak.error_line
    Keystore.open(home / nord / "keystore", TEST_PASSPHRASE)  # unchanged
    ok(kok("passwd", home=home, profile=nord,
           env=kok_env(XDG_RUNTIME_DIR=str(runtime), KOK_NEW_PASSPHRASE=STRONG)))
    assert not list((runtime / "kok").iterdir())
    ok(kok("passwd", home=home, profile=nord,
           env=kok_env(STRONG, XDG_RUNTIME_DIR=str(runtime), KOK_NEW_PASSPHRASE=TEST_PASSPHRASE)))


def test_a_new_profile_with_a_weak_passphrase_is_refused(world: dict[str, Any],
                                                          tmp_path: Path) -> None:
    anchor = tmp_path / "network.json"
    anchor.write_text(json.dumps(world["relay"].network_anchor))
    args = ("staff", "new", "--org", world["nord"], "--name", "Carla Neu", "--relay",
            world["relay"].url, "--network", str(anchor), "--out", str(tmp_path / "req"))
    weak = kok(*args, home=tmp_path, profile="carla", env=kok_env("passwort"))
    assert weak.code == 1 and "too easy to guess" in weak.error_line
    assert "common word" in weak.error_line
    german = kok(*args, home=tmp_path, profile="carla", env=kok_env("Carla", LANG="de_DE.UTF-8"))
    assert german.code == 1 and "zu leicht zu erraten" in german.error_line
    assert "Namen des Profils" in german.error_line
    assert not (tmp_path / "carla").exists() and not (tmp_path / "req").exists()
    ok(kok(*args, home=tmp_path, profile="carla", env=kok_env(STRONG)))
    assert (tmp_path / "carla" / "keystore").exists()
