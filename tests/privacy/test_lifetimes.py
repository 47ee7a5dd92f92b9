"""Each lifetime rule of docs/privacy.md, with the relay's clock moved instead of slept.

A real relay process stores what an exchange leaves behind (a waiting message, a retracted
one, read receipts, a file drop, sessions, a rotation's retired grants). Then the relay's
service runs in this process on the same directory, and ``purge(now)`` is called one second
before and at each item's stated expiry: before, the item is there; at the stated time, its
row is gone, its file is gone, and none of its bytes remain in the raw database or WAL
(secure_delete, and the WAL checkpointed and truncated after the purge).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.config import load_config
from relay.service import RelayService
from relay.store import SqliteStore
from tests.support.lifecycle import Network
from tests.support.relayproc import RelayProcess

SLACK = 120  # seconds between the exchange and reading the rows (a busy test machine)


@dataclass
class Item:
    """One stored row (and file) with its stated expiry and the bytes that must vanish."""

    kind: str
    expires: int
    table: str
    where: str  # SQL condition that finds exactly this row
    key: tuple[Any, ...]
    traces: list[bytes]
    file: Path | None = None

    def still_there(self, db: sqlite3.Connection) -> bool:
        row = db.execute(f"SELECT 1 FROM {self.table} WHERE {self.where}",  # noqa: S608
                         self.key).fetchall()
        return bool(row) or (self.file is not None and self.file.exists())


def _slices(value: bytes) -> list[bytes]:
    """A few 16-byte pieces of a stored value (any one would betray it in a raw scan)."""
    return [value[i:i + 16] for i in range(0, max(1, len(value) - 16), max(16, len(value) // 4))]


def _raw(relay: RelayProcess) -> bytes:
    return b"".join(p.read_bytes() for p in relay.dir.glob("relay.db*"))


async def _exchange(relay: RelayProcess, home: Path) -> None:
    """Leaves sessions open: the relay stops before the clients could log out."""
    net = Network(relay, home)
    try:
        nord = await net.org("nord")
        sued = await net.org("sued")
        anna = await net.staff(nord, "anna")
        assert sued.org_id
        report = home / "bericht.txt"
        report.write_bytes(b"Gutachten\n" * 5000)
        await anna.send([sued.org_id], "wartet", "niemand holt ab", ttl=3600,
                        attachments=[report])
        retracted = await anna.send([sued.org_id], "Versehen", "zurueck", ttl=7200)
        await anna.retract(retracted)
        # a colleague enrolled at sued now fetches two messages and opens one: receipts, one
        # reported read, while the envelopes still wait for sued's admin
        ben = await net.staff(sued, "ben")
        opened = await anna.send([sued.org_id], "gelesen", "geoeffnet", ttl=5400)
        await anna.send([sued.org_id], "abgeholt", "nicht geoeffnet", ttl=5400)
        await ben.sync()
        await ben.read(opened)
        await ben.sync()
        await sued.org.rotate()  # the first epoch's grants are retired
        await asyncio.to_thread(relay.stop)
    finally:
        await net.close()


def _items(relay: RelayProcess, started: int) -> list[Item]:
    config = load_config(relay.dir, env={})
    limits = config.limits
    db = sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True)
    items: list[Item] = []
    try:
        for cursor, sealed, received, expires in db.execute(
                "SELECT cursor, sealed, received, expires FROM messages"):
            assert expires - received in (3600, 5400)  # the TTLs the sender asked for
            items.append(Item("message", expires, "messages", "cursor = ?", (cursor,),
                              _slices(sealed)))
        for key_hash, expires in db.execute("SELECT key_hash, expires FROM idempotency"):
            items.append(Item("idempotency record", expires, "idempotency", "key_hash = ?",
                              (key_hash,), [key_hash]))
        for status_hash, expires in db.execute(
                "SELECT status_hash, expires FROM status_tombstones"):
            items.append(Item("status tombstone", expires, "status_tombstones",
                              "status_hash = ?", (status_hash,), [status_hash]))
        for token_hash, expires in db.execute("SELECT token_hash, expires FROM sessions"):
            assert started + limits.session_ttl <= expires <= started + limits.session_ttl + SLACK
            items.append(Item("session", expires, "sessions", "token_hash = ?", (token_hash,),
                              [token_hash]))
        retired = db.execute("SELECT org_id, epoch, staff_id, sealed, expires FROM grants "
                             "WHERE expires IS NOT NULL").fetchall()
        assert retired, "the rotation left no retired grant"
        for org_id, epoch, staff_id, sealed, expires in retired:
            assert started + limits.max_ttl <= expires <= started + limits.max_ttl + SLACK
            items.append(Item("retired grant", expires, "grants",
                              "org_id = ? AND epoch = ? AND staff_id = ?",
                              (org_id, epoch, staff_id), _slices(sealed)))
        receipts = db.execute("SELECT message_id, staff_id, has_read, expires FROM receipts"
                              ).fetchall()
        assert sorted(r[2] for r in receipts) == [0, 1], receipts
        for message_id, staff_id, _, expires in receipts:
            items.append(Item("read receipt", expires, "receipts",
                              "message_id = ? AND staff_id = ?", (message_id, staff_id),
                              [message_id]))
        for drop_id, expires in db.execute("SELECT id, expires FROM drops"):
            blob = config.blob_path / f"{bytes(drop_id).hex()}.blob"
            assert blob.exists()
            items.append(Item("file drop", expires, "drops", "id = ?", (drop_id,), [drop_id],
                              file=blob))
    finally:
        db.close()
    kinds = {item.kind for item in items}
    assert kinds == {"message", "idempotency record", "status tombstone", "session",
                     "retired grant", "file drop", "read receipt"}, kinds
    return items


async def _purge_step_by_step(relay: RelayProcess, items: list[Item], started: int) -> None:
    config = load_config(relay.dir, env={})
    store = SqliteStore(config.database_path, readers=1)
    service = RelayService(config, store)
    await store.open()
    try:
        await service.start(started)
        for when in sorted({item.expires for item in items}):
            due = [item for item in items if item.expires == when]
            await service.purge(when - 1)
            with sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True) as db:
                for item in due:
                    assert item.still_there(db), f"a {item.kind} went before its stated time"
            raw = _raw(relay)
            for item in due:
                assert any(t in raw for t in item.traces), \
                    f"the scan cannot see the {item.kind}'s bytes, so it would prove nothing"
            await service.purge(when)
            with sqlite3.connect(f"file:{relay.db_path}?mode=ro", uri=True) as db:
                for item in due:
                    assert not item.still_there(db), f"a {item.kind} outlived its stated time"
            raw = _raw(relay)
            for item in due:
                left = [t for t in item.traces if t in raw]
                assert not left, f"bytes of a deleted {item.kind} remain in the database files"
    finally:
        await store.close()


def test_every_item_is_gone_at_its_stated_time_including_its_bytes(tmp_path: Path) -> None:
    started = int(time.time())
    relay = RelayProcess.start(tmp_path / "relay-base", network_profile=True)
    try:
        asyncio.run(_exchange(relay, tmp_path / "home"))
    finally:
        relay.stop()
    items = _items(relay, started)
    asyncio.run(_purge_step_by_step(relay, items, started))
    assert not list((relay.dir / "blobs").iterdir())
