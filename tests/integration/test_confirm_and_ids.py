"""Confirmations that protect, and identifiers people can type (``kok`` against a real relay).

Without a terminal, ``network admit`` and ``org enrol`` never skip the fingerprint comparison
silently: they need ``--yes`` or ``--fingerprint FP`` (which must match). Inside one's own
org a staff id may leave out the org; staff ids from names follow German transliteration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.integration.kokcli import kok, ok
from tests.integration.people import unique

FINGERPRINT = re.compile(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}")


def test_admit_and_enrol_need_yes_or_the_right_fingerprint_without_a_terminal(
        shared_relay: Any, tmp_path: Path) -> None:
    relay, home = shared_relay, tmp_path / "home"
    org_id = unique("ost")
    request = tmp_path / "ost.request"
    made = ok(kok("org", "new", org_id, "--name", "Beratungsstelle Ost", "--relay", relay.url,
                  "--network", str(relay.anchor_path), "--out", str(request),
                  home=home, profile=org_id))
    printed = FINGERPRINT.search(made.out)
    assert printed

    silent = kok("network", "admit", str(request), home=relay.home, profile="network")
    refusal = silent.err.strip().splitlines()[-1]  # after the fingerprint to compare
    assert silent.code == 2 and org_id in refusal and "--yes" in refusal
    wrong = kok("network", "admit", str(request), "--fingerprint", "AAAA " * 7 + "AAAA",
                home=relay.home, profile="network")
    assert wrong.code == 2 and printed.group(0) in wrong.err.strip().splitlines()[-1]
    assert kok("org", "activate", home=home, profile=org_id).code != 0  # nothing admitted
    ok(kok("network", "admit", str(request), "--fingerprint", printed.group(0),
           home=relay.home, profile="network"))
    ok(kok("org", "activate", home=home, profile=org_id))

    staff_request = tmp_path / "juergen.request"
    made = ok(kok("staff", "new", "--org", org_id, "--name", "Jürgen Groß", "--relay",
                  relay.url, "--network", str(relay.anchor_path), "--out", str(staff_request),
                  home=home, profile="juergen"))
    assert f"{org_id}/juergen-gross" in made.out  # ü -> ue, ß -> ss
    silent = kok("org", "enrol", str(staff_request), home=home, profile=org_id)
    assert silent.code == 2 and "juergen-gross" in silent.err.strip().splitlines()[-1]
    ok(kok("org", "enrol", str(staff_request), "--yes", home=home, profile=org_id))
    removed = ok(kok("org", "remove", "juergen-gross", home=home, profile=org_id))
    assert f"{org_id}/juergen-gross" in removed.out
