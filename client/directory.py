"""The directory: a verified mirror of the relay's key log.

Theory of operation
-------------------
The relay is untrusted, so the client rebuilds the key log itself: every record is applied
to a ``protocol.KeyLog`` whose only trust root is the network key from the profile's anchor,
so a record the rules forbid (a key the network never admitted, a staff member the org never
signed) stops the sync with that record's error code.

``sync`` fetches ``GET /v1/log?after=<entries we hold>`` page by page, checks each entry's
index and chain hash, applies it, and checks the relay's signed head: the signature (with
the log key pinned on first use in ``profile.json``; a different key later is an error), and
that the head's size and hash equal our own chain. A relay that drops, changes or reorders
an entry we hold produces a different chain hash, so the head cannot match: that is
``log_rewritten``. On load, the stored entries are re-validated and must extend the stored
head (``KeyLog.require_extends``), which also catches a tampered local mirror.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from protocol.encoding import SignedItem, b64decode, b64encode
from protocol.errors import LogRewritten, ProtocolError
from protocol.keylog import Head, KeyLog, verify_head

from .errors import VerificationError
from .mailbox import MailboxStore

PAGE = 1000


class LogSource(Protocol):
    """Where log pages come from: the relay API (or, in attack tests, a lying relay)."""

    async def log(self, after: int, limit: int = ...) -> dict[str, Any]: ...


def parse_head(obj: Any) -> Head:
    """A head as the relay sends it (untrusted until ``verify_head``)."""
    if not isinstance(obj, dict):
        raise VerificationError("log_head_invalid")
    try:
        return Head(size=int(obj["size"]), hash=b64decode(obj["hash"], size=32, field="hash"),
                    time=int(obj["time"]),
                    signature=b64decode(obj["signature"], size=64, field="signature"))
    except (KeyError, TypeError, ValueError, ProtocolError):
        raise VerificationError("log_head_invalid") from None


ALREADY_TIME_CHECKED = 2**62


class Directory:
    """The verified key log of one profile, loaded from and saved to its mailbox."""

    def __init__(self, network_key: bytes, store: MailboxStore,
                 clock: Callable[[], float] = time.time) -> None:
        self.log = KeyLog(network_key)
        self.head: Head | None = None
        self._store = store
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    async def load(self) -> None:
        """Re-validate the stored mirror and check it extends the stored head.

        Signatures and the hash chain are checked again; the time rule is not: every stored
        entry passed it when it was mirrored, and checking it again against today's clock
        would lock a person whose clock went wrong out of their own profile with "dated in
        the future" instead of naming the clock (``Client.check_clock``).
        """
        now = ALREADY_TIME_CHECKED
        try:
            for index, record, stored_hash in await self._store.log_entries():
                entry = self.log.apply(record, now)
                if entry.index != index or entry.hash != stored_hash:
                    raise LogRewritten("the local copy of the key log is damaged")
            self.head = await self._store.head()
            if self.head is not None:
                self.log.require_extends(self.head.size, self.head.hash)
        except ProtocolError as exc:
            raise VerificationError.from_protocol(exc) from None

    def head_header(self) -> str | None:
        """``Kok-Log-Head`` value: the last head this client verified."""
        if self.head is None:
            return None
        return f"{self.head.size}:{b64encode(self.head.hash)}"

    async def sync(self, api: LogSource, log_key: bytes) -> int:
        """Fetch, verify and store new entries; returns how many were added."""
        now = self.now()
        start = self.log.size
        fresh: list[tuple[int, bytes, bytes]] = []
        head: Head | None = None
        try:
            while True:
                page = await api.log(after=self.log.size, limit=PAGE)
                head = parse_head(page.get("head"))
                verify_head(log_key, head)
                entries = page.get("entries") or []
                if not isinstance(entries, list):
                    raise VerificationError("log_invalid")
                for raw in entries:
                    fresh.append(self._apply(raw, now))
                if not entries or self.log.size >= head.size:
                    break
            if head is None or head.size != self.log.size or head.hash != self.log.head_hash:
                raise LogRewritten()
            if self.head is not None:
                self.log.require_extends(self.head.size, self.head.hash)
        except ProtocolError as exc:
            self._rollback(start)
            raise VerificationError.from_protocol(exc) from None
        except BaseException:
            self._rollback(start)
            raise
        if not await self._store.save_log(fresh, head):
            self._rollback(start)
            raise VerificationError.from_protocol(
                LogRewritten("another kok program of this profile verified a different key log"))
        self.head = head
        return len(fresh)

    def _apply(self, raw: Any, now: int) -> tuple[int, bytes, bytes]:
        try:
            index = int(raw["index"])
            record = raw["record"]
            claimed = b64decode(raw["hash"], size=32, field="hash")
        except (KeyError, TypeError, ValueError):
            raise VerificationError("log_invalid") from None
        if index != self.log.size:
            raise LogRewritten(f"the relay sent entry {index} where entry {self.log.size} belongs")
        record_bytes = SignedItem.from_json(record).to_bytes()
        entry = self.log.apply(record_bytes, now)
        if entry.hash != claimed:
            raise LogRewritten("the relay's hash of an entry differs from the client's")
        return (entry.index, entry.record_bytes, entry.hash)

    def _rollback(self, size: int) -> None:
        """Forget entries applied during a failed sync (KeyLog has no undo: rebuild)."""
        if self.log.size == size:
            return
        kept = self.log.entries[:size]
        self.log = KeyLog(self.log.network_key)
        now = self.now()
        for entry in kept:
            self.log.apply(entry.record_bytes, now)
