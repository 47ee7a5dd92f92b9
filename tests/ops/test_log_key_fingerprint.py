"""The relay's log-key fingerprint: printed by ``relay init``, shown by ``kok whois`` and
``kok org show``, and the same everywhere (so a counsellor can compare it with the one the
network office published, as deploy/OPERATOR.md describes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from protocol import SigningKeyPair, format_fingerprint
from relay.config import read_keys
from tests.integration.kokcli import kok, kok_env, ok
from tests.integration.people import close_all, new_org, open_office, unique
from tests.support.relayproc import REPO, RelayProcess


def relay_fingerprint(relay_dir: Path) -> str:
    """What the relay's secret key says its log-key fingerprint is."""
    seed, _ = read_keys(relay_dir / "relay.key")
    return format_fingerprint(SigningKeyPair.from_seed(seed).fingerprint)


def test_relay_init_prints_the_log_key_fingerprint(tmp_path: Path) -> None:
    anchor = REPO / "tests" / "ops" / "fixtures" / "relay_schema2" / "relay" / "network.json"
    result = subprocess.run([sys.executable, "-m", "relay", "init", "--dir",
                             str(tmp_path / "relay"), "--network", str(anchor)],
                            capture_output=True, text=True, cwd=REPO, check=True)
    expected = relay_fingerprint(tmp_path / "relay")
    assert f"Relay log key: {expected}" in result.stdout


async def test_whois_and_org_show_print_the_pinned_relay_log_key(
        relay: RelayProcess, tmp_path: Path) -> None:
    home = tmp_path / "home"
    office = await open_office(relay)
    org_id = unique("fp")
    admin = await new_org(relay, home, office, org_id)
    await close_all(office, admin)
    expected = relay_fingerprint(relay.dir)
    env = kok_env(LANG="en_GB.UTF-8")
    whois = ok(kok("whois", org_id, home=home, profile=org_id, env=env))
    assert f"Relay log key: {expected}." in whois.out
    show = ok(kok("org", "show", home=home, profile=org_id, env=env))
    assert f"Relay log key: {expected}." in show.out
    as_json = ok(kok("--json", "whois", org_id, home=home, profile=org_id, env=env))
    assert format_fingerprint(json.loads(as_json.out)["relay_log_fingerprint"]) == expected
    german = ok(kok("whois", org_id, home=home, profile=org_id, env=kok_env(LANG="de_DE.UTF-8")))
    assert f"Protokollschlüssel des Relays: {expected}." in german.out
