"""What both ends of the unlock agent (``kok unlock``) share: where its socket lives, who may
talk to it, and how one request and its answer are framed.

The socket of a profile's agent is ``<runtime dir>/<hash of the keystore's path>.sock``. The
runtime directory is ``$XDG_RUNTIME_DIR/kok`` (the login session's private tmpfs), else
``<tmp>/kok-<uid>``; it must be a real directory (no symlink) owned by this user with mode
0700, else nothing is bound or connected there: in the shared ``/tmp`` another user could
have created the name first to catch our keys. The file name hashes the keystore's resolved
path, so two homes with a profile of the same name get separate agents and a listing of the
folder names no profile.

Each connection carries one request and one answer, each one line of JSON (``MAX_LINE``
bytes at most). Both ends check the other's user id with ``SO_PEERCRED`` (the kernel's word,
not the peer's) and refuse anyone but this user.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import struct
import tempfile
from pathlib import Path
from typing import Any

from protocol.encoding import b64decode, b64encode

from .errors import ProfileError
from .keystore import FORGOTTEN

MAX_LINE = 16 * 1024 * 1024
"""A keystore with years of retired-key names still fits; anything longer is refused."""

SOCKET_PATH_MAX = 107
"""``sun_path`` holds 108 bytes including the final NUL."""

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def runtime_dir() -> Path:
    """``$XDG_RUNTIME_DIR/kok`` if the session has one, else ``<tmp>/kok-<uid>``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
        return Path(xdg) / "kok"
    return Path(tempfile.gettempdir()) / f"kok-{os.getuid()}"


def is_private_dir(path: Path) -> bool:
    """True if ``path`` is a directory (not a symlink) of this user that only they can use."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            and stat.S_IMODE(info.st_mode) & 0o077 == 0)


def make_runtime_dir(path: Path) -> None:
    """Create ``path`` with mode 0700, or refuse one that exists with another owner or mode."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ProfileError("agent_dir_unsafe", path=str(path),
                           detail=exc.strerror or str(exc)) from None
    if not is_private_dir(path):
        raise ProfileError("agent_dir_unsafe", path=str(path),
                           detail="not a folder of this user with mode 0700")


def socket_path(keystore_path: Path, folder: Path | None = None) -> Path:
    """The agent socket of the keystore at ``keystore_path``."""
    digest = hashlib.sha256(str(keystore_path.resolve()).encode("utf-8")).hexdigest()[:24]
    path = (folder or runtime_dir()) / f"{digest}.sock"
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise ProfileError("agent_dir_unsafe", path=str(path.parent),
                           detail="the path is too long for a socket")
    return path


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket, from the kernel."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(raw)
    return int(uid)


def peer_allowed(sock: socket.socket, own_uid: int | None = None) -> bool:
    """True if the peer runs as ``own_uid`` (default: this process's user)."""
    try:
        return peer_uid(sock) == (os.getuid() if own_uid is None else own_uid)
    except OSError:
        return False


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line."""
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The message in one line; ``ValueError`` for anything but a JSON object."""
    if not line.endswith(b"\n") or len(line) > MAX_LINE:
        raise ValueError("incomplete or oversized message")
    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def keystore_content(secrets: dict[str, bytes], meta: dict[str, Any]) -> dict[str, Any]:
    """A keystore's secrets and meta as they cross the socket."""
    return {"secrets": {k: b64encode(v) for k, v in sorted(secrets.items())}, "meta": meta}


def parse_content(message: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The secrets and meta in a message (``ValueError`` if malformed)."""
    secrets, meta = message.get("secrets"), message.get("meta")
    if not isinstance(secrets, dict) or not isinstance(meta, dict):
        raise ValueError("secrets and meta must be objects")
    forgotten = meta.get(FORGOTTEN, [])
    if not isinstance(forgotten, list) or not all(isinstance(n, str) for n in forgotten):
        raise ValueError("forgotten must be a list of names")
    try:
        return {str(k): b64decode(v) for k, v in secrets.items()}, meta
    except Exception as exc:
        raise ValueError("a secret is not base64") from exc
