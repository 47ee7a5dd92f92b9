"""Connection-level defences of a real relay: slow headers, unparsable requests, banners.

Attack (slowloris): many connections each send a request's headers a byte at a time, or
stop half way, to hold the relay's connections. The relay closes a connection whose
headers are not complete within ``header_timeout`` however it trickles.

Attack (log poisoning / token capture): a request aiohttp's parser rejects used to be
logged with the raw header, token included, and the parser's message echoed it back. The
answer is now problem+json naming nothing from the request, and the log holds only a
status. No answer names software versions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from protocol import b64encode
from tests.support.actors import Api
from tests.support.relayproc import RelayProcess

HEADER_TIMEOUT = 1
PATIENCE = 15.0
"""How long the test waits at most (a safety bound, not a timing claim)."""


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    started = RelayProcess.start(tmp_path_factory.mktemp("conn"), env={
        "KOK_RELAY_SERVER_HEADER_TIMEOUT": str(HEADER_TIMEOUT)})
    yield started
    started.stop()


def _connect(relay: RelayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", relay.port), timeout=PATIENCE)
    sock.settimeout(0.2)
    return sock


def _closed_while_trickling(sock: socket.socket, head: bytes) -> bool:
    """Send ``head`` a byte at a time; True once the relay has closed the connection."""
    deadline = time.monotonic() + PATIENCE
    sent = 0
    while time.monotonic() < deadline:
        try:
            if sent < len(head):
                sock.sendall(head[sent : sent + 1])
                sent += 1
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_slow_and_unfinished_headers_are_cut_off(relay: RelayProcess, tmp_path: Path) -> None:
    stalled = [_connect(relay) for _ in range(5)]
    for sock in stalled:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n")  # and nothing more
    trickling = _connect(relay)
    try:
        head = b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: a\r\n" * 500
        assert _closed_while_trickling(trickling, head)
        for sock in stalled:
            assert _closed_while_trickling(sock, b"")
    finally:
        for sock in [*stalled, trickling]:
            sock.close()
    # a prompt client is served as ever
    with socket.create_connection(("127.0.0.1", relay.port), timeout=PATIENCE) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")


def _exchange(relay: RelayProcess, request: bytes, head_only: bool = False
              ) -> tuple[bytes, dict[str, str], bytes]:
    """Send raw bytes; (status line, headers, body) of the answer (``head_only``: stop
    after the head, for an answer that keeps the connection, a WebSocket upgrade)."""
    with socket.create_connection(("127.0.0.1", relay.port), timeout=PATIENCE) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if head_only and b"\r\n\r\n" in answer:
                break
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status.encode(), headers, body


def test_unparsable_requests_answer_problem_json_and_log_nothing_of_them(
        relay: RelayProcess) -> None:
    secret = b64encode(os.urandom(32))
    for request in (
        f"GET /v1/grants HTTP/1.1\r\nHost: relay\r\n"
        f"Authorization: Bearer {secret}\x00\r\n\r\n".encode(),
        f"GET /v1/messages/{secret} HTT\r\nHost: relay\r\n\r\n".encode(),
        f"GET /v1/grants HTTP/1.1\r\nHost: relay\r\nKok-Upload-Token {secret}\r\n\r\n"
        .encode(),
    ):
        status, headers, body = _exchange(relay, request)
        assert status.split(b" ")[1] == b"400", status
        assert headers["content-type"].startswith("application/problem+json")
        assert headers["server"] == "kok-relay"
        assert json.loads(body)["code"] == "bad_request"
        assert secret.encode() not in body
    time.sleep(0.2)  # the relay writes its log line after answering
    log = relay.log_text()
    assert "request_unreadable" in log  # the test can fail: the events are in this log
    assert secret not in log


def test_answers_name_no_software_versions(relay: RelayProcess) -> None:
    """Every kind of answer: a handler's, a refusal, aiohttp's 404/405, and the two the
    handlers send themselves (an event stream's upgrade here; a download in test_drops)."""
    token = asyncio.run(_login(relay, "named"))
    auth = f"Authorization: Bearer {token}\r\n"
    upgrade = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n")
    close = "Connection: close\r\n"
    for method, path, more, expected in (
            ("GET", "/healthz", close, "200"), ("GET", "/v1/nothing-here", close, "404"),
            ("GET", "/v1/grants", close, "401"), ("DELETE", "/healthz", close, "405"),
            ("GET", "/v1/grants", auth + close, "200"),
            ("GET", "/v1/events", auth + close, "426"),
            ("GET", "/v1/events?after=0", auth + upgrade, "101")):
        status, headers, _ = _exchange(
            relay, f"{method} {path} HTTP/1.1\r\nHost: relay\r\n{more}\r\n".encode(),
            head_only=expected == "101")
        assert status.split(b" ")[1].decode() == expected, (path, status)
        assert headers["server"] == "kok-relay", path


async def _login(relay: RelayProcess, org_name: str = "large") -> str:
    async with aiohttp.ClientSession() as http:
        api = Api(relay.url, http)
        org = await api.setup_org(relay.network_key, org_name, ("admin",))
        return await api.login(org.staff[f"{org_name}/admin"])


def test_large_bodies_are_taken_a_few_at_a_time(relay: RelayProcess) -> None:
    """Two stalled large bodies hold the two places; a third large send waits, unread,
    while small requests go on; it is answered once a place is free."""
    from relay.handlers.common import LARGE_AT_ONCE, LARGE_BODY

    size = LARGE_BODY * 2
    token = asyncio.run(_login(relay))
    head = (f"POST /v1/messages HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    stalled = [_connect(relay) for _ in range(LARGE_AT_ONCE)]
    for sock in stalled:
        sock.sendall(head + b"{" * 1000)  # and then nothing
    waiting = _connect(relay)
    waiting.sendall(head + b" " * size)
    try:
        time.sleep(1.0)
        with pytest.raises(TimeoutError):  # not answered while both places are taken
            waiting.recv(4096)
        status, _, _ = _exchange(relay, b"GET /healthz HTTP/1.1\r\nHost: relay\r\n"
                                         b"Connection: close\r\n\r\n")
        assert status.split(b" ")[1] == b"200"  # small requests are not held up
        stalled[0].close()
        waiting.settimeout(PATIENCE)
        assert waiting.recv(4096).split(b" ")[1] == b"400"  # its turn came (not JSON)
    finally:
        for sock in [*stalled, waiting]:
            sock.close()
