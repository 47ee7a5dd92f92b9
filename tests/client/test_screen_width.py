"""kok's own output fits 80 columns and help texts are never cut off with "..."."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from client.models import OrgInfo, StaffInfo
from client.render import fit, org_lines

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", [[], ["org"], ["network"], ["staff"], ["send"], ["save"]])
@pytest.mark.parametrize("lang", ["C", "de_DE.UTF-8"])
def test_help_fits_80_columns_and_is_not_cut_off(command: list[str], lang: str) -> None:
    env = {**os.environ, "COLUMNS": "200", "LANG": lang, "PYTHONPATH": str(REPO)}
    env.pop("LC_ALL", None)
    shown = subprocess.run([sys.executable, "-m", "client", *command, "--help"], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    # only the usage line may end in "...": "COMMAND [ARGS]..." / "BEFEHL [ARGUMENTE]..."
    assert not [line for line in lines if line.rstrip().endswith("...")
                and not line.startswith(("Usage: ", "Aufruf: "))]


def test_whois_lines_are_wrapped_to_80_columns() -> None:
    staff = tuple(StaffInfo(staff_id=f"beratungsstelle-nord-ost/mitarbeiterin-{n}", role="staff",
                            fingerprint="A" * 52, added=0, removed=None) for n in range(3))
    info = OrgInfo(org_id="beratungsstelle-nord-ost", name="Fachberatungsstelle " * 6,
                   fingerprint="B" * 52, admitted=0, revoked=None, revoke_reason=None,
                   staff=staff, epoch=1, epoch_created=0, epoch_fingerprint="C" * 52,
                   log_size=10, log_hash="h" * 43, log_code="1234 5678")
    lines = org_lines(info)
    assert max(len(line) for line in lines) <= 80
    assert "".join(part.strip() for part in fit(["x" * 200])) == "x" * 200  # only wrapped
