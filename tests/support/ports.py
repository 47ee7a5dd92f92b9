"""Loopback ports for the servers the tests start, taken below the kernel's ephemeral range.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` is free only for a moment: between
closing the probe socket and the server binding it, an outgoing connection (the tests make
thousands) or another process's ``bind(0)`` may take the same port, and the server fails to
start. The kernel never picks a port below ``ip_local_port_range`` for either, so such a port
can only be taken by a server that names it. Each pytest-xdist worker walks its own slice of
that range (from a random point, so that two test runs on one machine rarely meet), and one
process never hands out the same port twice until it has gone round its slice: two servers of
one test run can never be given the same port.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
from pathlib import Path

LOWEST = 20000  # above the well-known services a developer's machine may run
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _worker_slice() -> range:
    """This process's ports: the whole range, or one worker's share under pytest-xdist."""
    top = max(_ephemeral_start(), LOWEST + 1000)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (top - LOWEST) // max(workers, 1)
    return range(LOWEST + index * size, LOWEST + (index + 1) * size)


_SLICE = _worker_slice()
_TURNS = itertools.count(secrets.randbelow(len(_SLICE)))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on or is bound to, from this process's
    slice; the next call gives the next free one after it."""
    for _ in range(len(_SLICE)):
        port = _SLICE[next(_TURNS) % len(_SLICE)]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or still in TIME_WAIT: the next one
        return port
    raise RuntimeError(f"no free loopback port between {_SLICE.start} and {_SLICE.stop}")
