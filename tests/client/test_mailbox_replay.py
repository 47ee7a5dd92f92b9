"""Replays are recognised by sender and id (SPEC 9.3 step 14), and a version-1 mailbox
upgrades to that rule with every message kept."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from client.mailbox import MailboxStore
from kokshared.schema import schema_files

MESSAGE_ID = "ab" * 16
GENUINE: dict[str, object] = {
           "id": MESSAGE_ID, "from_org": "nord", "from_staff": "nord/anna", "to": ["sued"],
           "subject": "Rückfrage", "body": "Termin am Montag?", "sent": 1_700_000_000,
           "expires": 1_700_600_000, "thread": "00" * 16, "reply_to": None,
           "attachments": []}


async def test_another_senders_message_with_the_same_id_does_not_block_the_genuine(
        tmp_path: Path) -> None:
    """A co-recipient org that learned the id sends first; the genuine message still counts."""
    store = await MailboxStore.open(tmp_path / "state.db", secrets.token_bytes(32))
    try:
        squatter = {**GENUINE, "from_org": "ost", "from_staff": "ost/eve", "body": "Hallo"}
        assert await store.add_message(MESSAGE_ID, "r1", 5, squatter)
        assert await store.add_message(MESSAGE_ID, "r2", 6, GENUINE)
        assert not await store.add_message(MESSAGE_ID, "r3", 7, GENUINE)  # a true replay
        bodies = [data["body"] for data, _received, _read in await store.messages()]
        assert bodies == ["Hallo", "Termin am Montag?"]
    finally:
        await store.close()


async def test_the_sender_is_not_stored_in_clear(tmp_path: Path) -> None:
    store = await MailboxStore.open(tmp_path / "state.db", secrets.token_bytes(32))
    try:
        await store.add_message(MESSAGE_ID, "r1", 5, GENUINE)
    finally:
        await store.close()
    assert b"nord/anna" not in (tmp_path / "state.db").read_bytes()


async def test_a_version_1_mailbox_upgrades_keeping_its_messages_in_order(
        tmp_path: Path) -> None:
    path, key = tmp_path / "state.db", secrets.token_bytes(32)
    sealer = MailboxStore(None, key)  # type: ignore[arg-type]  # only to seal rows as v1 did
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.executescript(dict(schema_files("client"))[1])
    db.execute("INSERT INTO schema_version (version) VALUES (1)")
    for n, message_id in enumerate(("ff" * 16, "00" * 16)):  # rowid order, not id order
        data = {**GENUINE, "id": message_id, "body": f"alt {n}"}
        db.execute("INSERT INTO messages (id, relay_id, received, read_at, box) "
                   "VALUES (?, ?, ?, NULL, ?)",
                   (message_id, f"r{n}", n, sealer._seal(f"message:{message_id}", data)))
    db.commit()
    db.close()
    store = await MailboxStore.open(path, key)
    try:
        assert [d["body"] for d, _r, _t in await store.messages()] == ["alt 0", "alt 1"]
        assert await store.message("00" * 16) is not None
        assert await store.add_message("ab" * 16, "r9", 9, GENUINE)
    finally:
        await store.close()
    rows = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert rows == [(version,) for version, _ in schema_files("client")]
