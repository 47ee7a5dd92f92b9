"""Browser tests of the staff app: one Chromium per session, one relay, real app processes.

Debian's Chromium (/usr/bin/chromium) is driven by Playwright; ``playwright install`` is
never needed. Without Chromium (or Playwright) these tests skip with the reason, except
under ``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.app.appproc import AppProcess
from tests.integration.people import PASSPHRASE, close_all, new_org, new_staff, open_office, unique

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SHOTS = Path(os.environ.get("KOK_APP_SCREENSHOTS",
                            Path(__file__).resolve().parents[2] / "var" / "app-screenshots"))


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on its own loop in a worker thread: Playwright's sync API keeps an
    event loop running in the test thread, where ``asyncio.run`` is not allowed."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _need_browser() -> None:
    missing = None
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed (pip install -e '.[dev]')"
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests need Chromium under CI: {missing}")
        pytest.skip(f"browser tests skipped: {missing}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module: Playwright's sync API keeps an event loop running in
    this thread while it lives, which asyncio tests of later modules could not share."""
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class World:
    """Two organisations on one relay: nord (admin + anna) and sued (admin + ben)."""

    home: Path
    nord: str
    sued: str

    @property
    def anna(self) -> str:
        return f"{self.nord}.anna"

    @property
    def ben(self) -> str:
        return f"{self.sued}.ben"


@pytest.fixture(scope="session")
def world(shared_relay: Any, tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("app-home")

    async def build() -> World:
        office = await open_office(shared_relay)
        nord = await new_org(shared_relay, home, office, unique("nord"))
        sued = await new_org(shared_relay, home, office, unique("sued"))
        anna = await new_staff(shared_relay, home, nord, "anna")
        ben = await new_staff(shared_relay, home, sued, "ben")
        made = World(home=home, nord=str(nord.org_id), sued=str(sued.org_id))
        await close_all(office, nord, sued, anna, ben)
        return made

    return run_async(build())


@pytest.fixture(scope="session")
def ben_app(world: World) -> Iterator[AppProcess]:
    """Ben's app, unlocked at start (started with KOK_PASSPHRASE)."""
    app = AppProcess.start(world.home, world.ben, passphrase=PASSPHRASE)
    yield app
    app.stop()


@pytest.fixture(scope="session")
def anna_app(world: World) -> Iterator[AppProcess]:
    """Anna's app, started locked: the page asks for the passphrase."""
    app = AppProcess.start(world.home, world.anna, passphrase=None)
    yield app
    app.stop()


@pytest.fixture(scope="session")
def admin_app(world: World) -> Iterator[AppProcess]:
    """The nord org admin's app, unlocked at start."""
    app = AppProcess.start(world.home, world.nord, passphrase=PASSPHRASE)
    yield app
    app.stop()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nstaff app screenshots: {SHOTS}")
    return SHOTS
