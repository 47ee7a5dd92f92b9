"""deploy/kok-relay.service: valid for systemd, and its command runs as an unprivileged user.

``systemd-analyze verify`` checks every directive of a copy whose only change is the path
of the interpreter (this checkout's virtual environment instead of /opt/kok-relay/.venv).
Then, when the tests run as root, a virtual environment is built exactly as OPERATOR.md
says (Debian's python3, ``pip install .``, umask 022), the relay directory is initialised as
the user ``nobody`` and the unit's ExecStart line, with its Environment lines and UMask, is
run as that user, as systemd would run it as ``kok-relay``: it must serve, and the files
it creates must be private to it.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.ops.opsworld import ci_requires
from tests.support.relayproc import REPO, free_port

UNIT = REPO / "deploy" / "kok-relay.service"
SHIPPED_PYTHON = "/opt/kok-relay/.venv/bin/python"
# Debian's interpreter: a venv made from one under /root (pyenv) is not executable by others.
SYSTEM_PYTHON = "/usr/bin/python3"
ANALYZE = shutil.which("systemd-analyze")


def unit_lines(key: str) -> list[str]:
    prefix = key + "="
    return [line[len(prefix):] for line in UNIT.read_text().splitlines()
            if line.startswith(prefix)]


@pytest.mark.skipif(ANALYZE is None, reason=ci_requires("systemd-analyze") if ANALYZE is None
                    else "")
def test_systemd_accepts_every_directive_of_the_unit(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert SHIPPED_PYTHON in text
    copy = tmp_path / "kok-relay.service"
    copy.write_text(text.replace(SHIPPED_PYTHON, sys.executable))
    result = subprocess.run([str(ANALYZE), "verify", str(copy)], capture_output=True, text=True)
    complaints = [line for line in (result.stdout + result.stderr).splitlines()
                  if line.strip() and "kok-relay.service" in line]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


def as_user(user: pwd.struct_passwd, umask: str, argv: list[str]) -> list[str]:
    """``argv`` run as ``user`` with no supplementary groups and ``umask``, as systemd would."""
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            "--", "sh", "-c", f'umask {umask} && exec "$@"', "unit", *argv]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the command as another user")
@pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason=f"needs {SYSTEM_PYTHON}")
def test_a_venv_built_as_documented_serves_as_an_unprivileged_user() -> None:
    """The venv recipe of OPERATOR.md section 2, then init and ExecStart as the service user."""
    nobody = pwd.getpwnam("nobody")
    [umask] = unit_lines("UMask")
    assert unit_lines("User") == ["kok-relay"]
    root = Path(tempfile.mkdtemp(prefix="kok-unit-"))
    try:
        root.chmod(0o755)  # like /opt and /var/lib: the service user may pass through
        venv = root / "opt" / ".venv"
        old = os.umask(0o022)
        try:
            subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(REPO)],
                           check=True, capture_output=True)
            anchor = root / "network.json"
            shutil.copy(REPO / "tests" / "ops" / "fixtures" / "relay_schema2" / "relay"
                        / "network.json", anchor)
            anchor.chmod(0o644)
        finally:
            os.umask(old)
        state = root / "state"
        state.mkdir(mode=0o700)
        os.chown(state, nobody.pw_uid, nobody.pw_gid)
        port = free_port()
        env = {"PATH": "/usr/bin:/bin"}  # no PYTHONPATH: the code comes from the venv
        subprocess.run(as_user(nobody, umask, [
            str(venv / "bin" / "python"), "-m", "relay", "init", "--dir", str(state / "relay"),
            "--network", str(anchor), "--port", str(port),
            "--public-url", f"http://127.0.0.1:{port}"]), env=env, check=True,
            capture_output=True, cwd="/")
        [exec_start] = unit_lines("ExecStart")
        argv = shlex.split(exec_start.replace(SHIPPED_PYTHON, str(venv / "bin" / "python"))
                           .replace("/var/lib/kok-relay", str(state)))
        for line in unit_lines("Environment"):
            name, value = line.split("=", 1)
            env[name] = value
        log = root / "relay.out"
        with log.open("wb") as out:
            proc = subprocess.Popen(as_user(nobody, umask, argv), env=env, cwd="/",
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                                timeout=1) as answer:
                        assert answer.status == 200
                        break
                except OSError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            proc.wait(15)
        assert proc.returncode == 0, log.read_text()
        for name in ("relay.db", "relay.key"):
            path = state / "relay" / name
            assert path.stat().st_uid == nobody.pw_uid
            assert path.stat().st_mode & 0o077 == 0, name  # private to the service user
    finally:
        shutil.rmtree(root)
