"""``kok app`` and the unlock agent: a running ``kok unlock`` spares the passphrase,
``kok lock`` locks the app that took its keys from it, and a new passphrase set in the app
ends the agent (which holds the old one) while the app stays open (real relay, real agent,
HTTP only)."""

from __future__ import annotations

import http.client
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from client import Client
from client.errors import ProfileError
from client.profile import load_profile
from tests.app.appproc import AppProcess, wait_for
from tests.app.conftest import World, run_async
from tests.app.test_security import call, csrf_of
from tests.integration.kokcli import TEST_PASSPHRASE, kok, kok_env, ok
from tests.integration.people import PASSPHRASE, close_all, new_staff


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A private ``XDG_RUNTIME_DIR`` for this test's agent (socket paths must be short)."""
    path = Path(tempfile.mkdtemp(prefix="kokrt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def get(app: AppProcess, path: str, cookie: str = "") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{app.port}", "Cookie": cookie})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    return response


def test_the_app_takes_the_keys_of_a_running_agent_and_locks_when_it_ends(
        world: World, runtime: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    ok(kok("unlock", "--for", "10m", home=world.home, profile=world.anna,
           env=kok_env(TEST_PASSPHRASE, **env)))
    app = AppProcess.start(world.home, world.anna, passphrase=None, env_extra=env)
    try:
        launch = get(app, urlsplit(app.launch_url).path)
        assert launch.status == 303 and launch.headers["Location"] == "/inbox"
        cookie = launch.headers["Set-Cookie"].split(";", 1)[0]
        assert get(app, "/inbox", cookie).status == 200

        ok(kok("lock", home=world.home, profile=world.anna, env=kok_env(None, **env)))
        assert wait_for(lambda: get(app, "/inbox", cookie).status == 303, timeout=15)
        assert get(app, "/inbox", cookie).headers["Location"] == "/unlock"
        unlock = get(app, "/unlock", cookie)
        assert unlock.status == 200
        html = unlock.body.decode("utf-8")  # type: ignore[attr-defined]
        assert 'name="passphrase"' in html and "kok unlock ended" in html
    finally:
        assert app.stop() == ""


def test_a_new_passphrase_set_with_the_agents_keys_ends_the_agent_and_stays_unlocked(
        world: World, runtime: Path, shared_relay: Any) -> None:
    async def enrol() -> str:
        admin = await Client.open(world.home, world.nord, PASSPHRASE)
        carl = await new_staff(shared_relay, world.home, admin, "carl")
        await close_all(admin, carl)
        return f"{world.nord}.carl"

    carl = run_async(enrol())
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    ok(kok("unlock", "--for", "10m", home=world.home, profile=carl,
           env=kok_env(TEST_PASSPHRASE, **env)))
    app = AppProcess.start(world.home, carl, passphrase=None, env_extra=env)
    try:
        launch = get(app, urlsplit(app.launch_url).path)
        assert launch.headers["Location"] == "/inbox"  # the agent's keys
        cookie = launch.headers["Set-Cookie"].split(";", 1)[0]
        settings = get(app, "/settings", cookie).body.decode("utf-8")  # type: ignore[attr-defined]
        new = "Wattenmeer Kompass Lindenblatt"
        changed = call(app, "POST", "/settings/passphrase", headers={"Cookie": cookie},
                       body=urlencode({"csrf": csrf_of(settings), "current": TEST_PASSPHRASE,
                                       "new": new, "again": new}))
        assert changed.status == 303 and changed.headers["Location"] == "/settings"
        # the agent held the old passphrase, which no longer opens the file: it was ended
        locked = json.loads(ok(kok("--json", "lock", home=world.home, profile=carl,
                                   env=kok_env(None, **env))).out)
        assert locked["was_unlocked"] is False
        time.sleep(3)  # the app checks its agent every 2 s: its keys are its own now
        assert get(app, "/inbox", cookie).status == 200
        assert load_profile(world.home, carl).open_keystore(new).secrets
        with pytest.raises(ProfileError):
            load_profile(world.home, carl).open_keystore(TEST_PASSPHRASE)
    finally:
        assert app.stop() == ""
