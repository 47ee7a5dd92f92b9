"""Text for people: labelled lines, local time, German, quarantine always reported."""

from __future__ import annotations

import time

import pytest

from client.i18n import local_time
from client.models import DeliveryStatus, Message, Quarantined, RecipientStatus, SyncReport
from client.render import inbox_lines, message_lines, status_lines, sync_lines

SENT = 1_800_000_000


def message(read: bool = False) -> Message:
    return Message(id="ab" * 16, from_org="nord", from_staff="nord/anna", to=("sued",),
                   subject="Rückfrage", body="Zeile eins\nZeile zwei", sent=SENT,
                   expires=SENT + 86400, thread="cd" * 16, reply_to=None, received=SENT,
                   read=read)


def test_dates_are_local_time_with_their_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        assert local_time(SENT) == "2027-01-15 09:00 CET"
        assert local_time(SENT + 180 * 86400) == "2027-07-14 10:00 CEST"  # summer time named
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_message_reads_as_labelled_lines_then_the_body() -> None:
    lines = message_lines(message())
    assert lines[:2] == ["Message: " + "ab" * 16, "From: nord/anna (nord)"]
    assert "Subject: Rückfrage" in lines
    assert lines[-3:] == ["", "Zeile eins", "Zeile zwei"]


def test_inbox_counts_unread_and_marks_them(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = inbox_lines([message(), message(read=True)])
    assert lines[0] == "2 messages, 1 unread."
    assert lines[1].startswith("abababab (unread): from nord/anna")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    assert inbox_lines([message()])[1].startswith("abababab (ungelesen): von nord/anna")


def test_quarantined_envelopes_are_always_reported() -> None:
    report = SyncReport(quarantined=(Quarantined("r1", "wrong_signer", "not its sender", 1),))
    lines = sync_lines(report)
    assert any("failed a check" in line and "wrong_signer" in line for line in lines)


def test_status_per_recipient_when_there_are_several() -> None:
    status = DeliveryStatus(id="ab" * 16, subject="s", recipients=(
        RecipientStatus("sued", "delivered", 2, 2, read=1),
        RecipientStatus("west", "pending", 0, 3, read=0)))
    lines = status_lines(status)
    assert lines[0] == "Message abababab (s): on its way, delivered to 2 of 5, read by 1."
    assert lines[1:] == ["sued: delivered to 2 of 2, read by 1.",
                         "west: on its way, delivered to 0 of 3, read by 0."]


def test_status_says_read_reports_off_rather_than_nobody_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    status = DeliveryStatus(id="ab" * 16, subject="s", recipients=(
        RecipientStatus("sued", "pending", 2, 3, read=1),
        RecipientStatus("west", "delivered", 2, 2, read=0, read_reports=False)))
    lines = status_lines(status)
    # the summary counts readers only where reports are sent; the org line says why not
    assert lines[0] == "Nachricht abababab (s): unterwegs, zugestellt an 4 von 5, von 1 gelesen."
    assert lines[1:] == ["sued: unterwegs, zugestellt an 2 von 3, von 1 gelesen.",
                         "west: zugestellt an 2 von 2, Lesebestätigungen abgeschaltet."]
    only_off = DeliveryStatus(id="ab" * 16, subject="s", recipients=(status.recipients[1],))
    assert " ".join(line.strip() for line in status_lines(only_off)) == (
        "Nachricht abababab (s): zugestellt an 2 von 2, Lesebestätigungen abgeschaltet.")
    assert only_off.to_json()["recipients"][0]["read"] is None
    # an older relay that does not say: no read count at all rather than a wrong 0
    older = DeliveryStatus(id="ab" * 16, subject="s",
                           recipients=(RecipientStatus("sued", "pending", 1, 2),))
    assert status_lines(older)[0] == "Nachricht abababab (s): unterwegs, zugestellt an 1 von 2."
