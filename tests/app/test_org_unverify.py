"""Taking back a verification in the app: the organisation page offers it only for an
organisation this profile verified, asks first with the consequences, and then the
organisation is "not verified yet" again (HTTP to a real ``kok app``, real relay)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from tests.app.appproc import AppProcess
from tests.app.conftest import World
from tests.app.test_security import call, csrf_of, login, page
from tests.integration.people import PASSPHRASE


@pytest.fixture
def app(world: World) -> Iterator[AppProcess]:
    started = AppProcess.start(world.home, world.ben, passphrase=PASSPHRASE)
    yield started
    started.stop()


def post(app: AppProcess, path: str, cookie: str, **fields: str) -> str:
    response = call(app, "POST", path, headers={"Cookie": cookie}, body=urlencode(fields))
    assert response.status == 303, (path, response.status)
    return response.headers["Location"]


def standing(text: str) -> str:
    match = re.search(r'Checked</dt><dd[^>]*>.*?class="kern-label">([^<]+)<', text, re.S)
    assert match, "no verification line on the organisation page"
    return html.unescape(match.group(1)).strip()


def test_a_verification_is_taken_back_after_a_warning(app: AppProcess, world: World) -> None:
    cookie = login(app)
    org = f"/directory/{world.nord}"
    shown = page(app, org, cookie)
    assert standing(shown) == "not verified yet" and f"{org}/unverify" not in shown
    assert call(app, "GET", f"{org}/unverify", headers={"Cookie": cookie}).status == 404
    code = re.search(r'id="safety-code">([^<]+)<', shown)
    assert code
    assert post(app, f"{org}/verify", cookie, csrf=csrf_of(shown), code=code.group(1)) == org
    shown = page(app, org, cookie)
    assert standing(shown) == "verified" and f'href="{org}/unverify"' in shown

    asked = page(app, f"{org}/unverify", cookie)
    assert "no longer warns you if the key" in asked and "without a compared" in asked
    assert post(app, f"{org}/unverify", cookie, csrf=csrf_of(asked)) == org
    shown = page(app, org, cookie)
    assert "The verification is taken back" in shown
    assert standing(shown) == "not verified yet" and f"{org}/unverify" not in shown
    # a second time there is nothing to take back: said, and nothing changes
    assert post(app, f"{org}/unverify", cookie, csrf=csrf_of(shown)) == org
    again = page(app, org, cookie)
    assert "nothing to take back" in again and standing(again) == "not verified yet"
