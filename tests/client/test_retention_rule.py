"""Local retention in the mailbox: when a message is due, keep, and the tombstone that
refuses a purged message sent again (no relay needed: the store and the rule alone)."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest

from client.mailbox import MailboxStore
from client.retention import DAY, deletes_at
from kokshared.schema import schema_files
from protocol.keylog import MAX_SKEW

EXPIRES = 1_700_600_000


def message(message_id: str, body: str) -> dict[str, object]:
    return {"id": message_id, "from_org": "nord", "from_staff": "nord/anna", "to": ["sued"],
            "subject": "Fall", "body": body, "sent": 1_700_000_000, "expires": EXPIRES,
            "thread": "00" * 16, "reply_to": None, "attachments": []}


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    box = await MailboxStore.open(tmp_path / "state.db", secrets.token_bytes(32))
    yield box
    await box.close()


def test_read_messages_go_after_the_retention_unread_after_three_times_kept_never() -> None:
    assert deletes_at(1000, 5000, False, 30) == 5000 + 30 * DAY
    assert deletes_at(1000, None, False, 30) == 1000 + 90 * DAY
    assert deletes_at(1000, 5000, True, 30) is None
    assert deletes_at(1000, None, True, 1) is None


async def test_a_purged_message_leaves_a_tombstone_that_refuses_it_again(
        store: MailboxStore) -> None:
    first, second = "ab" * 16, "cd" * 16
    assert await store.add_message(first, "r1", 10, message(first, "eins"))
    assert await store.add_message(second, "r2", 10, message(second, "zwei"))
    await store.set_keep(second, True)
    assert await store.kept() == {second}
    assert await store.purge_messages([first, second], MAX_SKEW) == 1  # the kept one stays
    assert [d["id"] for d, _, _ in await store.messages()] == [second]
    # the relay sends the same envelope, or the same message in a new one: both refused
    assert await store.seen_relay_id("r1")
    assert not await store.add_message(first, "r9", 20, message(first, "eins"))
    # once the message has expired no copy is accepted anyway: the tombstone goes
    assert await store.forget_tombstones(EXPIRES + MAX_SKEW) == 0
    assert await store.forget_tombstones(EXPIRES + MAX_SKEW + 1) == 1
    assert not await store.seen_relay_id("r1")


async def test_the_purge_opens_only_sent_records_old_enough_to_go(store: MailboxStore) -> None:
    await store.add_sent("aa" * 16, 1000, {"to": ["sued"], "recipients": []})
    await store.add_sent("bb" * 16, 5000, {"to": ["sued"], "recipients": []})
    assert [i for i, _, _ in await store.sent_all()] == ["aa" * 16, "bb" * 16]
    assert [i for i, _, _ in await store.sent_all(4999)] == ["aa" * 16]
    assert await store.sent_all(999) == []


async def test_a_mailbox_from_before_retention_is_upgraded_keeping_its_messages(
        tmp_path: Path) -> None:
    version = next(v for v, sql in schema_files("client") if "CREATE TABLE purged" in sql)
    path, key = tmp_path / "state.db", secrets.token_bytes(32)
    old = await MailboxStore.open(path, key)
    await old.add_message("ab" * 16, "r1", 10, message("ab" * 16, "alt"))
    await old.close()
    with sqlite3.connect(path) as db:  # back to before retention, as an older kok left it
        assert version == max(v for v, _ in schema_files("client")), "undo later files too"
        db.execute("DROP TABLE purged")
        db.execute("ALTER TABLE messages DROP COLUMN keep")
        db.execute("DELETE FROM schema_version WHERE version >= ?", (version,))
    again = await MailboxStore.open(path, key)
    assert [d["body"] for d, _, _ in await again.messages()] == ["alt"]
    assert await again.kept() == set()
    await again.close()
