"""The ``kok`` command end to end, exactly as the issue writes the flow, against a real relay."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.integration.kokcli import kok, ok
from tests.integration.people import unique

FINGERPRINT = re.compile(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}")


def onboard_org(relay: Any, home: Path, org_id: str, tmp: Path) -> None:
    """org new -> network admit -> org activate, checking what each step prints."""
    request = tmp / f"{org_id}.request"
    made = ok(kok("org", "new", org_id, "--name", f"Beratungsstelle {org_id}", "--relay",
                  relay.url, "--network", str(relay.anchor_path), "--out", str(request),
                  home=home, profile=org_id))
    printed = FINGERPRINT.search(made.out)
    assert printed and request.exists()
    # the office profile remembers its relay; the fingerprint read out by phone is asserted
    admitted = ok(kok("network", "admit", str(request), "--fingerprint", printed.group(0),
                      home=relay.home, profile="network"))
    assert printed.group(0) in admitted.err  # shown to the office to compare by phone
    assert f"{org_id}" in admitted.out
    assert "active" in ok(kok("org", "activate", home=home, profile=org_id)).out


def onboard_staff(relay: Any, home: Path, org_id: str, name: str, tmp: Path) -> str:
    request = tmp / f"{org_id}-{name}.request"
    made = ok(kok("staff", "new", "--org", org_id, "--name", name.title(), "--relay", relay.url,
                  "--network", str(relay.anchor_path), "--out", str(request),
                  home=home, profile=name))
    assert f"{org_id}/{name}" in made.out
    printed = FINGERPRINT.search(made.out)
    assert printed
    enrolled = ok(kok("org", "enrol", str(request), "--fingerprint", printed.group(0).lower(),
                      home=home, profile=org_id))
    assert f"{org_id}/{name}" in enrolled.out
    return f"{org_id}/{name}"


def test_the_whole_flow_through_the_cli(shared_relay: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    nord, sued = unique("nord"), unique("sued")
    onboard_org(shared_relay, home, nord, tmp_path)
    onboard_org(shared_relay, home, sued, tmp_path)
    anna = onboard_staff(shared_relay, home, nord, "anna", tmp_path)
    ben = onboard_staff(shared_relay, home, sued, "ben", tmp_path)

    body_file = tmp_path / "body.txt"
    body_file.write_text("Frau K.: Termin bei der Ausländerbehörde am 3. März.\nZweite Zeile.")
    sent = ok(kok("--json", "send", "--to", sued, "--subject", "Fallberatung 17", "--body-file",
                  str(body_file), "--ttl", "2d", home=home, profile="anna"))
    message_id = json.loads(sent.out)["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", message_id)

    synced = ok(kok("sync", home=home, profile="ben"))
    assert "1 new message," in synced.out and message_id[:8] in synced.out
    inbox = json.loads(ok(kok("--json", "inbox", home=home, profile="ben")).out)
    assert len(inbox) == 1
    entry = inbox[0]
    assert {"id", "from_org", "from_staff", "subject", "sent", "attachments"} <= set(entry)
    assert (entry["id"], entry["from_org"], entry["from_staff"], entry["subject"],
            entry["attachments"]) == (message_id, nord, anna, "Fallberatung 17", [])
    assert "body" not in entry

    read = json.loads(ok(kok("--json", "read", message_id[:6], home=home, profile="ben")).out)
    assert read["body"] == body_file.read_text() and read["id"] == message_id
    text = ok(kok("read", message_id[:6], home=home, profile="ben")).out
    assert f"From: {anna} ({nord})" in text and "Zweite Zeile." in text

    reply = ok(kok("--json", "send", "--to", nord, "--subject", "Re: Fallberatung 17",
                   "--reply-to", message_id[:8], home=home, profile="ben",
                   stdin="Wir kennen uns aus.\n"))
    reply_id = json.loads(reply.out)["id"]
    ok(kok("sync", home=home, profile="anna"))
    got = json.loads(ok(kok("--json", "read", reply_id[:8], home=home, profile="anna")).out)
    assert got["reply_to"] == message_id and got["body"] == "Wir kennen uns aus.\n"
    assert got["from_staff"] == ben

    status = json.loads(ok(kok("--json", "status", message_id[:8], home=home,
                               profile="anna")).out)
    assert (status["state"], status["acknowledged"], status["of"]) == ("pending", 1, 2)
    ok(kok("sync", home=home, profile=sued))
    status = json.loads(ok(kok("--json", "status", message_id, home=home, profile="anna")).out)
    assert (status["state"], status["acknowledged"], status["of"]) == ("delivered", 2, 2)
    # ben opened it with kok read but has not synced since: his read report still waits
    assert "delivered to 2 of 2, read by 0" in ok(kok("status", message_id, home=home,
                                                      profile="anna")).out

    whois = ok(kok("whois", sued, home=home, profile="anna")).out
    assert f"Organisation: {sued}" in whois and ben in whois and "epoch 1" in whois
    assert "Key log:" in whois and FINGERPRINT.search(whois)
    shown = json.loads(ok(kok("--json", "org", "show", home=home, profile=nord)).out)
    assert shown["org_id"] == nord and {s["staff_id"] for s in shown["staff"]} == {
        f"{nord}/admin", anna}

    assert "epoch 2" in ok(kok("org", "rotate", home=home, profile=sued)).out
    retract_id = json.loads(ok(kok("--json", "send", "--to", sued, "--subject", "zurück",
                                   "--body", "x", home=home, profile="anna")).out)["id"]
    retracted = json.loads(ok(kok("--json", "retract", retract_id, home=home,
                                  profile="anna")).out)
    assert retracted["state"] == "retracted"
    assert "0 new messages" in ok(kok("sync", home=home, profile="ben")).out


def test_network_init_writes_an_anchor_and_a_private_keystore(tmp_path: Path) -> None:
    out = tmp_path / "network.json"
    made = ok(kok("network", "init", "--name", "Bundesnetz", "--out", str(out),
                  home=tmp_path / "home", profile="office"))
    anchor = json.loads(out.read_text())
    assert anchor["name"] == "Bundesnetz" and anchor["fingerprint"][:4] in made.out.replace(" ", "")
    keystore = tmp_path / "home" / "office" / "keystore"
    assert keystore.stat().st_mode & 0o777 == 0o600
    assert anchor["network_key"] not in keystore.read_text()
