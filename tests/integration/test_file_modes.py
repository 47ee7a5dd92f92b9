"""Every file the relay and ``kok`` create is 0600 and every folder 0700, whatever the umask.

A relay directory and a profile hold the store, the blobs, the keystore and the mailbox; a
counselling centre's laptop or server may be shared, so nothing may be readable by others even
when the person's umask is the usual 022.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.kokcli import kok, ok
from tests.integration.people import close_all, new_org, new_staff, open_office, unique
from tests.support.relayproc import RelayProcess


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The common default umask, inherited by the relay and ``kok`` processes."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def too_open(root: Path) -> list[str]:
    """Paths under ``root`` (itself included) whose mode is not 0600 (files) or 0700 (folders)."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        want = 0o700 if stat.S_ISDIR(mode) else 0o600
        if stat.S_IMODE(mode) != want:
            found.append(f"{path.relative_to(root.parent)}: {stat.S_IMODE(mode):o}")
    return found


async def test_relay_and_client_files_are_private_after_an_exchange(
        tmp_path: Path, open_umask: None) -> None:
    relay = RelayProcess.start(tmp_path / "base", network_profile=True)
    try:
        home = tmp_path / "home"
        office = await open_office(relay)
        nord = await new_org(relay, home, office, unique("nord"))
        sued = await new_org(relay, home, office, unique("sued"))
        anna = await new_staff(relay, home, nord, "anna")
        ben = await new_staff(relay, home, sued, "ben")
        await close_all(office, nord, sued, anna, ben)
        letter = tmp_path / "brief.pdf"
        letter.write_bytes(os.urandom(50_000))
        sent = json.loads(ok(kok("--json", "send", "--to", sued.org_id, "--subject", "s",
                                 "--body", "b", "--attach", str(letter), home=home,
                                 profile=f"{nord.org_id}.anna")).out)
        reader = f"{sued.org_id}.ben"
        ok(kok("sync", home=home, profile=reader))
        target = tmp_path / "ablage"
        ok(kok("save", sent["id"][:8], "--dir", str(target), "--mkdir", home=home,
               profile=reader))
        assert (target / "brief.pdf").read_bytes() == letter.read_bytes()
        assert list(relay.dir.glob("relay.db*")) and list((relay.dir / "blobs").rglob("*"))
        assert too_open(relay.dir) == []
        assert too_open(home) == []
        assert too_open(target) == []
    finally:
        relay.stop()
