"""``kok app`` and the unlock agent: a running ``kok unlock`` spares the passphrase, and
``kok lock`` locks the app that took its keys from it (real relay, real agent, HTTP only)."""

from __future__ import annotations

import http.client
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.app.appproc import AppProcess, wait_for
from tests.app.conftest import World
from tests.integration.kokcli import TEST_PASSPHRASE, kok, kok_env, ok


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
