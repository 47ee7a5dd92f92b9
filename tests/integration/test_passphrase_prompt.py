"""On a terminal the passphrase prompt names the profile, and a mistyped one may be retried."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path
from typing import Any

from client.onboarding import init_network
from tests.integration.kokcli import REPO, kok, kok_env, ok
from tests.integration.people import unique


def converse(argv: list[str], env: dict[str, str], answers: dict[bytes, list[bytes]]
             ) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal; each time a prompt ends the output, answer it."""
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, *argv], env)  # noqa: S606 (our own kok)
    out, seen = b"", 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
            for prompt, replies in answers.items():
                if out.count(prompt) > seen and replies and out.rstrip().endswith(b":"):
                    seen += 1
                    os.write(fd, replies.pop(0) + b"\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_the_prompt_names_the_profile_and_a_wrong_passphrase_can_be_retried(
        tmp_path: Path) -> None:
    init_network(tmp_path, "anna", "the right one", "Netz")
    env = kok_env(passphrase=None)
    code, out = converse(["-m", "client", "--home", str(tmp_path), "--profile", "anna", "inbox"],
                         env, {b"Passphrase for anna:": [b"wrong", b"the right one"]})
    assert code == 0, out
    assert out.count("Passphrase for anna:") == 2
    assert "That passphrase is wrong. Try again." in out
    assert "the right one" not in out and "wrong\r" not in out  # never echoed

    code, out = converse(["-m", "client", "--home", str(tmp_path), "--profile", "anna", "inbox"],
                         env, {b"Passphrase for anna:": [b"a", b"b", b"c", b"d"]})
    assert code == 1 and out.count("Passphrase for anna:") == 3  # three tries, then an error


def test_in_german_the_question_is_j_n_and_j_means_yes(shared_relay: Any, tmp_path: Path) -> None:
    relay, home = shared_relay, tmp_path / "home"
    org_id = unique("west")
    request = tmp_path / "west.request"
    ok(kok("org", "new", org_id, "--name", "Beratungsstelle West", "--relay", relay.url,
           "--network", str(relay.anchor_path), "--out", str(request), home=home, profile=org_id))
    env = kok_env(LANG="de_DE.UTF-8")
    code, out = converse(["-m", "client", "--home", str(relay.home), "--profile", "network",
                          "network", "admit", str(request)], env, {b"[j/N]:": [b"j"]})
    assert code == 0, out
    assert f"Fingerabdruck von {org_id} (Beratungsstelle West)" in out
    assert ok(kok("org", "activate", home=home, profile=org_id)).code == 0
