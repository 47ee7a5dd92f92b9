"""Identity rekey, verification by safety code, and revocation, through ``kok`` and the library.

Each test names the protection it exercises; removing that protection makes it fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from client.errors import AccessError
from protocol import b64encode
from tests.integration.kokcli import kok, kok_env, ok
from tests.support.lifecycle import Network, relay_call

SAFETY_CODE = re.compile(r"\d{5}(?: \d{5}){5}")
FINGERPRINT = re.compile(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}")


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


async def test_rekey_verification_and_warnings(net: Network, tmp_path: Path) -> None:
    """Checks the safety code, ``org verify``, and that a changed identity is never silent.

    sued's admin replaces the org identity key (request file, countersigned by the network
    office); nord's admin had verified sued, so whois, inbox, read and send all warn (send
    refuses) until the new code is compared. Also: the admin switches to the new key on
    sync and renews the epoch under it; a replayed request is refused.
    """
    nord, sued = await net.org("nord"), await net.org("sued")
    ben = await net.staff(sued, "ben")
    await ben.sync()
    n, s = str(nord.org_id), str(sued.org_id)

    def cli(profile: str, *args: str, **env: str) -> Any:
        return kok(*args, home=tmp_path, profile=profile, env=kok_env(**env) if env else None)

    code = SAFETY_CODE.search(ok(cli(n, "whois", s)).out)
    assert code is not None
    assert code.group(0) in ok(cli(s, "whois", n)).out  # both sides compute the same code
    wrong = cli(n, "--json", "org", "verify", s, "12345 12345 12345 12345 12345 12345")
    assert wrong.code == 1
    assert json.loads(wrong.error_line)["error"]["code"] == "safety_code_mismatch"
    assert json.loads(ok(cli(n, "--json", "whois", s)).out)["verification"] == "unverified"
    ok(cli(n, "org", "verify", s, *code.group(0).split()))
    assert json.loads(ok(cli(n, "--json", "whois", s)).out)["verification"] == "verified"

    message_id = await ben.send(to=[n], subject="vor dem Schlüsselwechsel", body="Hallo")
    await nord.close()  # from here on nord's admin uses kok only

    request = tmp_path / "sued.rekey"
    made = ok(cli(s, "org", "rekey", "--out", str(request)))
    new_fp = FINGERPRINT.search(made.out)
    assert new_fp is not None
    shown = json.loads(ok(cli(s, "--json", "org", "show")).out)
    assert shown["fingerprint"] != new_fp.group(0).replace(" ", "")  # not before countersigning

    office = ["--profile", "network", "network", "rekey-org", str(request), "--relay",
              net.relay.url, "--yes"]
    signed = kok(*office, home=net.relay.home)
    assert signed.code == 0, signed.err
    assert new_fp.group(0) in signed.err  # shown to the office to compare by phone
    replayed = kok("--json", *office, home=net.relay.home)
    assert replayed.code == 1
    assert json.loads(replayed.error_line)["error"]["code"] == "log_key_reused"

    report = json.loads(ok(cli(s, "--json", "sync")).out)
    assert report["identity_switched"] is True
    assert (report["rotated"], report["rotation_reason"]) == (2, "identity")
    shown = json.loads(ok(cli(s, "--json", "org", "show")).out)
    assert shown["fingerprint"] == new_fp.group(0).replace(" ", "") and shown["epoch"] == 2
    assert (await ben.sync()).epoch_keys == 1  # the grant signed by the new key is accepted

    whois = ok(cli(n, "whois", s)).out
    assert "WARNING" in whois and "changed" in whois
    assert "WARNUNG" in ok(cli(n, "whois", s, LANG="de_DE.UTF-8")).out
    assert json.loads(ok(cli(n, "--json", "whois", s)).out)["verification"] == "changed"
    ok(cli(n, "sync"))
    assert "Warning: the identity key of" in ok(cli(n, "inbox")).out
    read = ok(cli(n, "read", message_id[:8])).out
    assert read.splitlines()[0].startswith("WARNING")
    assert json.loads(ok(cli(n, "--json", "read", message_id[:8])).out)["identity_changed"]
    refused = cli(n, "--json", "send", "--to", s, "--subject", "x", "--body", "y")
    assert refused.code == 1
    assert json.loads(refused.error_line)["error"]["code"] == "identity_changed"

    new_code = SAFETY_CODE.search(ok(cli(n, "whois", s)).out)
    assert new_code is not None and new_code.group(0) != code.group(0)
    ok(cli(n, "org", "verify", s, new_code.group(0)))
    ok(cli(n, "send", "--to", s, "--subject", "nach dem Wechsel", "--body", "geht wieder"))
    assert [m.subject for m in (await ben.sync()).messages] == ["nach dem Wechsel"]


async def test_a_revoked_org_can_neither_send_nor_receive(net: Network, tmp_path: Path) -> None:
    """Checks revocation: relay ends sessions and refuses; clients refuse both directions.

    A message the revoked org sent before its revocation but that is fetched after it is
    quarantined (``sender_invalid``): a revoked org is no longer believed.
    """
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    n, s = str(nord.org_id), str(sued.org_id)
    await ben.send(to=[n], subject="kurz vor dem Ausschluss", body="...")
    token = (await ben.api()).token

    done = ok(kok("--profile", "network", "network", "revoke-org", s, "--reason",
                  "left the network", "--relay", net.relay.url, home=net.relay.home))
    assert s in done.out

    report = await anna.sync()
    assert report.messages == () and [q.code for q in report.quarantined] == ["sender_invalid"]
    assert await anna.inbox() == []
    with pytest.raises(AccessError) as to_revoked:
        await anna.send(to=[s], subject="x", body="y")
    assert to_revoked.value.code == "org_revoked"
    epoch = anna.directory.log.org(s).epochs[-1]
    status, answer = await relay_call(  # around the client's own check: the relay refuses
        net.relay.url, "POST", "/v1/messages", token=(await anna.api()).token,
        body={"idempotency_key": b64encode(bytes(16)), "ttl": 3600,
              "envelopes": [{"to_org": s, "epoch": epoch.number, "sealed": b64encode(bytes(64))}]})
    assert (status, answer["code"]) == (422, "recipient_unknown")

    with pytest.raises(AccessError) as as_revoked:
        await ben.sync()
    assert as_revoked.value.code == "own_org_revoked"
    status, _ = await relay_call(net.relay.url, "GET", "/v1/messages", token=token)
    assert status == 401
    status, answer = await relay_call(net.relay.url, "POST", "/v1/auth/challenge",
                                      body={"staff_id": ben.staff_id})
    assert (status, answer["code"]) == (403, "not_enrolled")
    assert "Revoked" in ok(kok("whois", s, home=tmp_path, profile=n)).out
