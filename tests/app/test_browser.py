"""The staff app in a real browser: two staff in two orgs exchange a message with an
attachment through the pages alone, reply, watch delivery change; keyboard-only sending;
a hostile subject shown inert; axe-core finds nothing on any page in either language.

The tests of this module build on each other (one relay, one browser, one session per
app, since a launch link works once), so they run in file order. Screenshots of every
page (en, de; desktop and 320 px) and accessibility trees go to ``var/app-screenshots``
(or $KOK_APP_SCREENSHOTS); they are not committed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client import Client
from tests.app.appproc import AppProcess
from tests.app.conftest import World, run_async
from tests.integration.people import PASSPHRASE, anchor_of

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
ATTACHMENT = b"Aufenthaltstitel, Seite 1\n" * 4000
SCRIPT_SUBJECT = "<script>window.pwned=1</script> Rechnung \u202eexe.pdf"


class Session:
    """One browser context holding one app's session cookie."""

    def __init__(self, browser: Any, app: AppProcess) -> None:
        self.app = app
        self.context = browser.new_context(base_url=app.origin, accept_downloads=True,
                                           viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # A form with mistakes is answered 400 on purpose; anything else logged is a fault.
        self.page.on("console", lambda m: self.errors.append(m.text)
                     if m.type == "error" and "status of 400" not in m.text else None)
        self.page.goto(app.launch_url)

    def language(self, lang: str) -> None:
        self.context.add_cookies([{"name": "kok_app_lang", "value": lang,
                                   "url": self.app.origin}])

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def anna(browser: Any, anna_app: AppProcess) -> Iterator[Session]:
    session = Session(browser, anna_app)
    yield session
    session.close()


@pytest.fixture(scope="module")
def ben(browser: Any, ben_app: AppProcess) -> Iterator[Session]:
    session = Session(browser, ben_app)
    yield session
    session.close()


@pytest.fixture(scope="module")
def admin(browser: Any, admin_app: AppProcess) -> Iterator[Session]:
    session = Session(browser, admin_app)
    yield session
    session.close()


def org_name(org_id: str) -> str:
    return f"Beratungsstelle {org_id}"


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1/2.2 A and AA rules on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text("utf-8") + "\n;0")
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary)})))",
        WCAG_TAGS)
    return list(result)


def check_page(session: Session, shots: Path, name: str, *, tree: bool = False) -> None:
    """axe, one h1, a skip link, lang, reflow at 320 px; screenshots; the a11y tree."""
    page = session.page
    lang = page.evaluate("() => document.documentElement.lang")
    violations = axe_violations(page)
    assert violations == [], f"{lang} {name}: {json.dumps(violations, indent=1)}"
    assert page.locator("h1").count() == 1, name
    assert page.locator("main").count() == 1
    assert page.get_by_role("link", name="Skip to main content" if lang == "en"
                            else "Zum Hauptinhalt springen").count() == 1
    page.screenshot(path=str(shots / f"{lang}-{name}.png"), full_page=True)
    if tree:
        (shots / f"{lang}-{name}.aria.yaml").write_text(page.locator("body").aria_snapshot())
    page.set_viewport_size({"width": 320, "height": 700})
    try:
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 320, f"{lang} {name}: scrolls sideways at 320 px ({width} px)"
        page.screenshot(path=str(shots / f"{lang}-{name}-320.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})


def wait_text(page: Any, text: str, timeout: float = 20_000) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout)


def focus_on_notice(page: Any) -> None:
    """After an action, focus moved to the notice that says what happened."""
    page.wait_for_function("() => document.activeElement.id === 'notice'", timeout=5_000)


# --- unlocking -----------------------------------------------------------------------


def test_unlock_page_asks_once_with_labelled_field_and_linked_errors(anna: Session,
                                                                     shots: Path) -> None:
    page = anna.page
    assert page.url.endswith("/unlock")
    for lang in ("de", "en"):
        anna.language(lang)
        page.reload()
        assert page.evaluate("() => document.documentElement.lang") == lang
        check_page(anna, shots, "unlock", tree=True)
    field = page.get_by_label("Passphrase", exact=True)
    assert field.get_attribute("type") == "password"
    page.get_by_role("button", name="Unlock").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.evaluate("() => document.activeElement.id") == "error-summary"
    link = summary.get_by_role("link", name="Enter your passphrase.")
    assert link.get_attribute("href") == "#passphrase"
    assert field.get_attribute("aria-invalid") == "true"
    check_page(anna, shots, "unlock-error")
    field.fill("not the passphrase")
    page.get_by_role("button", name="Unlock").click()
    wait_text(page, "The passphrase is not correct.")
    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    page.wait_for_url("**/inbox")
    focus_on_notice(page)


# --- the exchange ----------------------------------------------------------------------


def test_two_orgs_exchange_a_message_with_an_attachment_through_the_pages(
        anna: Session, ben: Session, world: World, tmp_path: Path, shots: Path) -> None:
    ben.page.goto("/inbox")
    paper = tmp_path / "brief.txt"
    paper.write_bytes(ATTACHMENT)

    page = anna.page
    page.goto("/compose")
    to = page.get_by_role("group", name="To")
    to.get_by_label(org_name(world.sued)).check()
    page.get_by_label("Subject", exact=True).fill("Fall 17: Termin Ausländerbehörde")
    page.get_by_label("Message", exact=True).fill("Wer kennt sich aus?\nZweite Zeile.")
    page.get_by_label("Attach files").set_input_files(str(paper))
    page.get_by_label("Keeping time").select_option("3")
    page.get_by_role("button", name="Send").click()
    wait_text(page, "was sent")
    assert page.get_by_text("on its way").count() >= 1
    # Ben's app may have fetched it already (it listens): 0 or 1 of the 2 in his org
    assert page.get_by_text(re.compile(r"delivered to [01] of 2, read by 0")).count() == 1

    # Ben's open inbox hears of it without a reload, in a polite live region
    ben.page.wait_for_function(
        "() => document.getElementById('live').textContent === '1 new message'",
        timeout=30_000)
    assert ben.page.locator("#live").get_attribute("aria-live") == "polite"
    assert ben.page.title().startswith("(1) ")
    ben.page.goto("/inbox")
    ben.page.get_by_role("link", name="Fall 17: Termin Ausländerbehörde").click()
    assert ben.page.get_by_role("heading", level=1).inner_text() == \
        "Fall 17: Termin Ausländerbehörde"
    wait_text(ben.page, "Zweite Zeile.")
    save = ben.page.get_by_role("link", name="Save brief.txt")
    head = ben.page.request.get(save.get_attribute("href") or "")
    assert head.status == 200
    assert head.headers["content-disposition"].startswith("attachment;")
    assert head.headers["content-type"] == "application/octet-stream"
    assert head.body() == ATTACHMENT
    with ben.page.expect_download() as download:
        save.click()
    assert download.value.suggested_filename == "brief.txt"
    assert Path(download.value.path()).read_bytes() == ATTACHMENT

    # Ben replies; the reply form names Anna's organisation and the subject already
    ben.page.get_by_role("link", name="Reply").click()
    assert ben.page.get_by_label(org_name(world.nord)).is_checked()
    assert ben.page.get_by_label("Subject", exact=True).input_value() == \
        "Re: Fall 17: Termin Ausländerbehörde"
    ben.page.get_by_label("Message", exact=True).fill("Ja, ich. Rufen Sie mich an.")
    ben.page.get_by_role("button", name="Send").click()
    wait_text(ben.page, "was sent")

    # Anna sees the delivery state change and the reply in the conversation
    page.goto("/sent")
    assert "delivered to 1 of 2" in page.locator(".app-message").first.inner_text()
    for _ in range(60):
        page.goto("/inbox")
        if page.get_by_role("link", name="Re: Fall 17: Termin Ausländerbehörde").count():
            break
        page.wait_for_timeout(500)
    page.get_by_role("link", name="Re: Fall 17: Termin Ausländerbehörde").click()
    wait_text(page, "Ja, ich. Rufen Sie mich an.")
    conversation = page.locator(".app-thread")
    assert conversation.get_by_text("You wrote").count() == 1
    assert anna.errors == [] and ben.errors == []


def test_opening_the_message_page_reports_it_read_with_the_next_sync(
        anna: Session, ben: Session, world: World) -> None:
    # a second message Ben's app fetches (it listens) but he never opens
    page = anna.page
    page.goto("/compose")
    page.get_by_label(org_name(world.sued)).check()
    page.get_by_label("Subject", exact=True).fill("Nur abgeholt")
    page.get_by_label("Message", exact=True).fill("Nicht geöffnet.")
    page.get_by_role("button", name="Send").click()
    wait_text(page, "was sent")
    for _ in range(60):
        ben.page.goto("/inbox")
        if ben.page.get_by_text("Nur abgeholt").count():
            break
        ben.page.wait_for_timeout(500)
    # Ben opened "Fall 17" on its message page; the report goes with his app's next contact
    # with the relay (the next message its listener acknowledges, or this sync)
    ben.page.get_by_role("button", name="Check for new messages").click()
    wait_text(ben.page, "fetched")

    def delivery(subject: str) -> str:
        page.goto("/sent")
        return page.locator(".app-message").filter(has_text=subject).first \
            .locator(".app-delivery").inner_text()

    assert delivery("Fall 17: Termin Ausländerbehörde") == "delivered to 1 of 2, read by 1"
    assert delivery("Nur abgeholt") == "delivered to 1 of 2, read by 0"
    anna.language("de")
    assert delivery("Fall 17: Termin Ausländerbehörde") == "zugestellt an 1 von 2, von 1 gelesen"
    anna.language("en")
    assert anna.errors == [] and ben.errors == []


def test_a_message_can_be_kept_on_the_device_and_exported(ben: Session) -> None:
    page = ben.page
    page.goto("/inbox")
    page.get_by_role("link", name="Fall 17: Termin Ausländerbehörde").click()
    assert "deleted on" in page.locator("#retention").inner_text()
    page.get_by_role("button", name="Keep on this device").click()
    wait_text(page, "stays on this device")
    assert "kept" in page.locator("#retention").inner_text()
    export = page.get_by_role("link", name="Export as text file")
    with page.expect_download() as download:
        export.click()
    assert re.fullmatch(r"message-[0-9a-f]{8}\.txt", download.value.suggested_filename)
    text = Path(download.value.path()).read_text("utf-8")
    assert "Subject: Fall 17: Termin Ausländerbehörde" in text
    assert text.endswith("Wer kennt sich aus?\nZweite Zeile.\n")
    page.get_by_role("button", name="Do not keep any more").click()
    wait_text(page, "no longer kept")
    assert "deleted on" in page.locator("#retention").inner_text()
    assert ben.errors == []


def test_a_pending_message_can_be_retracted(anna: Session, world: World) -> None:
    page = anna.page
    page.goto("/compose")
    page.get_by_label(org_name(world.sued)).check()
    page.get_by_label("Subject", exact=True).fill("Versehentlich gesendet")
    page.get_by_label("Message", exact=True).fill("Bitte ignorieren.")
    page.get_by_role("button", name="Send").click()
    wait_text(page, "was sent")
    page.get_by_role("button", name=re.compile(r"^Retract\W+Versehentlich gesendet$")).click()
    page.locator("#notice").wait_for()
    wait_text(page, "was retracted")
    focus_on_notice(page)
    assert page.locator(".app-message").filter(has_text="Versehentlich gesendet") \
        .get_by_text("retracted").count() == 1


def test_a_fetched_message_retracted_by_its_sender_shows_withdrawn(
        anna: Session, ben: Session, world: World, shots: Path) -> None:
    page = anna.page
    page.goto("/compose")
    page.get_by_label(org_name(world.sued)).check()
    page.get_by_label("Subject", exact=True).fill("Falsche Stelle")
    page.get_by_label("Message", exact=True).fill("Frau K., Lindenstraße 4")
    page.get_by_role("button", name="Send").click()
    wait_text(page, "was sent")
    for _ in range(60):  # ben's app listens and fetches it
        ben.page.goto("/inbox")
        if ben.page.get_by_role("link", name="Falsche Stelle").count():
            break
        ben.page.wait_for_timeout(500)
    ben.page.get_by_role("link", name="Falsche Stelle").click()
    wait_text(ben.page, "Frau K., Lindenstraße 4")

    page.goto("/sent")
    page.get_by_role("button", name=re.compile(r"^Retract\W+Falsche Stelle$")).click()
    wait_text(page, "was retracted")
    item = ben.page.locator(".app-message").filter(has_text="Falsche Stelle")
    for _ in range(60):  # the notice reaches ben's listening app
        ben.page.goto("/inbox")
        if item.get_by_text("Withdrawn", exact=True).count():
            break
        ben.page.wait_for_timeout(500)
    assert item.get_by_text("Withdrawn by").count() == 1
    ben.page.get_by_role("link", name="Falsche Stelle").click()
    alert = ben.page.locator("#withdrawn")
    assert "Its text and attachments were removed from this device." in alert.inner_text()
    assert ben.page.get_by_text("Frau K., Lindenstraße 4").count() == 0
    check_page(ben, shots, "message-withdrawn")
    assert anna.errors == [] and ben.errors == []


def test_compose_errors_are_summarised_and_linked_to_their_fields(ben: Session) -> None:
    page = ben.page
    page.goto("/compose")
    page.get_by_role("button", name="Send").click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert page.evaluate("() => document.activeElement.id") == "error-summary"
    hrefs = [a.get_attribute("href") for a in summary.get_by_role("link").all()]
    assert hrefs == ["#to", "#subject", "#body"]
    assert page.get_by_label("Subject", exact=True).get_attribute("aria-invalid") == "true"


def test_keyboard_alone_writes_and_sends_a_message(ben: Session, world: World) -> None:
    page = ben.page
    page.goto("/inbox")
    keyboard = page.keyboard

    def tab_to(js_condition: str) -> None:
        # One round of Tab visits every stop of the page once: as many presses as the page
        # has stops (and a few for the browser's own) reach any of them. A fixed count would
        # depend on how many organisations the session's relay holds by now: the To list
        # names every one, and the Subject field comes after it.
        stops = page.evaluate(
            "() => document.querySelectorAll('a[href], button, input, select, textarea,"
            " [tabindex]').length")
        for _ in range(stops + 3):
            keyboard.press("Tab")
            script = f"() => {{ const e = document.activeElement; return {js_condition}; }}"
            if page.evaluate(script):
                return
        raise AssertionError(f"Tab never reached: {js_condition}")

    keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == \
        "Skip to main content"
    tab_to("e.getAttribute('href') === '/compose' && e.closest('nav') !== null")
    keyboard.press("Enter")
    page.wait_for_url("**/compose")
    tab_to(f"e.id === 'to-{world.nord}'")
    keyboard.press("Space")
    tab_to("e.id === 'subject'")
    keyboard.type("Per Tastatur geschrieben")
    keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "body"
    keyboard.type("Ganz ohne Maus.")
    tab_to("e.id === 'send'")
    focus_ring = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert focus_ring != "none"  # focus is visible
    keyboard.press("Enter")
    page.wait_for_url("**/sent")
    wait_text(page, "Per Tastatur geschrieben")
    focus_on_notice(page)


def test_a_hostile_subject_is_shown_inert(anna: Session, ben: Session, world: World) -> None:
    page = anna.page
    page.goto("/compose")
    page.get_by_label(org_name(world.sued)).check()
    page.get_by_label("Subject", exact=True).fill(SCRIPT_SUBJECT)
    page.get_by_label("Message", exact=True).fill("<img src=x onerror=window.pwned=2>")
    page.get_by_role("button", name="Send").click()
    wait_text(page, "was sent")
    for _ in range(60):
        ben.page.goto("/inbox")
        if ben.page.get_by_text("Rechnung").count():
            break
        ben.page.wait_for_timeout(500)
    link = ben.page.get_by_role("link", name="Rechnung")
    shown = link.inner_text()
    assert "<script>window.pwned=1</script>" in shown  # as text
    assert "\\u202e" in shown and "\u202e" not in shown  # the override is visible, inert
    link.click()
    wait_text(ben.page, "<img src=x onerror=window.pwned=2>")
    assert ben.page.evaluate("() => window.pwned === undefined")
    assert ben.page.locator("script").count() == 1  # only the app's own file
    assert ben.page.locator("img").count() == 0
    assert "\u202e" not in ben.page.title() + ben.page.content()


# --- every page: axe, screenshots, the accessibility tree --------------------------------


def staff_pages(world: World) -> list[tuple[str, str, bool]]:
    return [("inbox", "/inbox", True), ("compose", "/compose", True), ("sent", "/sent", True),
            ("search", "/search", False), ("search-results", "/search?q=Fall", True),
            ("directory", "/directory", True), ("org", f"/directory/{world.nord}", True),
            ("settings", "/settings", True)]


@pytest.mark.parametrize("lang", ["en", "de"])
def test_every_staff_page_passes_axe_in_both_languages(ben: Session, world: World,
                                                       shots: Path, lang: str) -> None:
    ben.language(lang)
    page = ben.page
    for name, path, tree in staff_pages(world):
        page.goto(path)
        assert page.evaluate("() => document.documentElement.lang") == lang
        check_page(ben, shots, name, tree=tree)
    page.goto("/inbox")
    page.locator(".app-message a").first.click()
    check_page(ben, shots, "message", tree=True)
    page.goto("/sent")
    page.locator(".app-message a").first.click()
    check_page(ben, shots, "thread")
    page.goto("/compose")
    page.get_by_role("button", name="Send" if lang == "en" else "Senden").click()
    check_page(ben, shots, "compose-errors", tree=True)
    page.goto("/search?q=")
    check_page(ben, shots, "search-error")
    ben.language("en")
    assert ben.errors == []


def test_german_labels_are_the_agreed_words(ben: Session) -> None:
    ben.language("de")
    page = ben.page
    page.goto("/compose")
    assert page.get_by_role("group", name="An").count() == 1
    for label in ("Betreff", "Nachricht", "Dateien anhängen"):
        assert page.get_by_label(label, exact=True).count() == 1, label
    assert page.get_by_role("button", name="Senden").count() == 1
    # switching back from any page keeps the person on it
    page.get_by_role("button", name="English").click()
    page.wait_for_url("**/compose")
    assert page.get_by_role("button", name="Send").count() == 1
    assert page.evaluate("() => document.documentElement.lang") == "en"


def make_request(world: World, relay: Any, name: str) -> bytes:
    async def made() -> bytes:
        _, request = await Client.new_staff(world.home, f"{world.nord}.{name}", PASSPHRASE,
                                            org_id=world.nord, name=name.title(),
                                            relay=relay.url, network=anchor_of(relay))
        return bytes(request)

    return run_async(made())


@pytest.mark.parametrize("lang", ["en", "de"])
def test_admin_pages_enrol_and_remove_a_colleague(admin: Session, world: World,
                                                  shared_relay: Any, tmp_path: Path,
                                                  shots: Path, lang: str) -> None:
    admin.language(lang)
    page = admin.page
    name = f"carla{lang}"
    request = tmp_path / f"{name}.request"
    request.write_bytes(make_request(world, shared_relay, name))
    page.goto("/admin")
    check_page(admin, shots, "admin", tree=True)
    page.locator("#request").set_input_files(str(request))
    page.locator("form[action='/admin/enrol'] button").click()
    page.wait_for_url("**/admin/enrol")
    fingerprint = page.locator(".app-safety-code").inner_text()
    assert len(fingerprint.split()) == 8
    check_page(admin, shots, "admin-enrol", tree=True)
    page.locator("form[action='/admin/enrol/confirm'] button").click()  # not confirmed
    page.locator("#error-summary").wait_for()
    assert page.locator("#error-summary a").get_attribute("href") == "#compared"
    check_page(admin, shots, "admin-enrol-error")
    page.locator("#compared").check()
    page.locator("form[action='/admin/enrol/confirm'] button").click()
    page.wait_for_url("**/admin")
    assert f"{world.nord}/{name}" in page.locator("#notice").inner_text()
    page.goto(f"/admin/remove/{name}")
    check_page(admin, shots, "admin-remove", tree=True)
    page.locator(f"form[action='/admin/remove/{name}'] button").click()
    page.wait_for_url("**/admin")
    assert f"{world.nord}/{name}" in page.locator("#notice").inner_text()
    assert page.locator(f"a[href='/admin/remove/{name}']").count() == 0
    admin.language("en")
    assert admin.errors == []


def test_the_idle_lock_warns_first_and_can_be_extended(browser: Any, world: World,
                                                      shots: Path) -> None:
    # A one-minute lock warns halfway; the page's clock is moved on, the app's is real.
    app = AppProcess.start(world.home, world.anna, passphrase=PASSPHRASE,
                           extra=("--idle-lock", "1"))
    session = Session(browser, app)
    try:
        page = session.page
        page.clock.install()
        page.goto("/compose")
        page.get_by_label("Subject", exact=True).fill("halb geschrieben")
        warning = page.get_by_role("alertdialog", name="The app is about to lock")
        assert warning.is_hidden()
        page.clock.fast_forward(31_000)
        warning.wait_for(timeout=10_000)
        page.wait_for_function("() => document.activeElement.id === 'idle-warning'")
        check_page(session, shots, "idle-warning")
        warning.get_by_role("button", name="Stay unlocked").click()
        warning.wait_for(state="hidden")
        # focus goes back to where the person was, and nothing typed was lost
        assert page.evaluate("() => document.activeElement.id") == "subject"
        assert page.get_by_label("Subject", exact=True).input_value() == "halb geschrieben"
        assert session.errors == []
    finally:
        session.close()
        app.stop()


def test_settings_change_the_passphrase_and_lock(anna: Session) -> None:
    page = anna.page
    page.goto("/settings")
    page.get_by_label("Current passphrase").fill(PASSPHRASE)
    page.get_by_label("New passphrase", exact=True).fill("ein neuer langer Satz")
    page.get_by_label("New passphrase again").fill("ein anderer Satz")
    page.get_by_role("button", name="Change passphrase").click()
    assert page.locator("#error-summary a").get_attribute("href") == "#again"
    page.get_by_label("Current passphrase").fill(PASSPHRASE)
    for label in ("New passphrase", "New passphrase again"):
        page.get_by_label(label, exact=True).fill("passwort")
    page.get_by_role("button", name="Change passphrase").click()
    assert page.locator("#error-summary a").get_attribute("href") == "#new"
    wait_text(page, "This passphrase is too easy to guess: it is mostly a common word")
    new = "ein neuer langer Satz"
    try:
        page.get_by_label("Current passphrase").fill(PASSPHRASE)
        page.get_by_label("New passphrase", exact=True).fill(new)
        page.get_by_label("New passphrase again").fill(new)
        page.get_by_role("button", name="Change passphrase").click()
        wait_text(page, "The passphrase was changed.")
        page.get_by_role("button", name="Lock", exact=True).click()
        page.wait_for_url("**/unlock")
        page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
        page.get_by_role("button", name="Unlock").click()
        wait_text(page, "The passphrase is not correct.")
        page.get_by_label("Passphrase", exact=True).fill(new)
        page.get_by_role("button", name="Unlock").click()
        page.wait_for_url("**/inbox")
    finally:
        page.goto("/settings")
        page.get_by_label("Current passphrase").fill(new)
        page.get_by_label("New passphrase", exact=True).fill(PASSPHRASE)
        page.get_by_label("New passphrase again").fill(PASSPHRASE)
        page.get_by_role("button", name="Change passphrase").click()
        wait_text(page, "The passphrase was changed.")
