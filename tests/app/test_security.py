"""Attacks on the local web server refused: foreign Host, no or wrong CSRF token, a reused
launch link, cross-origin requests; and the headers every answer carries.

These speak HTTP directly (no browser), to a real ``kok app`` process.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest

from tests.app.appproc import AppProcess
from tests.app.conftest import World
from tests.integration.people import PASSPHRASE


def call(app: AppProcess, method: str, path: str, *, headers: dict[str, str] | None = None,
         body: str | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    sent = {"Host": f"127.0.0.1:{app.port}"}
    if body is not None:
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    sent.update(headers or {})
    conn.request(method, path, body=body, headers=sent)
    response = conn.getresponse()
    response.read()
    return response


def page(app: AppProcess, path: str, cookie: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=30)
    conn.request("GET", path, headers={"Host": f"127.0.0.1:{app.port}", "Cookie": cookie})
    response = conn.getresponse()
    assert response.status == 200, (path, response.status)
    return response.read().decode("utf-8")


@pytest.fixture
def app(world: World) -> Iterator[AppProcess]:
    started = AppProcess.start(world.home, world.anna, passphrase=PASSPHRASE)
    yield started
    assert started.stop() == ""  # exactly one line of output, the URL


def login(app: AppProcess) -> str:
    response = call(app, "GET", urlsplit(app.launch_url).path)
    assert response.status == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return cookie.split(";", 1)[0]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_the_launch_link_works_once_and_becomes_an_httponly_strict_cookie(app: AppProcess
                                                                         ) -> None:
    cookie = login(app)
    again = call(app, "GET", urlsplit(app.launch_url).path)
    assert again.status == 403 and "Set-Cookie" not in again.headers
    wrong = call(app, "GET", "/launch/" + "A" * 43)
    assert wrong.status == 403
    assert call(app, "GET", "/inbox").status == 403  # no cookie: nothing
    assert call(app, "GET", "/inbox", headers={"Cookie": "kok_app_session=guess"}).status == 403
    assert "<h1" in page(app, "/inbox", cookie)


def test_a_foreign_host_is_refused_dns_rebinding(app: AppProcess) -> None:
    # the launch link under a foreign name is refused, and stays unused
    response = call(app, "GET", urlsplit(app.launch_url).path,
                    headers={"Host": f"rebind.example:{app.port}"})
    assert response.status == 421 and "Set-Cookie" not in response.headers
    cookie = login(app)
    for host in (f"evil.example:{app.port}", f"localhost:{app.port}", "127.0.0.1",
                 f"127.0.0.1:{app.port + 1}"):
        response = call(app, "GET", "/inbox", headers={"Host": host, "Cookie": cookie})
        assert response.status == 421, host


def test_state_changing_requests_need_the_csrf_token_and_our_origin(app: AppProcess) -> None:
    cookie = login(app)
    token = csrf_of(page(app, "/settings", cookie))
    form = {"minutes": "7"}
    missing = call(app, "POST", "/settings/idle", headers={"Cookie": cookie},
                   body=urlencode(form))
    assert missing.status == 403
    wrong = call(app, "POST", "/settings/idle", headers={"Cookie": cookie},
                 body=urlencode({**form, "csrf": token[:-2] + "xx"}))
    assert wrong.status == 403
    cross = call(app, "POST", "/settings/idle",
                 headers={"Cookie": cookie, "Origin": "http://evil.example"},
                 body=urlencode({**form, "csrf": token}))
    assert cross.status == 403
    for site in ("cross-site", "same-site"):
        fetched = call(app, "POST", "/settings/idle",
                       headers={"Cookie": cookie, "Origin": "null", "Sec-Fetch-Site": site},
                       body=urlencode({**form, "csrf": token}))
        assert fetched.status == 403, site
    # nothing changed by any of them
    assert 'value="15"' in page(app, "/settings", cookie)
    # the same request from the app's own page goes through
    ok = call(app, "POST", "/settings/idle",
              headers={"Cookie": cookie, "Origin": app.origin, "Sec-Fetch-Site": "same-origin"},
              body=urlencode({**form, "csrf": token}))
    assert ok.status == 303
    assert 'value="7"' in page(app, "/settings", cookie)
    # a multipart form (compose) checks its token too, before reading any file
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nx\r\n"
            f"--{boundary}--\r\n")
    multipart = call(app, "POST", "/compose",
                     headers={"Cookie": cookie,
                              "Content-Type": f"multipart/form-data; boundary={boundary}"},
                     body=body)
    assert multipart.status == 403
    # and locking without the token is refused: the app stays unlocked
    assert call(app, "POST", "/lock", headers={"Cookie": cookie}, body="").status == 403
    assert "<h1" in page(app, "/inbox", cookie)


def test_every_answer_carries_the_security_headers(app: AppProcess) -> None:
    cookie = login(app)
    for path in ("/inbox", "/static/app.js", "/static/kern/kern.min.css"):
        response = call(app, "GET", path, headers={"Cookie": cookie})
        assert response.status == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "http" not in csp  # no remote origin anywhere
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    refused = call(app, "GET", "/inbox", headers={"Host": "evil.example"})
    assert refused.headers["X-Frame-Options"] == "DENY"


def test_the_app_listens_on_loopback_only(app: AppProcess) -> None:
    assert app.launch_url.startswith("http://127.0.0.1:")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/launch/\S+\n", app.first_line)


def test_ctrl_c_ends_the_app_while_a_page_holds_the_news_stream_open(world: World) -> None:
    import os
    import signal
    import subprocess

    started = AppProcess.start(world.home, world.anna, passphrase=PASSPHRASE)
    try:
        cookie = login(started)
        stream = http.client.HTTPConnection("127.0.0.1", started.port, timeout=30)
        stream.request("GET", "/events", headers={"Host": f"127.0.0.1:{started.port}",
                                                  "Cookie": cookie})
        assert stream.getresponse().status == 200  # an open page's live region, held open
        os.kill(started.proc.pid, signal.SIGINT)
        # It ends by itself (before, aiohttp's graceful shutdown waited up to a minute for
        # the stream, and the person saw Ctrl-C do nothing).
        try:
            started.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError("kok app did not end on Ctrl-C with a page open") from None
        assert started.proc.returncode == 0
        stream.close()
    finally:
        assert started.stop() == ""
