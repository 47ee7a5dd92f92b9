"""The library example in README.md runs as written against a real relay."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.kokcli import REPO, kok_env
from tests.integration.people import close_all, new_org, new_staff, open_office


def readme_example() -> str:
    text = (REPO / "README.md").read_text("utf-8")
    section = text.split("## The Python library", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README has no python example under 'The Python library'"
    return match.group(1)


def test_the_readme_example_is_about_ten_lines() -> None:
    lines = [line for line in readme_example().splitlines() if line.strip()]
    assert 8 <= len(lines) <= 12


async def test_the_readme_example_runs(relay: Any, tmp_path: Path) -> None:
    office = await open_office(relay)
    nord = await new_org(relay, tmp_path, office, "beratung-nord")
    sued = await new_org(relay, tmp_path, office, "beratung-sued")
    anna = await new_staff(relay, tmp_path, nord, "anna")
    ben = await new_staff(relay, tmp_path, sued, "ben")
    await ben.send(to=["beratung-nord"], subject="Termin am Montag?", body="...")
    await close_all(office, nord, sued, anna, ben)
    (tmp_path / "beratung-nord.anna").rename(tmp_path / "anna")  # the example's profile name

    done = subprocess.run([sys.executable, "-c", readme_example()], capture_output=True,
                          env=kok_env(KOK_HOME=str(tmp_path)), timeout=60, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "beratung-sued/ben Termin am Montag?" in out
    assert re.search(r"^[0-9a-f]{32} pending$", out, re.M)
