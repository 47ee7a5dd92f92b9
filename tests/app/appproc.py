"""Running ``kok app --no-browser`` as a child process, the way a person starts it."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.kokcli import ctrl_c_default, kok_env

URL_RE = re.compile(r"^http://127\.0\.0\.1:(\d+)/launch/[A-Za-z0-9_-]{20,}$")
START_TIMEOUT = 30.0


@dataclass
class AppProcess:
    """One staff app; ``launch_url`` is the single line it printed."""

    proc: subprocess.Popen[bytes]
    launch_url: str
    first_line: str

    @property
    def port(self) -> int:
        match = URL_RE.match(self.launch_url)
        assert match
        return int(match.group(1))

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, home: Path, profile: str, *, passphrase: str | None,
              extra: tuple[str, ...] = (), env_extra: dict[str, str] | None = None
              ) -> AppProcess:
        env = kok_env(passphrase=passphrase, **(env_extra or {}))
        argv = [sys.executable, "-m", "client", "--home", str(home), "--profile", profile,
                "app", "--no-browser", *extra]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, preexec_fn=ctrl_c_default)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        line = proc.stdout.readline().decode("utf-8") if ready else ""
        if not URL_RE.match(line.strip()):
            proc.kill()
            err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
            raise RuntimeError(f"kok app did not print its URL: {line!r} {err}")
        return cls(proc=proc, launch_url=line.strip(), first_line=line)

    def stop(self) -> str:
        """SIGINT (Ctrl-C), wait; returns whatever else it printed (should be nothing)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rest = self.proc.stdout.read().decode("utf-8", "replace") if self.proc.stdout else ""
        return rest


def wait_for(predicate, timeout: float = 20.0, step: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False
