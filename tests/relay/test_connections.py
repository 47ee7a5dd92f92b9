"""Connection-level defences of a real relay: slow headers are cut off.

Attack (slowloris): many connections each send a request's headers a byte at a time, or
stop half way, to hold the relay's connections. The relay closes a connection whose
headers are not complete within ``header_timeout`` however it trickles.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
