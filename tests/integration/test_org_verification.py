"""An admin's ``org verify`` counts for the whole organisation, through a real relay.

The verification travels as an ``org_verify`` key-log record signed by the org identity key
(SPEC.md section 6.7): colleagues see "verified by your organisation"; a statement signed
by anyone else is refused by the relay and would be refused by every client's log check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client.errors import RelayRefused
from protocol.records import OrgVerify, sign_record
from tests.integration.kokcli import kok, ok
from tests.support.lifecycle import Network


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


async def test_an_admins_verification_reaches_colleagues(net: Network, tmp_path: Path) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna = await net.staff(nord, "anna")
    n, s = str(nord.org_id), str(sued.org_id)
    assert (await anna.whois(s)).verification == "unverified"
    # a staff member's own verification, taken back (kok org unverify)
    code = (await anna.whois(s)).safety_code or ""
    await anna.verify(s, code)
    assert (await anna.whois(s)).verification == "verified"
    assert await anna.unverify(s) == "unverified"
    assert (await anna.whois(s)).verification == "unverified"

    await nord.verify(s, (await nord.whois(s)).safety_code or "")
    assert (await nord.whois(s)).verification == "verified"  # the admin's own profile
    entry = {o.org_id: o for o in await anna.orgs()}[s]
    assert entry.verification == "org_verified" and entry.to_json()["verified"] is True
    assert (await anna.whois(s)).verification == "org_verified"
    # sued's own staff are not told that nord verified sued: it is not their org's statement
    assert (await sued.whois(n)).verification == "unverified"

    await anna.close()  # kok reads the same profile
    shown = ok(kok("whois", s, home=tmp_path, profile=f"{n}.anna")).out
    assert "Verified by your organisation" in shown
    as_json = json.loads(ok(kok("--json", "whois", s, home=tmp_path, profile=f"{n}.anna")).out)
    assert as_json["verification"] == "org_verified"

    # taking back what this profile never verified is refused and changes nothing; taking
    # back its own verification leaves the organisation's, which the admin signed
    def anna_kok(*args: str) -> Any:
        return kok(*args, home=tmp_path, profile=f"{n}.anna")

    refused = anna_kok("--json", "org", "unverify", s, "--yes")
    assert refused.code != 0 and json.loads(refused.err)["error"]["code"] == "not_verified_here"
    ok(anna_kok("org", "verify", s, code))
    shown = ok(anna_kok("org", "unverify", s, "--yes")).out
    assert "no longer marked as verified" in shown and "for everyone: that" in shown
    as_json = json.loads(ok(anna_kok("--json", "whois", s)).out)
    assert as_json["verification"] == "org_verified"


async def test_a_statement_not_signed_by_the_org_identity_is_refused(net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, bert = await net.staff(nord, "anna"), await net.staff(nord, "bert")
    s = str(sued.org_id)
    sued_key = nord.directory.log.orgs[s].identity_key
    forged = OrgVerify(org_id=str(nord.org_id), subject=s, identity_key=sued_key,
                       created=anna.now())
    api = await anna.api()
    with pytest.raises(RelayRefused) as refused:
        await api.append(sign_record(forged, anna.signing_key()))  # a member's device key
    assert refused.value.code == "wrong_signer"
    await bert.sync_log()
    assert (await bert.whois(s)).verification == "unverified"
    assert s not in bert.directory.log.orgs[str(nord.org_id)].verified
