"""Running ``kok`` as a subprocess, the way a person or a script does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60


@dataclass
class Result:
    """Exit code and output of one ``kok`` run."""

    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The single stderr line of a failure (asserts there is exactly one)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, self.err
        assert "Traceback" not in self.err
        return lines[0]


TEST_PASSPHRASE = "test passphrase"  # the relay fixture's network profile uses the same


def ctrl_c_default() -> None:
    """``preexec_fn`` for a ``kok`` process a test stops with Ctrl-C (SIGINT): SIGINT at its
    default, so Python turns it into KeyboardInterrupt. A test run started in the background
    of a non-interactive shell (``cmd &``, as CI runners and nohup do) ignores SIGINT, and
    every child inherits an ignored signal: Ctrl-C would then do nothing at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kok_env(passphrase: str | None = TEST_PASSPHRASE, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "KOK_PASSPHRASE", "KOK_HOME",
                        "KOK_PROFILE")}
    env.update({"KOK_ARGON2_MEMORY_KIB": "1024", "KOK_ARGON2_TIME": "1",
                "PYTHONPATH": str(REPO), "NO_COLOR": "1"})
    if passphrase is not None:
        env["KOK_PASSPHRASE"] = passphrase
    env.update(extra)
    return env


def kok(*args: str, home: Path, profile: str | None = None, stdin: str | bytes = "",
        env: dict[str, str] | None = None) -> Result:
    """Run ``kok --home HOME [--profile P] ARGS`` with stdin from a pipe (never a terminal)."""
    argv = [sys.executable, "-m", "client", "--home", str(home)]
    if profile:
        argv += ["--profile", profile]
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    proc = subprocess.run([*argv, *args], input=data, capture_output=True,
                          env=env or kok_env(), timeout=TIMEOUT, check=False)
    return Result(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"))


def ok(result: Result) -> Result:
    """Assert success (showing the error line if not)."""
    assert result.code == 0, result.err
    return result
