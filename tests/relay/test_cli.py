"""``python -m relay`` (= ``kok relay``): init, stats, purge, serve; clear one-line failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from protocol import SigningKeyPair
from relay.devnetwork import network_anchor
from tests.support.actors import rand


def _relay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_init_stats_and_purge_from_the_command_line(tmp_path: Path) -> None:
    anchor = tmp_path / "network.json"
    anchor.write_text(json.dumps(network_anchor("CLI Net", SigningKeyPair.from_seed(rand()))))
    relay_dir = tmp_path / "relay"
    made = _relay("init", "--dir", str(relay_dir), "--network", str(anchor), "--port", "9911")
    assert made.returncode == 0, made.stderr
    assert "CLI Net" in made.stdout and "Relay log key" in made.stdout
    again = _relay("init", "--dir", str(relay_dir), "--network", str(anchor))
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr
    assert "Traceback" not in again.stderr
    stats = _relay("stats", "--dir", str(relay_dir), "--json")
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["messages"] == 0 and counts["log_entries"] == 0
    assert all(isinstance(v, int) for v in counts.values())  # aggregates only
    purge = _relay("purge", "--dir", str(relay_dir))
    assert purge.returncode == 0 and purge.stdout.startswith("Deleted: 0 messages")


def test_missing_directory_and_bad_anchor_are_one_line_errors(tmp_path: Path) -> None:
    for args in (("serve", "--dir", str(tmp_path / "nowhere")),
                 ("stats", "--dir", str(tmp_path / "nowhere"))):
        done = _relay(*args)
        assert done.returncode != 0
        assert "run `relay init`" in done.stderr and "Traceback" not in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = _relay("init", "--dir", str(tmp_path / "r"), "--network", str(bad))
    assert done.returncode != 0 and "not valid JSON" in done.stderr
