"""Using the unlock agent from a ``kok`` command: start it, ask it, end it.

Every call here fails closed to "no agent": a missing, stale (the agent died and left its
socket), foreign or confused agent makes the command ask for the passphrase as before. A
stale socket is removed on the way. ``client.agent`` explains what crosses the socket.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agent_protocol import (
    MAX_LINE,
    decode,
    encode,
    is_private_dir,
    keystore_content,
    make_runtime_dir,
    parse_content,
    peer_allowed,
    runtime_dir,
    socket_path,
)
from .errors import ProfileError
from .keystore import KdfParams, Keystore, KeystoreChanged, KeystoreError
from .profile import Profile

TIMEOUT = 30.0
"""Seconds to wait for an answer: a save runs Argon2, which is slow on purpose."""

START_TIMEOUT = 120.0


def agent_socket(prof: Profile) -> Path | None:
    """The profile's agent socket if the runtime folder is safe to use, else ``None``."""
    folder = runtime_dir()
    if not is_private_dir(folder):
        return None
    try:
        return socket_path(prof.keystore_path, folder)
    except ProfileError:
        return None


def remove_stale(path: Path) -> None:
    """Remove a socket file nobody listens on (only a socket, never another kind of file)."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            path.unlink()
    except OSError:
        pass


def ask(path: Path, request: dict[str, Any]) -> dict[str, Any] | None:
    """Send one request to the agent at ``path``; its answer, or ``None`` if there is no
    usable agent there (a stale socket is removed)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOTSOCK):
                remove_stale(path)
            return None
        if not peer_allowed(sock):
            return None  # a socket served by another user: never hand it anything
        try:
            sock.sendall(encode(request))
            data = bytearray()
            while not data.endswith(b"\n") and len(data) <= MAX_LINE:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return decode(bytes(data))
        except (OSError, ValueError):
            return None


def status(prof: Profile) -> dict[str, Any] | None:
    """The running agent of ``prof`` (``profile``, ``expires``, ``pid``), or ``None``."""
    path = agent_socket(prof)
    if path is None:
        return None
    answer = ask(path, {"op": "status"})
    if (answer is None or not answer.get("ok")
            or answer.get("keystore") != str(prof.keystore_path)):
        return None
    return answer


def lock(prof: Profile) -> bool:
    """End the agent of ``prof``; True if one was running."""
    path = agent_socket(prof)
    if path is None or status(prof) is None:
        return False
    answer = ask(path, {"op": "lock"})
    return bool(answer and answer.get("ok"))


@dataclass
class AgentKeystore(Keystore):
    """A keystore opened through the agent: its ``save`` goes to the agent, which holds the
    passphrase; changing the passphrase needs the current one typed (``kok passwd``)."""

    socket: Path = field(default=Path(), repr=False)

    def save(self) -> None:
        answer = ask(self.socket, {"op": "save", **keystore_content(self.secrets, self.meta)})
        if answer is None:
            raise KeystoreError("The unlock agent ended before the keys were saved; "
                                "run the command again.")
        if not answer.get("ok"):
            if answer.get("error") == "keystore_changed":
                raise KeystoreChanged()
            raise KeystoreError(str(answer.get("detail") or answer.get("error")))
        self.secrets, self.meta = parse_content(answer)

    def refresh(self) -> None:
        answer = ask(self.socket, {"op": "open"})
        if answer is not None and answer.get("ok"):
            self.secrets, self.meta = parse_content(answer)

    def change_passphrase(self, new_passphrase: str, params: KdfParams | None = None) -> None:
        raise KeystoreError("The passphrase is changed with the current one, not through "
                            "the unlock agent.")


def open_keystore(prof: Profile) -> Keystore | None:
    """The profile's keystore from its agent, or ``None`` (then ask for the passphrase)."""
    path = agent_socket(prof)
    if path is None or status(prof) is None:
        return None
    answer = ask(path, {"op": "open"})
    if answer is None or not answer.get("ok"):
        return None
    try:
        secrets, meta = parse_content(answer)
    except (ValueError, TypeError):
        return None
    return AgentKeystore(path=prof.keystore_path, secrets=secrets, meta=meta,
                         params=KdfParams(), _salt=b"", _key=b"", socket=path)


def start(prof: Profile, passphrase: str, seconds: int) -> None:
    """Start the agent for ``prof`` in a session of its own; returns once it serves.

    The passphrase goes through a pipe (never the command line or the environment, which
    other users can read in ``/proc``).
    """
    folder = runtime_dir()
    make_runtime_dir(folder)
    path = socket_path(prof.keystore_path, folder)
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.pop("KOK_PASSPHRASE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "client.agent", "--keystore", str(prof.keystore_path),
         "--socket", str(path), "--profile", prof.name, "--seconds", str(seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True, env=env, close_fds=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(passphrase.encode("utf-8") + b"\n")
        proc.stdin.close()
        line = proc.stdout.readline().decode("utf-8", "replace").strip()
    finally:
        proc.stdout.close()
    if line == "ready":
        return
    try:
        proc.wait(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
    raise ProfileError("agent_failed", detail=line.removeprefix("error ") or "no answer")
