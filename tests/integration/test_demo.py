"""``kok demo`` (``make demo``) runs start to finish and leaves no relay running."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.integration.kokcli import kok, ok


def test_demo_walks_through_the_flow_and_shows_only_ciphertext(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = ok(kok("demo", "--dir", str(folder), home=tmp_path / "unused"))
    out = result.out
    for step in range(1, 10):
        assert f"Step {step}:" in out
    assert "From beratung-nord/anna" in out and "receives the reply from beratung-sued/ben" in out
    assert "No stored message names its sender" in out
    assert "Neither the subjects nor the texts appear anywhere" in out
    assert len(re.findall(r"Envelope \d: for beratung-", out)) == 2
    assert (folder / "relay" / "relay.db").exists() and (folder / "home" / "anna").is_dir()
    assert max(len(line) for line in out.splitlines()) <= 80  # braille displays, screen readers

    port = int(re.search(r"http://127\.0\.0\.1:(\d+)", out).group(1))  # type: ignore[union-attr]
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # the demo stopped its relay

    again = kok("demo", "--dir", str(folder), home=tmp_path / "unused")
    assert again.code == 2 and "is not empty" in again.error_line
