"""The README's first steps run as written against the relay ``make run`` starts.

The block after the ``walk-through`` marker in README.md is run with bash, in a folder
where ``make run`` (``python -m relay.devrun --dir var``) made its development network, on a
terminal (a pseudo-terminal here) where the fingerprint questions are answered ``y``. The
only change is the port: a free one instead of 8787, so parallel test runs do not collide.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- walk-through:"
TIMEOUT = 300.0


def walkthrough_block() -> str:
    """The ```sh block right after the walk-through marker in README.md."""
    text = (REPO / "README.md").read_text("utf-8")
    after = text[text.index(MARKER):]
    match = re.search(r"```sh\n(.*?)```", after, re.S)
    assert match is not None, "no sh block after the walk-through marker"
    return match.group(1)


def run_on_terminal(script: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``bash -e -c script`` on a pseudo-terminal; answer every [y/N] question with y."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes bash on the terminal
        os.chdir(cwd)
        os.execve("/bin/bash", ["bash", "-e", "-c", script], env)  # noqa: S606 (bash runs it)
    out = b""
    answered = 0
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # the terminal closed: bash ended
                break
            if not data:
                break
            out += data
            if out.count(b"[y/N]") > answered:
                answered += 1
                os.write(fd, b"y\n")
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_the_readme_walkthrough_runs_against_make_runs_relay(tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    assert (venv / "bin" / "kok").exists(), "kok is installed into the environment (make venv)"
    (tmp_path / ".venv").symlink_to(venv)
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANG", "LC_ALL", "LC_MESSAGES", "KOK_HOME", "KOK_PROFILE",
                        "KOK_PASSPHRASE", "KOK_CA_FILE")}
    env.update({"KOK_ARGON2_MEMORY_KIB": "1024", "KOK_ARGON2_TIME": "1",
                "PYTHONPATH": str(REPO), "NO_COLOR": "1", "TERM": "dumb"})
    log = (tmp_path / "make-run.log").open("wb")
    relay = subprocess.Popen([sys.executable, "-m", "relay.devrun", "--dir", "var",
                              "--port", str(port)], cwd=tmp_path, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                assert relay.poll() is None, (tmp_path / "make-run.log").read_text()
                assert time.monotonic() < deadline, "make run's relay did not start"
                time.sleep(0.2)
        script = walkthrough_block().replace("8787", str(port))
        code, out = run_on_terminal(script, tmp_path, env)
        assert code == 0, out
        assert out.count("[y/N]") == 4  # two admissions, two enrolments, each confirmed
        assert "beratung-nord/anna-weber" in out and "beratung-sued/ben-okafor" in out
        assert "1 new message," in out and "Rückfrage" in out
    finally:
        relay.send_signal(signal.SIGTERM)
        try:
            relay.wait(15)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()
        log.close()


def test_make_run_takes_the_port_from_port() -> None:
    planned = subprocess.run(["make", "-n", "run", "PORT=9000"], cwd=REPO, capture_output=True,
                             text=True, check=True, timeout=60)
    assert "relay.devrun --dir var --port 9000" in planned.stdout
