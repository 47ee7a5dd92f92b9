"""A killed ``kok save`` leaves decrypted plaintext in a hidden file; the next save removes it."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from client.transfer import remove_plaintext_leftovers
from tests.integration.kokcli import kok, ok
from tests.integration.people import close_all, new_org, new_staff, open_office, unique
from tests.support.relayproc import free_port

SECRET = "Frau K., geboren 1994, Befund vom 3. März".encode()


async def test_the_next_save_removes_what_a_killed_save_left(shared_relay: object,
                                                             tmp_path: Path) -> None:
    home = tmp_path / "home"
    office = await open_office(shared_relay)
    nord = await new_org(shared_relay, home, office, unique("nord"))
    sued = await new_org(shared_relay, home, office, unique("sued"))
    anna = await new_staff(shared_relay, home, nord, "anna")
    ben = await new_staff(shared_relay, home, sued, "ben")
    await close_all(office, nord, sued, anna, ben)
    letter = tmp_path / "brief.txt"
    letter.write_bytes(b"neu")
    sent = ok(kok("--json", "send", "--to", sued.org_id, "--subject", "s", "--body", "b",
                  "--attach", str(letter), home=home, profile=f"{nord.org_id}.anna"))
    message_id = json.loads(sent.out)["id"]
    reader = f"{sued.org_id}.ben"
    ok(kok("sync", home=home, profile=reader))
    target = tmp_path / "ablage"
    target.mkdir()
    # what a save killed mid-way leaves: decrypted plaintext and the ciphertext to resume from
    leftover = target / ".bericht.pdf.0123456789ab.koktmp"
    leftover.write_bytes(SECRET)
    (target / ".bericht.pdf.0123456789ab.kokpart").write_bytes(os.urandom(64))
    # the relay gone: the save fails and says how to go on
    profile_json = home / reader / "profile.json"
    facts = json.loads(profile_json.read_text())
    profile_json.write_text(json.dumps({**facts, "relay": f"http://127.0.0.1:{free_port()}"}))
    down = kok("save", message_id[:8], "--dir", str(target), home=home, profile=reader)
    profile_json.write_text(json.dumps(facts))
    assert down.code == 1 and "Cannot reach the relay" in down.err
    assert "run the same kok save again" in down.err
    assert "Traceback" not in down.err
    ok(kok("save", message_id[:8], "--dir", str(target), home=home, profile=reader))
    assert (target / "brief.txt").read_bytes() == b"neu"
    assert not leftover.exists()
    assert all(SECRET not in p.read_bytes() for p in target.iterdir() if p.is_file())


def test_a_save_in_progress_keeps_its_file(tmp_path: Path) -> None:
    busy = tmp_path / ".a.pdf.0123456789ab.koktmp"
    busy.write_bytes(SECRET)
    stale = tmp_path / ".b.pdf.ba9876543210.koktmp"
    stale.write_bytes(SECRET)
    elsewhere = tmp_path / "c.koktmp.txt"  # not ours: never touched
    elsewhere.write_bytes(b"x")
    with busy.open("r+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running save holds it
        assert remove_plaintext_leftovers(tmp_path) == [stale.name]
        assert busy.read_bytes() == SECRET
    assert not stale.exists() and elsewhere.exists()
