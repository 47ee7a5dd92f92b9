"""The local mailbox: schema, encryption at rest, duplicates, id prefixes, tampering."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from client.errors import UsageError
from client.mailbox import MailboxCorrupt, MailboxStore
from kokshared.schema import schema_files
from protocol.keylog import Head

SUBJECT = "Rückfrage zu Fall 4711 Frau K."
BODY = "Aufenthaltstitel läuft am 3. März ab; Termin bei der Ausländerbehörde?"


def message(message_id: str) -> dict[str, object]:
    return {"id": message_id, "from_org": "nord", "from_staff": "nord/anna", "to": ["sued"],
            "subject": SUBJECT, "body": BODY, "sent": 1_700_000_000, "expires": 1_700_600_000,
            "thread": "00" * 16, "reply_to": None, "attachments": []}


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    key = secrets.token_bytes(32)
    box = await MailboxStore.open(tmp_path / "state.db", key)
    yield box
    await box.close()


def test_schema_files_are_numbered_from_one_without_gaps() -> None:
    versions = [v for v, _ in schema_files("client")]
    assert versions == list(range(1, len(versions) + 1))


async def test_reopening_does_not_apply_the_schema_twice(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    first = await MailboxStore.open(tmp_path / "state.db", key)
    await first.add_message("ab" * 16, "r1", 5, message("ab" * 16))
    await first.close()
    second = await MailboxStore.open(tmp_path / "state.db", key)
    assert len(await second.messages()) == 1
    await second.close()
    rows = sqlite3.connect(tmp_path / "state.db").execute(
        "SELECT version FROM schema_version").fetchall()
    assert rows == [(v,) for v, _ in schema_files("client")]  # each applied once
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600


async def test_messages_are_encrypted_at_rest(tmp_path: Path, store: MailboxStore) -> None:
    await store.add_message("ab" * 16, "r1", 5, message("ab" * 16))
    await store.add_sent("cd" * 16, 5, {"subject": SUBJECT, "token": "secret-status-token"})
    await store.quarantine("r9", 6, "bad_signature", {"detail": SUBJECT})
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state.db"))
    for needle in (SUBJECT, BODY, "nord/anna", "secret-status-token"):
        assert needle.encode("utf-8") not in raw, needle
    (data, _, read_at), = await store.messages()
    assert data["body"] == BODY and read_at is None


async def test_duplicate_ids_are_dropped(store: MailboxStore) -> None:
    assert await store.add_message("ab" * 16, "r1", 5, message("ab" * 16))
    assert not await store.add_message("ab" * 16, "r2", 6, message("ab" * 16))
    assert len(await store.messages()) == 1
    assert await store.seen_relay_id("r1") and not await store.seen_relay_id("r2")


async def test_ids_resolve_by_unique_prefix(store: MailboxStore) -> None:
    first, second = "abcd" + "0" * 28, "abce" + "0" * 28
    for n, mid in enumerate((first, second)):
        await store.add_message(mid, f"r{n}", 5, message(mid))
    assert await store.resolve_id("ABCD") == first
    assert await store.resolve_id(first) == first
    for prefix, code in (("abc", "bad_message_id"),  # shorter than 4 characters
                         ("abcd1", "unknown_message"),
                         ("xyz%", "bad_message_id"),
                         ("abc_", "bad_message_id")):
        with pytest.raises(UsageError) as refused:
            await store.resolve_id(prefix)
        assert refused.value.code == code, prefix
    await store.add_message("abcd" + "f" * 28, "r9", 5, message("abcd" + "f" * 28))
    with pytest.raises(UsageError) as ambiguous:
        await store.resolve_id("abcd")
    assert ambiguous.value.code == "ambiguous_message"
    assert await store.resolve_id("abcdf") == "abcd" + "f" * 28


async def test_a_row_swapped_on_disk_does_not_open(tmp_path: Path, store: MailboxStore) -> None:
    await store.add_message("aa" * 16, "r1", 5, message("aa" * 16))
    await store.add_message("bb" * 16, "r2", 5, message("bb" * 16))
    db = sqlite3.connect(tmp_path / "state.db")
    box_b = db.execute("SELECT box FROM messages WHERE id = ?", ("bb" * 16,)).fetchone()[0]
    db.execute("UPDATE messages SET box = ? WHERE id = ?", (box_b, "aa" * 16))
    db.commit()
    db.close()
    with pytest.raises(MailboxCorrupt):
        await store.message("aa" * 16)


async def test_another_storage_key_cannot_read_the_mailbox(tmp_path: Path) -> None:
    first = await MailboxStore.open(tmp_path / "state.db", secrets.token_bytes(32))
    await first.add_message("aa" * 16, "r1", 5, message("aa" * 16))
    await first.close()
    other = await MailboxStore.open(tmp_path / "state.db", secrets.token_bytes(32))
    with pytest.raises(MailboxCorrupt):
        await other.messages()
    await other.close()


async def test_log_and_head_round_trip(store: MailboxStore) -> None:
    head = Head(size=1, hash=b"h" * 32, time=7, signature=b"s" * 64)
    await store.save_log([(0, b"record", b"h" * 32)], head)
    assert await store.log_entries() == [(0, b"record", b"h" * 32)]
    assert await store.head() == head
    await store.set_state("cursor", "12")
    assert await store.get_state("cursor") == "12"


class _CancelledAfterCommit:
    """The store's connection, except that awaiting ``COMMIT`` ends cancelled although the
    database thread ran it: what Ctrl-C does to a ``kok listen`` storing the key log."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql != "COMMIT":
            return self._db.execute(sql, *args)

        async def committed_then_cancelled() -> None:
            await self._db.execute(sql)
            raise asyncio.CancelledError

        return committed_then_cancelled()


async def test_a_cancellation_after_the_commit_stays_a_cancellation(
        store: MailboxStore) -> None:
    real = store._db
    store._db = _CancelledAfterCommit(real)  # type: ignore[assignment]
    head = Head(size=1, hash=b"h" * 32, time=7, signature=b"s" * 64)
    with pytest.raises(asyncio.CancelledError):  # not "cannot rollback": Ctrl-C stays Ctrl-C
        await store.save_log([(0, b"record", b"h" * 32)], head)
    store._db = real
    assert await store.log_entries() == [(0, b"record", b"h" * 32)]  # it was committed
    assert await store.head() == head
