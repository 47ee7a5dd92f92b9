"""``kok relay serve --workers N``: N relay processes sharing one listening socket.

The parent binds the socket once and starts N children (``relay serve --listen-fd``),
each a whole relay (event loop, store pool, push bus) accepting on the inherited socket;
the kernel hands each new connection to one of them. The parent only supervises: a child
that dies is started again (after a short pause), SIGTERM/SIGINT stop all children.

Only a PostgreSQL store can be shared by several processes: SQLite allows one writer and
the relay's in-memory state of one process would not learn of another's writes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import structlog

from .config import ConfigError, RelayConfig

log = structlog.get_logger("relay")
STOP_TIMEOUT = 10.0
RESTART_PAUSE = 1.0


def check_workers(config: RelayConfig, workers: int) -> None:
    """Refuse a worker count the configured store cannot serve (with the reason)."""
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if workers > 1 and not config.store.is_postgresql:
        raise ConfigError(
            "--workers > 1 needs a store several processes can share: SQLite allows one "
            "writing process, and each process keeps sessions and the key log in memory. Set "
            "[store] url = \"postgresql://...\" (and move the data with `kok relay migrate`), "
            "or serve with one worker")


def bind(config: RelayConfig) -> socket.socket:
    """The listening socket every worker accepts on."""
    host, port = config.server.host, config.server.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def supervise(config: RelayConfig, directory: Path, workers: int) -> None:
    """Run ``workers`` relay processes on one socket until SIGTERM or SIGINT."""
    sock = bind(config)
    stopping = False

    def stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "relay", "serve", "--dir", str(directory),
             "--listen-fd", str(sock.fileno())], pass_fds=(sock.fileno(),))

    children = [spawn() for _ in range(workers)]
    log.info("workers_started", workers=workers, port=config.server.port)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, child in enumerate(children):
                if child.poll() is not None and not stopping:
                    log.warning("worker_exited", code=child.returncode)
                    time.sleep(RESTART_PAUSE)
                    children[i] = spawn()
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
        sock.close()
        log.info("workers_stopped")
