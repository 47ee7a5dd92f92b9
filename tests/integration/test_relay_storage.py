"""What the relay keeps after an exchange: ciphertext and routing only.

Scans the relay's raw database files (main, -wal, -shm) and blob folder for the subject
and body (found nowhere, in any encoding a careless store might use), and checks row by
row that nothing stored about a message names its sender: the sender's staff id, key and
fingerprint appear only in the public key log (and in the login tables, which say who is
logged in, not who sent what) and, for a
message to the sender's own organisation, in the list of who still has to read it.
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path
from typing import Any

from protocol import b64encode, fingerprint
from tests.integration.people import close_all, new_org, new_staff, open_office

SUBJECT = "Fallberatung Z-5521 Menschenhandel Verdacht"
BODY = "Die Klientin M. aus Rumänien wurde in Dortmund in einer Wohnung festgehalten."
# Tables that say who is logged in (and when a device last did) or holds which epoch key:
# they name staff by design.
LOGIN_TABLES = {"sessions", "challenges", "grants", "device_seen"}
PUBLIC_LOG = {"log_entries"}


def needles(text: str) -> list[bytes]:
    raw = text.encode("utf-8")
    return [raw, text.encode("utf-16-le"), base64.b64encode(raw), b64encode(raw).encode(),
            raw.hex().encode()]


def raw_bytes(relay_dir: Path) -> bytes:
    """The database files and every blob, as bytes."""
    data = b""
    for path in sorted(relay_dir.rglob("*")):
        if path.is_file() and (path.name.startswith("relay.db") or "blobs" in path.parts):
            data += path.read_bytes()
    return data


def tables_naming(db_path: Path, values: list[str | bytes]) -> dict[str, int]:
    """For each table, how many rows contain any of ``values`` in any column."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        found: dict[str, int] = {}
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in names:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 (names from the db)
                for cell in row:
                    blob = cell.encode() if isinstance(cell, str) else cell
                    if isinstance(blob, bytes) and any(
                            (v.encode() if isinstance(v, str) else v) in blob for v in values):
                        found[table] = found.get(table, 0) + 1
                        break
        return found
    finally:
        db.close()


def assert_no_trace(relay: Any, sender: Any, received: int = 0) -> None:
    """``received``: how many messages ``sender`` has fetched (each leaves one read receipt
    naming them as a recipient, never as the sender)."""
    data = raw_bytes(relay.dir)
    # Positive control: the scan does see plaintext where the relay keeps it (the public log).
    assert sender.staff_id.encode() in data
    for text in (SUBJECT, BODY, "Rumänien", "Dortmund"):
        for needle in needles(text):
            assert needle not in data, f"{text!r} found in the relay's files"
    signing = sender.signing_key()
    sender_marks: list[str | bytes] = [sender.staff_id, signing.public, b64encode(signing.public),
                                       fingerprint(signing.public)]
    tables = tables_naming(relay.db_path, sender_marks)
    assert "log_entries" in tables  # the check can see the staff id where it is public
    # "deliveries" and "device_deliveries" list who (which device) still has to fetch a
    # message: the sender may be there only as a recipient of a message to their own
    # organisation, never for a message they sent. "receipts" lists who fetched (and read) a
    # message: one row for each message the person fetched, none for what they sent.
    pending = {"deliveries", "device_deliveries"}
    assert set(tables) <= PUBLIC_LOG | LOGIN_TABLES | pending | {"receipts"}, tables
    assert tables.get("receipts", 0) == received, tables
    db = sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True)
    try:
        orgs = set()
        for table in sorted(pending):
            orgs |= set(db.execute(
                f"SELECT DISTINCT m.to_org FROM {table} d JOIN messages m "  # noqa: S608
                "ON m.cursor = d.message WHERE d.staff_id = ?", (sender.staff_id,)).fetchall())
    finally:
        db.close()
    assert orgs <= {(sender.org_id,)}


async def test_the_relay_stores_neither_text_nor_sender(relay: Any, tmp_path: Path) -> None:
    office = await open_office(relay)
    nord = await new_org(relay, tmp_path, office, "nord")
    sued = await new_org(relay, tmp_path, office, "sued")
    anna = await new_staff(relay, tmp_path, nord, "anna")
    ben = await new_staff(relay, tmp_path, sued, "ben")
    try:
        message_id = await anna.send(to=["sued"], subject=SUBJECT, body=BODY)
        db = sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True)
        stored = db.execute("SELECT to_org, epoch, length(sealed) FROM messages").fetchall()
        db.close()
        assert stored and stored[0][0] == "sued"  # the envelope is there, as ciphertext
        assert_no_trace(relay, anna)  # while the envelope waits in the mailbox

        await ben.sync()
        assert (await ben.read(message_id)).body == BODY
        await ben.send(to=["nord"], subject="Re: " + SUBJECT, body=BODY + " Antwort.",
                       reply_to=message_id)
        assert_no_trace(relay, anna)  # after the exchange
        assert_no_trace(relay, ben, received=1)
        for text in (SUBJECT, BODY):
            assert text not in relay.log_text()
    finally:
        await close_all(office, nord, sued, anna, ben)
