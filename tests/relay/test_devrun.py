"""``make run``: the development relay bootstraps ./var once, reuses it, and serves."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from relay.config import load_config
from relay.devrun import DEV_PASSPHRASE, banner, bootstrap
from tests.support.relayproc import REPO, free_port


def test_bootstrap_creates_a_network_and_a_relay_once(tmp_path: Path) -> None:
    var = tmp_path / "var"
    assert bootstrap(var, 8899) is True
    config = load_config(var / "relay", env={})
    assert config.server.port == 8899
    assert config.origin == "http://127.0.0.1:8899"
    anchor = json.loads((var / "network.json").read_text("utf-8"))
    assert config.network.fingerprint == anchor["fingerprint"].replace(" ", "").upper()
    assert (var / "home" / "network" / "keystore").exists()
    before = (var / "relay" / "relay.key").read_bytes()
    assert bootstrap(var, 8899) is False  # reused, not overwritten
    assert (var / "relay" / "relay.key").read_bytes() == before
    text = banner(var, 8899, created=False)
    assert "DEVELOPMENT ONLY" in text and "reusing" in text
    assert "http://127.0.0.1:8899" in text and DEV_PASSPHRASE in text


def test_make_run_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KOK_ARGON2_MEMORY_KIB": "1024", "KOK_ARGON2_TIME": "1",
           "PYTHONPATH": str(REPO)}
    old_umask = os.umask(0o022)  # a person's usual umask, inherited by make run
    try:
        proc = subprocess.Popen([sys.executable, "-m", "relay.devrun", "--dir",
                                 str(tmp_path / "v"), "--port", str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path)
    finally:
        os.umask(old_umask)
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                url = f"http://127.0.0.1:{port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as answer:
                    status = answer.status
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.1)
        assert status == 200
        os.kill(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=15)[0].decode()
        assert proc.returncode == 0
        assert "created" in out and "DEVELOPMENT ONLY" in out
        assert "127.0.0.1:" + str(port) in out  # the banner names the URL to use
        # relay.db, its -wal/-shm, the keystore, every folder: private despite umask 022
        made = [tmp_path / "v", *(tmp_path / "v").rglob("*")]
        assert (tmp_path / "v" / "relay" / "relay.db") in made
        modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.lstat().st_mode) for p in made}
        assert {p: oct(m) for p, m in modes.items()
                if m != (0o700 if (tmp_path / p).is_dir() else 0o600)} == {}
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
