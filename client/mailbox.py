"""The local mailbox (``state.db``): log mirror, cursor, messages encrypted at rest.

Theory of operation
-------------------
One aiosqlite database per profile. Schema files ``client/schema/NNN_name.sql`` are applied
in order inside one transaction each and recorded in ``schema_version``, so an older
``state.db`` is upgraded on open. Public data (the key log, its head, the cursor) is stored
as is. Anything a person wrote or received (subjects, bodies, senders, status tokens,
quarantined envelopes) goes into ``box`` columns sealed with SecretBox under a key derived
from the keystore's ``storage`` key; each box also names the row it belongs to, so rows
swapped on disk fail to open. ``secure_delete`` overwrites deleted rows.

Local retention (``client.retention``) deletes received messages with ``purge_messages``:
the row goes for good (``secure_delete`` zeroes its bytes in the file) and only a tombstone
without content stays, the keyed replay hash and the relay id, until the message's signed
expiry, so a relay cannot bring a deleted message back by sending it again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite
import nacl.exceptions
import nacl.secret

from kokshared.private_files import make_private_dir
from kokshared.schema import schema_files
from protocol import labels
from protocol.encoding import canonical_json, parse_json
from protocol.errors import EncodingError
from protocol.keylog import Head

from .errors import KokError, UsageError
from .i18n import t


def prepare_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (in a 0700 folder) unless it exists."""
    make_private_dir(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def mailbox_key(storage_key: bytes) -> bytes:
    """The SecretBox key for mailbox rows, derived so the storage key can serve other uses."""
    return hashlib.blake2b(labels.STORAGE + b"/mailbox", key=storage_key, digest_size=32).digest()


def withdrawn_record(data: dict[str, Any], when: int) -> dict[str, Any]:
    """A stored message as it stays once its sender withdrew it (at ``when``).

    Sender, recipients, subject and times stay, so the person sees what was withdrawn; the
    body goes, and the attachments with their file keys (the drops are deleted as well).
    """
    return {**data, "body": "", "attachments": [], "withdrawn": when,
            "withdrawn_files": len(data.get("attachments") or ())}


class MailboxCorrupt(KokError):
    """A sealed row does not open: the database was altered or belongs to another keystore."""

    code = "mailbox_corrupt"


class ProfileTampered(KokError):
    """A fact of the profile was changed outside kok: it no longer matches its sealed copy.

    ``what``: ``anchor`` (the network key), ``log_key``, ``head`` or ``verified``.
    """

    code = "profile_tampered"

    def __init__(self, what: str) -> None:
        super().__init__(what=what, item=t(f"tampered.{what}"))
        self.what = what


HEAD_SEAL = "sealed/log_head"
VERIFIED_SEAL = "sealed/verified"
LEGACY_VERIFIED = "verified"


async def _rollback(db: aiosqlite.Connection) -> None:
    """Roll back the open transaction, if there still is one.

    A cancelled ``await`` (Ctrl-C while ``kok listen`` stores the log) does not stop the
    statement it waited for: the database thread may still run the ``COMMIT``, and a
    ``ROLLBACK`` after it fails with "no transaction is active", which would hide the
    cancellation behind an internal error.
    """
    try:
        await db.execute("ROLLBACK")
    except sqlite3.OperationalError:
        if db.in_transaction:
            raise


class MailboxStore:
    """Async access to one profile's ``state.db``."""

    def __init__(self, db: aiosqlite.Connection, storage_key: bytes) -> None:
        self._db = db
        self._box = nacl.secret.SecretBox(mailbox_key(storage_key))
        self._replay_hash_key = hashlib.blake2b(
            labels.STORAGE + b"/replay", key=storage_key, digest_size=32).digest()

    @classmethod
    async def open(cls, path: Path, storage_key: bytes) -> MailboxStore:
        """Open (creating or upgrading) the mailbox at ``path``."""
        await asyncio.to_thread(prepare_private_file, path)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA secure_delete=ON")
            await db.execute("PRAGMA foreign_keys=ON")
            await cls._migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, storage_key)

    @staticmethod
    async def _migrate(db: aiosqlite.Connection) -> None:
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        async with db.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = row[0] if row and row[0] is not None else 0
        for version, sql in schema_files("client"):
            if version <= current:
                continue
            await db.execute("BEGIN")
            try:
                for statement in sql.split(";"):
                    if statement.strip():
                        await db.execute(statement)
                await db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                await db.execute("COMMIT")
            except BaseException:
                await _rollback(db)
                raise

    async def close(self) -> None:
        await self._db.close()

    # --- sealing rows ----------------------------------------------------------------

    def _seal(self, row_key: str, obj: dict[str, Any]) -> bytes:
        plain = canonical_json({"row": row_key, "data": obj})
        return bytes(self._box.encrypt(plain, secrets.token_bytes(24)))

    def _open(self, row_key: str, blob: bytes) -> dict[str, Any]:
        try:
            content = parse_json(self._box.decrypt(blob))
        except (nacl.exceptions.CryptoError, EncodingError):
            raise MailboxCorrupt() from None
        if not isinstance(content, dict) or content.get("row") != row_key:
            raise MailboxCorrupt()
        data = content["data"]
        if not isinstance(data, dict):
            raise MailboxCorrupt()
        return data

    # --- key log mirror --------------------------------------------------------------

    async def log_entries(self) -> list[tuple[int, bytes, bytes]]:
        """Every mirrored ``(index, record bytes, chain hash)``, in order."""
        sql = "SELECT idx, record, hash FROM log_entries ORDER BY idx"
        async with self._db.execute(sql) as cur:
            return [(int(r[0]), bytes(r[1]), bytes(r[2])) for r in await cur.fetchall()]

    async def save_log(self, entries: list[tuple[int, bytes, bytes]], head: Head) -> bool:
        """Append verified entries and the head that covers them, in one transaction.

        Another ``kok`` process of the same profile (``kok listen`` beside ``kok org
        rotate``) may have stored some of these entries already; they must be the very same
        (same chain hash), else nothing is saved and False comes back: two verified copies
        that differ mean the relay showed this profile two histories. The larger head wins.
        """
        await self._db.execute("BEGIN")
        try:
            await self._db.executemany(
                "INSERT INTO log_entries (idx, record, hash) VALUES (?, ?, ?) "
                "ON CONFLICT (idx) DO NOTHING", entries)
            if entries:
                async with self._db.execute(
                        "SELECT idx, hash FROM log_entries WHERE idx BETWEEN ? AND ?",
                        (entries[0][0], entries[-1][0])) as cur:
                    stored = {int(r[0]): bytes(r[1]) for r in await cur.fetchall()}
                if any(stored.get(idx) != entry_hash for idx, _, entry_hash in entries):
                    await self._db.execute("ROLLBACK")
                    return False
            await self._db.execute(
                "INSERT INTO log_head (id, size, hash, time, signature) VALUES (1, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET size = excluded.size, hash = excluded.hash, "
                "time = excluded.time, signature = excluded.signature "
                "WHERE excluded.size >= log_head.size",
                (head.size, head.hash, head.time, head.signature))
            await self._seal_head()
            await self._db.execute("COMMIT")
        except BaseException:
            await _rollback(self._db)
            raise
        return True

    async def _head_row(self) -> Head | None:
        async with self._db.execute("SELECT size, hash, time, signature FROM log_head") as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return Head(size=int(row[0]), hash=bytes(row[1]), time=int(row[2]),
                    signature=bytes(row[3]))

    @staticmethod
    def _head_facts(head: Head) -> dict[str, Any]:
        return {"size": head.size, "hash": head.hash.hex(), "time": head.time,
                "signature": head.signature.hex()}

    async def _seal_head(self) -> None:
        """Write the sealed copy of the stored head (inside the caller's transaction)."""
        head = await self._head_row()
        if head is not None:
            await self.set_sealed_state(HEAD_SEAL, self._head_facts(head))

    async def head(self) -> Head | None:
        """The last head this client verified, if any; ``profile_tampered`` if the row is
        not the one kok sealed (an older head put back, or one removed)."""
        head = await self._head_row()
        sealed = await self.sealed_state(HEAD_SEAL, what="head")
        if head is None and sealed is None:
            return None
        if head is None or sealed != self._head_facts(head):
            raise ProfileTampered(what="head")
        return head

    # --- sealed state --------------------------------------------------------------------

    async def sealed_state(self, key: str, *, what: str) -> dict[str, Any] | None:
        """A value stored with ``set_sealed_state``; ``profile_tampered`` if it was altered."""
        text = await self.get_state(key)
        if text is None:
            return None
        try:
            return self._open(key, base64.b64decode(text, validate=True))
        except (MailboxCorrupt, ValueError):
            raise ProfileTampered(what=what) from None

    async def set_sealed_state(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` sealed under the storage key, bound to ``key``."""
        await self.set_state(key, base64.b64encode(self._seal(key, value)).decode("ascii"))

    def private_key_name(self, prefix: str, text: str) -> str:
        """A state key for ``text`` that does not show it (keyed, so it cannot be guessed)."""
        mac = hashlib.blake2b(text.encode("utf-8"), key=self._replay_hash_key, digest_size=16)
        return prefix + mac.hexdigest()

    async def state_keys(self, prefix: str) -> list[str]:
        """Every state key that starts with ``prefix``."""
        async with self._db.execute(
                "SELECT key FROM client_state WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix)) as cur:
            return [str(row[0]) for row in await cur.fetchall()]

    async def delete_state(self, key: str) -> None:
        await self._db.execute("DELETE FROM client_state WHERE key = ?", (key,))

    async def verified_orgs(self) -> dict[str, str]:
        """The organisations this profile verified: org id -> identity key (base64)."""
        if await self.get_state(LEGACY_VERIFIED) is not None:
            # the unsealed list of an older kok is adopted once (``adopt_unsealed``); one
            # that appears afterwards was put there by someone else
            raise ProfileTampered(what="verified")
        data = await self.sealed_state(VERIFIED_SEAL, what="verified") or {}
        return {str(k): str(v) for k, v in data.items()}

    async def set_verified_orgs(self, verified: dict[str, str]) -> None:
        await self.set_sealed_state(VERIFIED_SEAL, dict(sorted(verified.items())))

    async def adopt_unsealed(self) -> None:
        """Seal what a ``state.db`` of an older kok holds unsealed (the head, the verified
        list), trusting it as found: called once, when the passphrase first opens it."""
        await self._db.execute("BEGIN")
        try:
            await self._seal_head()
            legacy = await self.get_state(LEGACY_VERIFIED)
            if legacy is not None:
                data = json.loads(legacy)
                verified = ({str(k): str(v) for k, v in data.items()}
                            if isinstance(data, dict) else {})
                await self.set_verified_orgs(verified)
                await self._db.execute("DELETE FROM client_state WHERE key = ?",
                                       (LEGACY_VERIFIED,))
            await self._db.execute("COMMIT")
        except BaseException:
            await _rollback(self._db)
            raise

    # --- small state -----------------------------------------------------------------

    async def get_state(self, key: str, default: str | None = None) -> str | None:
        async with self._db.execute("SELECT value FROM client_state WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else default

    async def set_state(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT OR REPLACE INTO client_state (key, value) VALUES (?, ?)", (key, value))

    # --- received messages -----------------------------------------------------------

    async def seen_relay_id(self, relay_id: str) -> bool:
        """True if this envelope was already stored, quarantined or stored and purged since
        (a harmless re-delivery)."""
        async with self._db.execute(
            "SELECT 1 FROM messages WHERE relay_id = ? UNION ALL "
            "SELECT 1 FROM quarantine WHERE relay_id = ? UNION ALL "
            "SELECT 1 FROM purged WHERE relay_id = ?", (relay_id, relay_id, relay_id)) as cur:
            return await cur.fetchone() is not None

    def _replay_key(self, sender: str, message_id: str) -> bytes:
        # keyed, so the file shows neither who wrote a message nor which share a sender
        return hashlib.blake2b(canonical_json([sender, message_id]),
                               key=self._replay_hash_key, digest_size=32).digest()

    async def add_message(self, message_id: str, relay_id: str, received: int,
                          data: dict[str, Any]) -> dict[str, Any] | None:
        """Store a verified message and return it as stored; None (and nothing changes) if
        the same sender's message with this id is known (a replay, SPEC 9.3):
        ``data["from_staff"]`` is the sender. A message its sender withdrew already is
        stored withdrawn (SPEC 9.4)."""
        replay = self._replay_key(str(data["from_staff"]), message_id)
        async with self._db.execute("SELECT 1 FROM purged WHERE replay_key = ?",
                                    (replay,)) as found:
            if await found.fetchone() is not None:
                return None  # delivered before and deleted by retention since
        withdrawn = await self._withdrawn_at(replay)
        if withdrawn is not None:  # its sender's notice came first: never keep the text
            data = withdrawn_record(data, withdrawn)
        cur = await self._db.execute(
            "INSERT OR IGNORE INTO messages (id, replay_key, relay_id, received, read_at, box) "
            "VALUES (?, ?, ?, ?, NULL, ?)",
            (message_id, replay, relay_id, received, self._seal(f"message:{message_id}", data)))
        return data if cur.rowcount == 1 else None

    async def messages_with_id(self, message_id: str
                               ) -> list[tuple[dict[str, Any], int, int | None]]:
        """``(data, received, read_at)`` of every message held under ``message_id`` (two
        senders may share an id, SPEC 9.3)."""
        async with self._db.execute(
                "SELECT box, received, read_at FROM messages WHERE id = ?", (message_id,)) as cur:
            rows = await cur.fetchall()
        return [(self._open(f"message:{message_id}", bytes(r[0])), int(r[1]),
                 None if r[2] is None else int(r[2])) for r in rows]

    async def senders_of(self, message_id: str) -> set[str]:
        """The senders of the messages held under ``message_id``."""
        return {str(data.get("from_staff"))
                for data, _, _ in await self.messages_with_id(message_id)}

    async def withdraw(self, sender: str, message_id: str, when: int, keep_until: int,
                       now: int) -> bool:
        """Mark ``sender``'s message ``message_id`` withdrawn (SPEC 9.4); True if it was held.

        A held message keeps its sender, subject and times and loses its body and attachment
        keys. The pair is remembered until ``keep_until`` either way, so the message
        arriving later is stored withdrawn (``add_message``).
        """
        replay = self._replay_key(sender, message_id)
        await self._db.execute("BEGIN")
        try:
            await self._db.execute("DELETE FROM withdrawals WHERE expires < ?", (now,))
            await self._db.execute(
                "INSERT INTO withdrawals (replay_key, expires, box) VALUES (?, ?, ?) "
                "ON CONFLICT (replay_key) DO UPDATE SET expires = MAX(expires, excluded.expires)",
                (replay, keep_until, self._seal(f"withdrawal:{replay.hex()}", {"at": when})))
            async with self._db.execute(
                    "SELECT box FROM messages WHERE replay_key = ?", (replay,)) as cur:
                row = await cur.fetchone()
            if row is not None:
                data = self._open(f"message:{message_id}", bytes(row[0]))
                if not data.get("withdrawn"):
                    await self._db.execute(
                        "UPDATE messages SET box = ? WHERE replay_key = ?",
                        (self._seal(f"message:{message_id}", withdrawn_record(data, when)),
                         replay))
            await self._db.execute("COMMIT")
        except BaseException:
            await _rollback(self._db)
            raise
        return row is not None

    async def _withdrawn_at(self, replay: bytes) -> int | None:
        async with self._db.execute(
                "SELECT box FROM withdrawals WHERE replay_key = ?", (replay,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return int(self._open(f"withdrawal:{replay.hex()}", bytes(row[0]))["at"])

    async def messages(self) -> list[tuple[dict[str, Any], int, int | None]]:
        """Every stored message as ``(data, received, read_at)``, in the order they arrived."""
        async with self._db.execute(
                "SELECT id, box, received, read_at FROM messages ORDER BY rowid") as cur:
            rows = await cur.fetchall()
        return [(self._open(f"message:{r[0]}", bytes(r[1])), int(r[2]),
                 None if r[3] is None else int(r[3])) for r in rows]

    async def message(self, message_id: str) -> tuple[dict[str, Any], int, int | None] | None:
        async with self._db.execute(
                "SELECT box, received, read_at FROM messages WHERE id = ?", (message_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return (self._open(f"message:{message_id}", bytes(row[0])), int(row[1]),
                None if row[2] is None else int(row[2]))

    async def mark_read(self, message_id: str, when: int) -> None:
        await self._db.execute(
            "UPDATE messages SET read_at = ? WHERE id = ? AND read_at IS NULL", (when, message_id))

    async def owe_read_report(self, message_id: str) -> None:
        """Opening the message owes one read report, unless one was owed or sent before."""
        await self._db.execute(
            "UPDATE messages SET read_report = 1 WHERE id = ? AND read_report IS NULL",
            (message_id,))

    async def owed_read_reports(self) -> list[str]:
        """The relay ids of the messages whose read report is still owed, oldest first."""
        async with self._db.execute(
                "SELECT relay_id FROM messages WHERE read_report = 1 ORDER BY rowid") as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    async def settle_read_reports(self, relay_ids: list[str]) -> None:
        """These reports were sent, or will never be: owe them no longer."""
        await self._db.executemany(
            "UPDATE messages SET read_report = 0 WHERE relay_id = ? AND read_report = 1",
            [(r,) for r in relay_ids])

    # --- local retention -------------------------------------------------------------

    async def set_keep(self, message_id: str, keep: bool) -> None:
        """Mark a message keep (never purged by retention) or take the mark away."""
        await self._db.execute("UPDATE messages SET keep = ? WHERE id = ?",
                               (1 if keep else 0, message_id))

    async def kept(self) -> set[str]:
        """Ids of the messages marked keep."""
        async with self._db.execute("SELECT id FROM messages WHERE keep = 1") as cur:
            return {str(r[0]) for r in await cur.fetchall()}

    async def retention_facts(self) -> list[tuple[str, int, int | None, bool]]:
        """``(id, received, read_at, keep)`` of every stored message, without opening any."""
        async with self._db.execute(
                "SELECT id, received, read_at, keep FROM messages ORDER BY rowid") as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1]), None if r[2] is None else int(r[2]), bool(r[3]))
                for r in rows]

    async def purge_messages(self, message_ids: list[str], margin: int) -> int:
        """Delete these messages for good, each leaving a tombstone until its signed expiry
        plus ``margin``; a message marked keep in the meantime stays. Returns how many went."""
        if not message_ids:
            return 0
        gone = 0
        await self._db.execute("BEGIN")
        try:
            for message_id in message_ids:
                async with self._db.execute(
                        "SELECT rowid, replay_key, relay_id, box FROM messages "
                        "WHERE id = ? AND keep = 0", (message_id,)) as cur:
                    rows = list(await cur.fetchall())
                for rowid, replay_key, relay_id, box in rows:
                    data = self._open(f"message:{message_id}", bytes(box))
                    until = int(data.get("expires", 0)) + margin
                    await self._db.execute(
                        "INSERT OR REPLACE INTO purged (replay_key, relay_id, until) "
                        "VALUES (?, ?, ?)", (replay_key, relay_id, until))
                    await self._db.execute("DELETE FROM messages WHERE rowid = ?", (rowid,))
                    gone += 1
            await self._db.execute("COMMIT")
        except BaseException:
            await _rollback(self._db)
            raise
        return gone

    async def delete_sent(self, message_ids: list[str]) -> int:
        """Delete these sent records (subject, recipients, status tokens) for good."""
        gone = 0
        for message_id in message_ids:
            cur = await self._db.execute("DELETE FROM sent WHERE id = ?", (message_id,))
            gone += cur.rowcount
        return gone

    async def forget_quarantined(self, before: int) -> int:
        """Delete quarantined envelopes that failed (or waited) since before ``before``."""
        cur = await self._db.execute("DELETE FROM quarantine WHERE received < ?", (before,))
        return cur.rowcount

    async def forget_tombstones(self, now: int) -> int:
        """Drop tombstones whose message could no longer be accepted anyway (expired)."""
        cur = await self._db.execute("DELETE FROM purged WHERE until < ?", (now,))
        return cur.rowcount

    async def resolve_id(self, prefix: str, table: str = "messages") -> str:
        """The one full id in ``table`` starting with ``prefix`` (hex, at least 4 characters)."""
        if table not in ("messages", "sent"):
            raise ValueError(table)
        prefix = prefix.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{4,32}", prefix):
            raise UsageError("bad_message_id", id=prefix)
        # Hex ids sort like text; a range query avoids LIKE's wildcard characters.
        async with self._db.execute(
                f"SELECT id FROM {table} WHERE id >= ? AND id < ? LIMIT 2",  # noqa: S608
                (prefix, prefix + "g")) as cur:
            rows = list(await cur.fetchall())
        if not rows:
            raise UsageError("unknown_message", id=prefix)
        if len(rows) > 1:
            raise UsageError("ambiguous_message", id=prefix)
        return str(rows[0][0])

    # --- sent messages ---------------------------------------------------------------

    async def add_sent(self, message_id: str, sent: int, data: dict[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO sent (id, sent, box) VALUES (?, ?, ?)",
            (message_id, sent, self._seal(f"sent:{message_id}", data)))

    async def update_sent(self, message_id: str, data: dict[str, Any]) -> None:
        """Replace the record of a sent message (e.g. to note its retraction notice)."""
        await self._db.execute("UPDATE sent SET box = ? WHERE id = ?",
                               (self._seal(f"sent:{message_id}", data), message_id))

    async def sent_all(self, sent_by: int | None = None) -> list[tuple[str, int, dict[str, Any]]]:
        """Every sent message as ``(id, sent, data)``, in the order they were sent; with
        ``sent_by``, only those sent at or before it (the others are not even decrypted)."""
        where, args = ("WHERE sent <= ? ", (sent_by,)) if sent_by is not None else ("", ())
        async with self._db.execute(f"SELECT id, sent, box FROM sent {where}"  # noqa: S608
                                    "ORDER BY rowid", args) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1]), self._open(f"sent:{r[0]}", bytes(r[2]))) for r in rows]

    async def sent(self, message_id: str) -> dict[str, Any] | None:
        async with self._db.execute("SELECT box FROM sent WHERE id = ?", (message_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else self._open(f"sent:{message_id}", bytes(row[0]))

    # --- the offline outbox ----------------------------------------------------------

    async def add_outbox(self, message_id: str, queued: int, expires: int,
                         data: dict[str, Any]) -> None:
        """Keep a sealed message until the relay can be reached (encrypted at rest)."""
        await self._db.execute(
            "INSERT OR REPLACE INTO outbox (id, queued, expires, box) VALUES (?, ?, ?, ?)",
            (message_id, queued, expires, self._seal(f"outbox:{message_id}", data)))

    async def outbox(self) -> list[tuple[str, int, int, dict[str, Any]]]:
        """``(id, queued, expires, data)`` of every queued message, oldest first."""
        async with self._db.execute(
                "SELECT id, queued, expires, box FROM outbox ORDER BY queued, rowid") as cur:
            rows = await cur.fetchall()
        return [(r[0], r[1], r[2], self._open(f"outbox:{r[0]}", bytes(r[3]))) for r in rows]

    async def remove_outbox(self, message_id: str) -> None:
        await self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))

    # --- quarantine ------------------------------------------------------------------

    async def quarantine(self, relay_id: str, received: int, code: str,
                         data: dict[str, Any]) -> None:
        """Keep an envelope that failed a check, with the code of the check."""
        await self._db.execute(
            "INSERT OR REPLACE INTO quarantine (relay_id, received, code, box) VALUES (?, ?, ?, ?)",
            (relay_id, received, code, self._seal(f"quarantine:{relay_id}", data)))

    async def quarantined(self, code: str | None = None
                          ) -> list[tuple[str, int, str, dict[str, Any]]]:
        """``(relay_id, received, code, data)`` of quarantined envelopes (of one code, if given)."""
        sql = "SELECT relay_id, received, code, box FROM quarantine"
        args: tuple[Any, ...] = ()
        if code is not None:
            sql += " WHERE code = ?"
            args = (code,)
        async with self._db.execute(sql + " ORDER BY received", args) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1]), str(r[2]), self._open(f"quarantine:{r[0]}", bytes(r[3])))
                for r in rows]

    async def release(self, relay_id: str) -> None:
        """Drop a quarantine row (its envelope opened on a later try)."""
        await self._db.execute("DELETE FROM quarantine WHERE relay_id = ?", (relay_id,))
