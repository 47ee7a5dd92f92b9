"""The unlock agent: one profile's keystore held open in memory for a working session.

``kok unlock [--for 8h]`` starts it (``python -m client.agent``, in a session of its own) and
``kok lock``, SIGTERM or the end of the time ends it; in between, ``kok`` commands of the
same user and profile fetch the keys from it instead of asking for the passphrase.

What crosses the socket, and why
--------------------------------
The agent keeps the passphrase and an opened ``Keystore``; the passphrase never leaves it.
Commands ask for the keystore's content (``open``: secret keys and meta) and hand back their
changes (``save``); the agent merges and writes them like every ``Keystore.save``. The
alternatives were worse:

* handing out the passphrase would let any program of the session decrypt old copies of
  the keystore (backups), with keys that were forgotten for forward secrecy since; the
  keystore draws a fresh Argon2 salt on every save precisely so that old copies and the
  current file share no key;
* handing out the derived key would make every save reuse one salt and key, or make saving
  impossible while unlocked (a fresh salt needs the passphrase). Commands do save: a rotation
  adds a key, a removal forgets one, a device join adds its own.

So the agent is the one writer of the file for commands that use it, with a fresh salt per
save as before. Before each ``open`` it takes in what other programs saved meanwhile (the
app, or ``kok`` given the passphrase); names forgotten stay forgotten (an older copy put in
the file's place does not bring keys back through the agent). If the passphrase was changed
meanwhile (``kok passwd``), the agent's passphrase no longer opens the file: it says so and
ends itself, and commands ask for the passphrase again.

What a program of the same user could already do (read the keystore file, watch the
terminal) it can also do here: like ``ssh-agent``, the agent keeps other users out (a 0700
folder and the kernel's ``SO_PEERCRED``), not the user's own programs. It refuses to be
traced or core-dumped (``PR_SET_DUMPABLE`` 0), so a same-user debugger cannot read the
passphrase out of its memory, and writes nothing to disk but the keystore itself: keys live
in its memory only (no swap file of its own; memory locking is not attempted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from kokshared.private_files import use_private_umask

from .agent_protocol import (
    MAX_LINE,
    decode,
    encode,
    keystore_content,
    parse_content,
    peer_allowed,
)
from .keystore import FORGOTTEN, Keystore, KeystoreChanged, KeystoreError

READ_TIMEOUT = 10.0
"""A client that connects and says nothing is dropped after this many seconds."""

_PR_SET_DUMPABLE = 4


def refuse_tracing() -> None:
    """No core dumps and no ptrace by the same user (what ``ssh-agent`` does)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the core limit is what we have
        pass


class Agent:
    """Serves one opened keystore on one socket until locked, signalled or expired."""

    def __init__(self, keystore: Keystore, profile: str, expires: int) -> None:
        self.keystore = keystore
        self.profile = profile
        self.expires = expires
        self.stopped = asyncio.Event()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return {"ok": True, "profile": self.profile, "keystore": str(self.keystore.path),
                    "expires": self.expires, "pid": os.getpid()}
        if op == "lock":
            self.stopped.set()
            return {"ok": True}
        try:
            if op == "open":
                self.keystore.refresh()
                return {"ok": True, **keystore_content(self.keystore.secrets, self.keystore.meta)}
            if op == "save":
                secrets, meta = parse_content(request)
                forgotten = set(self.keystore.meta.get(FORGOTTEN, []))
                self.keystore.secrets, self.keystore.meta = secrets, meta
                for name in forgotten:  # what was forgotten stays forgotten
                    self.keystore.forget(name)
                self.keystore.save()
                return {"ok": True, **keystore_content(self.keystore.secrets, self.keystore.meta)}
        except KeystoreChanged:
            self.stopped.set()  # our passphrase no longer opens the file
            return {"ok": False, "error": "keystore_changed"}
        except (KeystoreError, OSError) as exc:
            return {"ok": False, "error": "keystore_error", "detail": str(exc)}
        except ValueError:
            return {"ok": False, "error": "bad_request"}
        return {"ok": False, "error": "bad_request"}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if not peer_allowed(writer.get_extra_info("socket")):
                return  # another user: not one byte
            try:
                line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
                request = decode(line)
            except (TimeoutError, ValueError, asyncio.LimitOverrunError):
                return
            writer.write(encode(self.answer(request)))
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def serve(self, path: Path, ready: Any) -> None:
        """Bind ``path`` (never replacing an existing file), say ``ready``, serve until done."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))  # EADDRINUSE if another agent holds the name
        os.chmod(path, 0o600)
        identity = os.stat(path).st_ino
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopped.set)
        loop.call_later(max(0.0, self.expires - time.time()), self.stopped.set)
        server = await asyncio.start_unix_server(self.handle, sock=listener, limit=MAX_LINE)
        try:
            ready()
            await self.stopped.wait()
        finally:
            server.close()
            with contextlib.suppress(OSError):
                if os.stat(path).st_ino == identity:  # never remove a successor's socket
                    os.unlink(path)
            self.keystore.secrets.clear()


def detach_stdio() -> None:
    """Point stdin, stdout and stderr at /dev/null: ``kok unlock`` has stopped listening."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def main(argv: list[str] | None = None) -> int:
    """Read the passphrase from stdin, open the keystore, print ``ready`` once serving.

    On failure it prints ``error CODE`` instead and exits non-zero, so ``kok unlock`` can say
    what went wrong.
    """
    use_private_umask()
    refuse_tracing()
    parser = argparse.ArgumentParser(prog="python -m client.agent")
    parser.add_argument("--keystore", type=Path, required=True)
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--seconds", type=int, required=True)
    args = parser.parse_args(argv)
    os.chdir("/")  # hold no folder busy
    passphrase = sys.stdin.readline().removesuffix("\n")
    try:
        keystore = Keystore.open(args.keystore, passphrase)
    except KeystoreError as exc:
        print(f"error {exc.code}", flush=True)
        return 1
    del passphrase  # the keystore keeps its own reference for saves
    agent = Agent(keystore, args.profile, int(time.time()) + args.seconds)

    def ready() -> None:
        print("ready", flush=True)
        detach_stdio()

    try:
        asyncio.run(agent.serve(args.socket, ready))
    except OSError as exc:
        print(f"error agent_bind {exc.strerror or exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
