"""``kok`` and files it cannot read: a specific error line each, no traceback, nothing made."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.kokcli import kok, ok


def _error(result_err: str) -> dict[str, str]:
    lines = [line for line in result_err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result_err, result_err
    return json.loads(lines[0])["error"]


def test_request_files_that_are_missing_or_unreadable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok(kok("network", "init", "--name", "Netz", "--out", str(tmp_path / "network.json"),
           home=home, profile="office"))
    before = sorted(p.name for p in (home / "office").iterdir())
    for path, code in ((tmp_path / "no-such.request", "file_missing"),
                       (tmp_path, "file_unreadable")):  # a folder is not a request file
        result = kok("--json", "network", "admit", str(path), "--relay", "http://127.0.0.1:9",
                     home=home, profile="office")
        assert result.code == 2
        assert _error(result.err)["code"] == code
    assert sorted(p.name for p in (home / "office").iterdir()) == before


def test_a_message_body_file_must_be_utf8(tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes("Grüße".encode("latin-1"))
    result = kok("--json", "send", "--to", "sued", "--subject", "s", "--body-file", str(body),
                 home=tmp_path / "home", profile="nobody")
    assert result.code == 2
    assert _error(result.err)["code"] == "body_not_utf8"
