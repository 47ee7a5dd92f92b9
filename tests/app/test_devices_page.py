"""The Devices page in a real browser: link a second device with the one-time code (a real
second profile joins with ``Client.join_device``), see a wrong code fail, remove the device
through the confirmation page, and find that it can no longer sign in; axe-core on every
page in both languages, and the whole flow by keyboard alone.

One organisation of its own (so removing a device renews no key the other app tests use),
one app process, one browser; the tests build on each other and run in file order.
Screenshots go to /tmp/app-devices-*.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import KokError
from tests.app.appproc import AppProcess
from tests.app.conftest import run_async
from tests.app.test_browser import Session, axe_violations
from tests.integration.people import (
    PASSPHRASE,
    anchor_of,
    close_all,
    new_org,
    new_staff,
    open_office,
    unique,
)

SHOTS = Path("/tmp")
CODE = re.compile(r"^\d{4}-\d{4}-\d{4}$")


@dataclass
class Dora:
    """A staff member of a fresh organisation, and where her second device will live."""

    home: Path
    profile: str
    laptop: str


@pytest.fixture(scope="module")
def dora(shared_relay: Any, tmp_path_factory: pytest.TempPathFactory) -> Dora:
    home = tmp_path_factory.mktemp("devices-home")

    async def build() -> Dora:
        office = await open_office(shared_relay)
        org = await new_org(shared_relay, home, office, unique("west"))
        staff = await new_staff(shared_relay, home, org, "dora")
        made = Dora(home, f"{org.org_id}.dora", f"{org.org_id}.dora-laptop")
        await close_all(office, org, staff)
        return made

    return run_async(build())


@pytest.fixture(scope="module")
def app(dora: Dora) -> Iterator[AppProcess]:
    proc = AppProcess.start(dora.home, dora.profile, passphrase=PASSPHRASE)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def session(browser: Any, app: AppProcess) -> Iterator[Session]:
    s = Session(browser, app)
    yield s
    s.close()


def look(session: Session, name: str) -> None:
    """axe finds nothing; one h1; no sideways scrolling at 320 px; screenshots to look at."""
    page = session.page
    lang = page.evaluate("() => document.documentElement.lang")
    violations = axe_violations(page)
    assert violations == [], f"{lang} {name}: {violations}"
    assert page.locator("h1").count() == 1
    page.screenshot(path=str(SHOTS / f"app-devices-{lang}-{name}.png"), full_page=True)
    page.set_viewport_size({"width": 320, "height": 700})
    try:
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 320, f"{lang} {name}: scrolls sideways at 320 px ({width} px)"
        page.screenshot(path=str(SHOTS / f"app-devices-{lang}-{name}-320.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab until the element is focused, and check that its focus is visible."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            assert page.evaluate("() => document.activeElement.matches(':focus-visible')")
            return
    raise AssertionError(f"Tab never reached {selector}")


def shown_code(page: Any) -> str:
    code = page.locator("#link-code [aria-hidden=true]").inner_text().strip()
    assert CODE.match(code), code
    spelled = page.locator("#link-code .app-visually-hidden").inner_text()
    assert spelled == ", ".join(" ".join(g) for g in code.split("-"))
    return code


def join_later(dora: Dora, relay: Any, code: str, profile: str) -> Future[Any]:
    """The new device types the code, in the background (it waits for the app's side)."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(run_async, Client.join_device(
        dora.home, profile, PASSPHRASE, code, relay=relay.url, network=anchor_of(relay),
        poll=0.1))
    pool.shutdown(wait=False)
    return future


def status(page: Any) -> str:
    return str(page.locator("#link-status-text").inner_text())


def test_the_devices_page_shows_this_device_in_both_languages(session: Session) -> None:
    page = session.page
    for lang, nav, mark in (("de", "Geräte", "Dieses Gerät"), ("en", "Devices", "This device")):
        session.language(lang)
        page.goto("/inbox")
        page.get_by_role("link", name=nav, exact=True).click()
        page.wait_for_url("**/devices")
        assert page.locator("nav a[aria-current=page]").inner_text() == nav
        items = page.locator("ul.app-message-list").first.locator("li")
        assert items.count() == 1
        assert mark in items.first.inner_text()
        assert items.first.get_by_role("link").count() == 0  # this device has no "Remove"
        look(session, "list-one")


def test_a_form_without_its_token_is_refused(session: Session) -> None:
    answer = session.page.request.post(f"{session.app.origin}/devices/link")
    assert answer.status == 403
    assert session.page.request.get(f"{session.app.origin}/devices/link").url.endswith(
        "/devices")  # no link was started


def test_linking_by_keyboard_with_a_second_profile_joining(session: Session, dora: Dora,
                                                          shared_relay: Any) -> None:
    page = session.page
    session.language("en")
    page.goto("/devices")
    tab_to(page, "form[action='/devices/link'] button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/devices/link")
    code = shown_code(page)
    assert status(page) == "Waiting for the new device …"
    assert page.locator("#link-status-text").get_attribute("aria-live") == "polite"
    command = page.locator(".app-command").inner_text()
    assert f"device join {code} --relay {shared_relay.url} --network kok-network.json" in command
    network = page.request.get(f"{session.app.origin}/devices/network.json").json()
    assert network == shared_relay.network_anchor
    look(session, "link-waiting")
    session.language("de")
    page.reload()
    look(session, "link-waiting")
    session.language("en")
    page.reload()
    joined = join_later(dora, shared_relay, code, dora.laptop)
    profile = joined.result(timeout=60)
    assert profile.info.staff_id == f"{dora.profile.split('.')[0]}/dora"
    page.wait_for_function("() => document.getElementById('link-status')"
                           ".getAttribute('data-state') === 'linked'", timeout=20_000)
    assert status(page).startswith("Linked: device ")
    assert not page.locator("#link-code").is_visible()
    assert page.evaluate("() => document.activeElement.id") == "link-status"
    look(session, "link-linked")
    tab_to(page, "#link-done a")
    page.keyboard.press("Enter")
    page.wait_for_url("**/devices")
    items = page.locator("ul.app-message-list").first.locator("li")
    assert items.count() == 2
    assert items.nth(1).get_by_role("link", name=re.compile("^Remove device")).count() == 1
    look(session, "list-two")


def test_a_wrong_code_shows_the_failure_without_script_too(session: Session, dora: Dora,
                                                           shared_relay: Any) -> None:
    page = session.page
    page.goto("/devices")
    page.locator("form[action='/devices/link'] button").click()
    page.wait_for_url("**/devices/link")
    code = shown_code(page)
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    joined = join_later(dora, shared_relay, wrong, f"{dora.profile}-wrong")
    with pytest.raises(KokError):
        joined.result(timeout=60)
    assert not (dora.home / f"{dora.profile}-wrong").exists()
    page.wait_for_function("() => document.getElementById('link-status')"
                           ".getAttribute('data-state') === 'failed'", timeout=20_000)
    assert status(page).startswith("Not linked. The two devices did not use the same code")
    # what a browser without script gets: "check again" reloads the page with the outcome
    page.goto("/devices/link")
    assert page.locator("#link-status").get_attribute("data-state") == "failed"
    assert status(page).startswith("Not linked.")
    assert page.evaluate("() => document.activeElement.id") == "link-status"
    assert not page.locator("#link-code").is_visible()  # a spent code is not shown again
    assert not page.locator("#link-check").is_visible()
    look(session, "link-failed")
    page.goto("/devices")
    assert page.locator("ul.app-message-list").first.locator("li").count() == 2


def test_cancel_ends_the_wait_and_the_code(session: Session, dora: Dora,
                                           shared_relay: Any) -> None:
    page = session.page
    page.goto("/devices")
    page.locator("form[action='/devices/link'] button").click()
    page.wait_for_url("**/devices/link")
    code = shown_code(page)
    page.locator("form[action='/devices/link/cancel'] button").click()
    page.wait_for_url("**/devices")
    assert "cancelled" in page.locator("#notice").inner_text()
    with pytest.raises(KokError) as refused:
        join_later(dora, shared_relay, code, f"{dora.profile}-late").result(timeout=60)
    assert refused.value.code == "link_unknown"


@pytest.mark.parametrize("lang", ["de", "en"])
def test_removing_a_device_asks_first_and_signs_it_out(session: Session, dora: Dora,
                                                       lang: str) -> None:
    page = session.page
    session.language(lang)
    page.goto("/devices")
    remove = page.locator("a[href^='/devices/remove/']")
    if lang == "de":  # look at the confirmation, then go back without removing
        remove.first.click()
        page.wait_for_url("**/devices/remove/*")
        assert "Organisation" in page.locator("main .kern-alert--warning").inner_text()
        look(session, "remove-confirm")
        page.get_by_role("link", name="Abbrechen").click()
        page.wait_for_url("**/devices")
        assert page.locator("a[href^='/devices/remove/']").count() == 1
        return
    tab_to(page, "a[href^='/devices/remove/']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/devices/remove/*")
    warning = page.locator("main .kern-alert--warning").inner_text()
    assert "signed out at once" in warning and "organisation's key is renewed" in warning
    look(session, "remove-confirm")
    tab_to(page, "form[action^='/devices/remove/'] button")
    page.keyboard.press("Enter")
    page.wait_for_url("**/devices")
    page.wait_for_function("() => document.activeElement.id === 'notice'", timeout=5_000)
    assert "was removed" in page.locator("#notice").inner_text()
    assert page.locator("ul.app-message-list").first.locator("li").count() == 1
    assert page.locator("a[href^='/devices/remove/']").count() == 0
    look(session, "list-removed")

    async def laptop_signs_in() -> None:
        laptop = await Client.open(dora.home, dora.laptop, PASSPHRASE)
        try:
            await laptop.sync()
        finally:
            await laptop.close()

    with pytest.raises(KokError):
        run_async(laptop_signs_in())
    assert session.errors == []


def test_removing_this_device_or_a_made_up_one_is_refused(session: Session) -> None:
    page = session.page
    page.goto("/devices")
    mine = page.locator("ul.app-message-list li strong.app-code").first.inner_text()
    mine = mine.replace(" ", "")
    assert page.request.get(f"{session.app.origin}/devices/remove/{mine}").status == 404
    assert page.request.get(f"{session.app.origin}/devices/remove/NOTADEVICE").status == 404
    assert page.request.get(
        f"{session.app.origin}/devices/remove/{'A' * 32}").status == 404


def test_a_computer_without_the_profile_joins_from_the_app(browser: Any, session: Session,
                                                           dora: Dora, shared_relay: Any,
                                                           tmp_path: Path) -> None:
    network = tmp_path / "kok-network.json"
    network.write_text(json.dumps(shared_relay.network_anchor))
    tablet = AppProcess.start(dora.home, f"{dora.profile}-tablet", passphrase=None)
    try:
        other = Session(browser, tablet)
    except BaseException:
        tablet.stop()  # never leave the app process behind
        raise
    try:
        page = other.page
        assert page.url.endswith("/join")
        assert other.page.request.get(f"{tablet.origin}/inbox").url.endswith("/join")
        for lang in ("de", "en"):
            other.language(lang)
            page.reload()
            look(other, "join")
        # an empty form: the error summary names every field, links to it, takes focus
        page.locator("form[action='/join'] button").click()
        page.locator("#error-summary").wait_for()
        assert page.evaluate("() => document.activeElement.id") == "error-summary"
        links = page.locator("#error-summary a")
        assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
            "#code", "#relay", "#network", "#new"]
        look(other, "join-errors")

        session.language("en")
        session.page.goto("/devices")
        session.page.locator("form[action='/devices/link'] button").click()
        session.page.wait_for_url("**/devices/link")
        code = shown_code(session.page)

        def fill(passphrase: str) -> None:
            page.locator("#code").fill(code)
            page.locator("#relay").fill(shared_relay.url)
            page.locator("#network").set_input_files(str(network))
            page.locator("#new").fill(passphrase)
            page.locator("#again").fill(passphrase)
            page.locator("form[action='/join'] button").click()

        fill("passwort1")  # too weak: refused before the code is used
        page.locator("#error-summary").wait_for()
        assert page.locator("#error-summary a").get_attribute("href") == "#new"
        assert page.locator("#code").input_value() == code  # kept; the passphrase is not
        assert page.locator("#new").input_value() == ""
        fill("Laterne Wolkenbruch Kaffeetasse 1987")
        page.wait_for_url("**/inbox", timeout=60_000)
        assert "now one of your devices" in page.locator("#notice").inner_text()
        session.page.wait_for_function("() => document.getElementById('link-status')"
                                       ".getAttribute('data-state') === 'linked'",
                                       timeout=20_000)
        session.page.goto("/devices")
        assert session.page.locator("ul.app-message-list").first.locator("li").count() == 2
        assert other.errors == []
    finally:
        other.close()
        tablet.stop()
