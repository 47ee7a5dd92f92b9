"""A member org cannot take over a colleague's terminal through what it sends.

Attack: the subject, body and attachment-free message of another org carry terminal escape
sequences (clear screen, set window title, move the cursor to overwrite a warning) and a
bidirectional override. ``kok inbox`` and ``kok read`` must show them as visible escapes.
This fails if ``client.safetext.printable`` is taken out of ``client/i18n.t`` or the CLI's
output path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.kokcli import kok, ok
from tests.integration.people import close_all, new_org, new_staff, open_office, unique

HOSTILE_SUBJECT = "Rückfrage\x1b[2J\x1b]0;pwned\x07 \u202eexe.fdp"
HOSTILE_BODY = "Hallo\n\x1b[1A\x1b[2KFingerprint: AAAA BBBB\rok"


async def test_escape_sequences_from_another_org_are_shown_not_obeyed(
        shared_relay: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    office = await open_office(shared_relay)
    sender_admin = await new_org(shared_relay, home, office, unique("hostile"))
    receiver_admin = await new_org(shared_relay, home, office, unique("target"))
    sender = await new_staff(shared_relay, home, sender_admin, "mallory")
    receiver_org = str(receiver_admin.org_id)
    await sender.send(to=[receiver_org], subject=HOSTILE_SUBJECT, body=HOSTILE_BODY)
    await close_all(sender, sender_admin, receiver_admin, office)

    ok(kok("sync", home=home, profile=receiver_org))
    inbox = ok(kok("inbox", home=home, profile=receiver_org)).out
    assert "Rückfrage" in inbox
    listed = ok(kok("--json", "inbox", home=home, profile=receiver_org))
    ident = json.loads(listed.out)[0]["id"]
    shown = ok(kok("read", ident[:10], home=home, profile=receiver_org)).out
    for out in (inbox, shown):
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "\\u001b" in out  # shown, visibly, not dropped silently
    assert "\r" not in shown  # a carriage return cannot overwrite the line before
    # --json keeps the exact text for programs (JSON escapes it)
    assert json.loads(listed.out)[0]["subject"] == HOSTILE_SUBJECT
