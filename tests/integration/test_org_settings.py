"""An organisation's settings reach every colleague's client, through a real relay.

They travel as an ``org_settings`` key-log record signed by the org identity key (SPEC.md
section 6.8): colleagues follow them, other organisations can read them, and a record
signed by anyone else (a member's device, an identity key replaced since) is refused by the
relay and would be refused by every client's log check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client.errors import RelayRefused, UsageError
from protocol.records import OrgSettings, sign_record
from tests.integration.kokcli import kok, ok
from tests.support.lifecycle import Network


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


async def test_an_admins_settings_reach_colleagues_and_other_orgs(net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna = await net.staff(nord, "anna")
    n = str(nord.org_id)
    before = await anna.org_settings()
    assert (before.read_reports, before.retention_days, before.is_default) == (True, 30, True)

    await nord.set_org_settings(read_reports=False, retention_days=7)
    mine = await anna.org_settings()
    assert (mine.org_id, mine.read_reports, mine.retention_days) == (n, False, 7)
    assert not mine.is_default
    theirs = await sued.org_settings(n)  # published: another org can read them
    assert (theirs.read_reports, theirs.retention_days) == (False, 7)
    assert (await sued.org_settings()).is_default  # sued's own are untouched

    # a field not given keeps its value; the newest record wins
    await nord.set_org_settings(retention_days=90)
    again = await anna.org_settings()
    assert (again.read_reports, again.retention_days) == (False, 90)
    with pytest.raises(UsageError) as refused:
        await anna.set_org_settings(retention_days=5)  # a staff profile is no admin
    assert refused.value.code == "not_org_profile"
    with pytest.raises(UsageError) as bounds:
        await nord.set_org_settings(retention_days=0)
    assert bounds.value.code == "retention_out_of_range"


async def test_settings_not_signed_by_the_current_identity_key_are_refused(
        net: Network) -> None:
    nord = await net.org("nord")
    anna, bert = await net.staff(nord, "anna"), await net.staff(nord, "bert")
    n = str(nord.org_id)
    forged = OrgSettings(org_id=n, read_reports=False, retention_days=3650, created=anna.now())
    api = await anna.api()
    with pytest.raises(RelayRefused) as by_member:
        await api.append(sign_record(forged, anna.signing_key()))  # a member's device key
    assert by_member.value.code == "wrong_signer"

    old = nord.org.identity_key()
    request, _ = await nord.org.rekey()
    assert net.office is not None
    await net.office.network.rekey_org(request)
    await nord.sync()  # the admin switches to the countersigned key
    assert nord.org.identity_key().public != old.public
    with pytest.raises(RelayRefused) as stale:
        await (await nord.api()).append(sign_record(forged, old))
    assert stale.value.code == "wrong_signer"

    shown = await bert.org_settings()
    assert (shown.read_reports, shown.retention_days, shown.is_default) == (True, 30, True)
    assert bert.directory.log.orgs[n].settings is None


async def test_kok_org_settings_shows_and_changes_them(net: Network, tmp_path: Path) -> None:
    nord = await net.org("nord")
    n = str(nord.org_id)
    await nord.close()  # kok opens the same profile
    shown = ok(kok("org", "settings", home=tmp_path, profile=n)).out
    assert "Read reports: on" in shown and "30 days" in shown and "defaults" in shown
    changed = json.loads(ok(kok("--json", "org", "settings", "--read-reports", "off",
                                "--retention", "2w", home=tmp_path, profile=n)).out)
    assert changed == {**changed, "org_id": n, "read_reports": False, "retention_days": 14,
                       "default": False}
    half_day = kok("org", "settings", "--retention", "12h", home=tmp_path, profile=n)
    assert half_day.code != 0 and "whole number of days" in half_day.err
    too_long = kok("--json", "org", "settings", "--retention", "3651d", home=tmp_path,
                   profile=n)
    assert too_long.code != 0 and "retention_out_of_range" in too_long.err
    after = json.loads(ok(kok("--json", "org", "settings", home=tmp_path, profile=n)).out)
    assert (after["read_reports"], after["retention_days"]) == (False, 14)
