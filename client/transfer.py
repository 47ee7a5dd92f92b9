"""Streaming, resumable transfer of encrypted file drops.

Theory of operation
-------------------
Upload: the file is read in 1 MiB pieces and pushed through ``protocol.FileEncryptor``
straight into the request body, one piece encrypted ahead in a worker thread while the
previous one is sent; no plaintext copy and no whole file is ever held. The encryption is
deterministic for a given (key, header), so after a broken connection the client asks the
relay for its durable offset (``HEAD``), runs the encryptor again from the start and sends
only the bytes past that offset. The ciphertext hash that goes into the signed message comes
from the last, complete pass. A file whose size, time or inode changes between passes is
refused. One whose bytes change while those three stay (an editor that writes in place and
restores the time) must not be encrypted again under the same key and header: that would
put two plaintexts under one key stream, and a relay that lies about its offset would see
both. So every pass keeps a digest of each plaintext chunk it read and a later pass compares
before it encrypts: a chunk that differs abandons the drop (withdrawn at once) and the file
goes again as a new drop, under a new key and header.

Download: the ciphertext is appended to a hidden ``.kokpart`` file beside the target
(ciphertext only) and, in the same pass, decrypted into a hidden ``.koktmp`` file: every
chunk is authenticated as it arrives. Only when the stream ended exactly after its FINAL
chunk, with the signed size and the signed ciphertext hash, is the temporary file renamed to
its final name. A stream that fails a check removes both hidden files.

Resuming a save: with a checkpoint store (``client.save_checkpoints``, sealed in the
profile) the save records every ``CHECKPOINT_EVERY`` bytes, and when the relay cannot be
reached any more, where it stands: the decryptor's secretstream state at that chunk
boundary, the lengths of both files, a SHA-256 of the ciphertext and a BLAKE2b of the
plaintext up to there. The next save of that attachment into that folder checks both files
against the checkpoint (same inode, same bytes), restores the decryptor and fetches the rest
with ``Range``: what the checkpoint covers is neither decrypted nor written again. Hashing
the ciphertext up to there again is the one pass it repeats: the signed commitment is a
SHA-256 over the whole ciphertext and hashlib cannot carry a SHA-256 state over, and that
pass also shows the part file still holds the ciphertext that was decrypted. The
ciphertext the part file holds past the checkpoint is decrypted again locally. Anything that
does not match starts the save over (nothing of the old files is kept); the stream's own
checks and the whole-ciphertext hash still decide whether the file counts as saved, so a
relay that serves other bytes for the rest is caught as before and nothing stays behind.

Why a checkpoint and not a staged ciphertext decrypted once at the end: that would decrypt
again whatever a kill interrupted during the final pass, and hold the whole file twice.
Why the plaintext may stay: it lies where the person asked for that file, mode 0600, only
while a sealed checkpoint names it, and it is removed by the first opening of the profile a
day later (``RESUME_WINDOW``) or by a save into that folder that cannot resume it.
Without a checkpoint store (the library's ``download_attachment`` alone) an interruption
keeps only the ``.kokpart``, which the next attempt decrypts again from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import itertools
import mimetypes
import os
import re
import secrets
import stat
import threading
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp

from protocol import Attachment, FileDecryptor, FileEncryptor, b64encode, ciphertext_size
from protocol.encoding import b64decode
from protocol.errors import (
    ProtocolError,
    StreamHashMismatch,
    StreamTrailingData,
    StreamTruncated,
)
from protocol.stream import (
    ABYTES,
    CHUNK_SIZE,
    HEADER_SIZE,
    SIZE_PREFIX,
    StreamPosition,
    ciphertext_hasher,
    padded_stream_size,
)

from .api import TRANSPORT_ERRORS, RelayApi, drop_path, problem
from .errors import KokError, RelayUnreachable, VerificationError

READ_PIECE = 1024 * 1024
STEP_CHUNKS = READ_PIECE // CHUNK_SIZE
UPLOAD_MEDIA_TYPE = "application/offset+octet-stream"
MAX_NAME_BYTES = 200
# The relay is busy with (or has not yet made durable) the bytes of an earlier attempt.
UPLOAD_AGAIN = frozenset({"offset_mismatch", "upload_busy"})
Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as a transfer moves on."""


class TransferError(KokError):
    """A file could not be sent or saved; the message says why in plain words."""

    code = "transfer_failed"


class _Unfinished(Exception):
    """The relay holds only part of the upload: ask where it ends and go on."""


class _ContentChanged(Exception):
    """A chunk read again differs from the first read: this key and header are spent."""


class _PlainDigests:
    """A digest of each plaintext chunk read under one key and header, by any pass."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        # set before ``_ContentChanged`` is raised: the HTTP client may wrap what the request
        # body raised in a transport error, which must not read as "try the same again"
        self.changed = False


NEW_DROPS = 3
"""Drops one upload may start when the file keeps changing in place; then ``file_changed``."""


def sanitize_name(name: str) -> str:
    """A safe local file name from a sender's name: no directories, no control characters.

    Only the last path component survives (``../../etc/passwd`` becomes ``passwd``), control
    and format characters go, characters Windows forbids become ``_``, leading dots go (no
    hidden files, no ``..``), and overlong names are cut keeping a short extension.
    """
    name = unicodedata.normalize("NFC", str(name))
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.split(r"[/\\]", name)[-1]
    name = re.sub(r'[<>:"|?*]', "_", name).strip().lstrip(".").strip()
    if not name:
        name = "attachment"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        keep = "." + ext if dot and stem and 0 < len(ext.encode("utf-8")) <= 16 else ""
        room = MAX_NAME_BYTES - len(keep.encode("utf-8"))
        name = name.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip() + keep
    return name


def media_type(name: str) -> str:
    """The media type a file name suggests (``application/octet-stream`` if none)."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


class _Encrypting:
    """One pass over a file: read and encrypt about 1 MiB per step (each in a worker thread).

    The file is read in pieces that line up with the stream's chunks (the first chunk also
    holds the 8-byte size prefix), so ``FileEncryptor`` encrypts each piece as it is, with
    no copy to gather a chunk and none to join the output. Reading the next pieces,
    encrypting these and sending the last ones overlap (``_ciphertext``).
    """

    def __init__(self, path: Path, key: bytes, header: bytes, size: int,
                 digests: _PlainDigests) -> None:
        # the ciphertext is hashed here, by another worker than the one encrypting (SHA-256
        # and the cipher both release the GIL, so on two cores they run side by side)
        self.enc = FileEncryptor(key, header, size, hash_ciphertext=False)
        self.hasher = ciphertext_hasher()
        self.fh: IO[bytes] = path.open("rb", buffering=0)
        self.name = path.name
        self.size = size
        self.read = 0
        self.final: Iterator[bytes] | None = None
        self.done = False
        # one digest per plaintext chunk, shared by every pass under this key and header
        self.digests = digests
        self.chunks = 0

    def read_pieces(self) -> list[bytes]:
        """The next pieces of the file ([] at its end)."""
        pieces: list[bytes] = []
        for _ in range(STEP_CHUNKS):
            data = self.fh.read(CHUNK_SIZE - SIZE_PREFIX if self.read == 0 else CHUNK_SIZE)
            if not data:
                break
            self.read += len(data)
            if self.read > self.size:
                raise TransferError("file_changed", name=self.name)
            self._compare(data)
            pieces.append(data)
        return pieces

    def _compare(self, data: bytes) -> None:
        """Refuse a chunk that an earlier pass read (and may have sent) with other bytes."""
        digest = hashlib.blake2b(data, digest_size=32).digest()
        if self.chunks < len(self.digests.chunks):
            if not hmac.compare_digest(self.digests.chunks[self.chunks], digest):
                self.digests.changed = True
                raise _ContentChanged()
        else:
            self.digests.chunks.append(digest)
        self.chunks += 1

    def encrypt(self, pieces: list[bytes]) -> list[bytes]:
        """Their ciphertext chunks; after the last pieces, the final (padded) chunks.

        The padding can be megabytes (Padmé: up to about 1/32 of the file), so the final
        chunks come a batch at a time like the others.
        """
        if pieces:
            return [chunk for chunk in map(self.enc.update, pieces) if chunk]
        if self.final is None:
            if self.read != self.size:
                raise TransferError("file_changed", name=self.name)
            self.final = self.enc.finalize_chunks()
        out = list(itertools.islice(self.final, STEP_CHUNKS))
        self.done = len(out) < STEP_CHUNKS
        return out

    def hash(self, chunks: list[bytes]) -> None:
        """Add a batch of ciphertext to the hash (batches in order, one at a time)."""
        for chunk in chunks:
            self.hasher.update(chunk)


def _settle(*futures: asyncio.Future[Any] | None) -> list[asyncio.Future[Any]]:
    return [f for f in futures if f is not None]


async def _ciphertext(path: Path, key: bytes, header: bytes, size: int, skip: int,
                      hashes: list[bytes], digests: _PlainDigests,
                      progress: Progress | None) -> AsyncIterator[bytes]:
    """The file's ciphertext from byte ``skip`` on.

    Four stages overlap: a worker reads the next pieces, another encrypts the current
    ones, a third hashes the last ones, and the event loop sends them.
    """
    total = ciphertext_size(size)
    job = await asyncio.to_thread(_Encrypting, path, key, header, size, digests)
    position = 0
    reading: asyncio.Future[list[bytes]] | None = None
    encrypting: asyncio.Future[list[bytes]] | None = None
    hashing: asyncio.Future[None] | None = None

    def next_stage(pieces: list[bytes]) -> None:
        nonlocal reading, encrypting
        reading = asyncio.ensure_future(asyncio.to_thread(job.read_pieces)) if pieces else None
        encrypting = asyncio.ensure_future(asyncio.to_thread(job.encrypt, pieces))

    try:
        next_stage(await asyncio.to_thread(job.read_pieces))
        while encrypting is not None:
            chunks = await encrypting
            encrypting = None
            if hashing is not None:
                await hashing  # batches enter the hash in order
            hashing = asyncio.ensure_future(asyncio.to_thread(job.hash, chunks))
            if not job.done:
                next_stage(await reading if reading is not None else [])
            for out in chunks:
                start = position
                position += len(out)
                if position > skip:
                    yield out if start >= skip else out[skip - start:]
            if progress and position > skip:
                progress(position, total)
        if position != total:
            raise TransferError("file_changed", name=path.name)
        if hashing is not None:
            await hashing
        hashes.append(job.hasher.digest())
    finally:
        pending = _settle(reading, encrypting, hashing)
        if pending:  # stopped early: let the workers finish before closing their file
            await asyncio.wait(pending)
            for future in pending:
                if not future.cancelled():
                    future.exception()  # retrieved, so asyncio does not report it as lost
        job.fh.close()


async def _full_hash(path: Path, key: bytes, header: bytes, size: int,
                     digests: _PlainDigests) -> bytes:
    """The ciphertext hash from a local pass (when the relay had every byte already)."""
    hashes: list[bytes] = []
    async for _ in _ciphertext(path, key, header, size, ciphertext_size(size), hashes, digests,
                               None):
        pass
    return hashes[-1]


async def upload_file(api: RelayApi, path: Path, to: list[str], ttl: int, *,
                      name: str | None = None, progress: Progress | None = None,
                      created_drops: list[tuple[str, str]] | None = None) -> Attachment:
    """Encrypt and upload one file as a drop; return what the message must carry about it.

    ``created_drops`` gets (drop id, upload token) as soon as the drop exists, so that a caller
    whose send fails later can withdraw it.
    """
    try:
        before = await asyncio.to_thread(_identity, path)
    except OSError as exc:
        raise TransferError("file_unreadable", path=str(path), detail=exc.strerror or "") from None
    drops = created_drops if created_drops is not None else []
    for _ in range(NEW_DROPS):
        try:
            attachment = await _upload_drop(api, path, before, to, ttl, progress, drops,
                                            unicodedata.normalize("NFC", name or path.name))
        except _ContentChanged:
            # never again under this key and header: the drop goes, the file goes anew
            drop, token = drops.pop()
            with contextlib.suppress(KokError, *TRANSPORT_ERRORS):
                await api.withdraw_drop(drop, token)
            continue
        if await asyncio.to_thread(_identity, path) != before:
            raise TransferError("file_changed", name=path.name)
        return attachment
    raise TransferError("file_changed", name=path.name)


async def send_into_new_drop(api: RelayApi, total: int, to: list[str], ttl: int,
                             drops: list[tuple[str, str]],
                             body_at: Callable[[int], Awaitable[Any]], *,
                             before_complete: Callable[[], Awaitable[None]] | None = None,
                             patch_failed: Callable[[], None] | None = None) -> str:
    """Create a drop of ``total`` ciphertext bytes and send them into it; returns its id.

    ``drops`` gets (drop id, upload token) as soon as the drop exists. ``body_at(offset)``
    gives the bytes from ``offset`` on; after a failure the relay's durable offset is asked
    for (``HEAD``) and the upload resumes there, within the transfer retry policy.
    ``before_complete`` runs once every byte is there, just before the drop is completed;
    ``patch_failed`` when sending bytes failed, before any retry (it may raise instead).
    """
    created = await api.create_drop(total, to, ttl)
    drop = str(created["id"])
    token = {"Kok-Upload-Token": str(created["upload_token"])}
    drops.append((drop, str(created["upload_token"])))
    offset = 0
    first = True

    async def attempt() -> None:
        nonlocal offset, first
        if not first:  # after any failure: where do the relay's durable bytes end?
            async with api.exchange("HEAD", drop_path(drop), headers=token) as resp:
                offset = int(resp.headers["Upload-Offset"])
        first = False
        if offset < total:
            body = await body_at(offset)
            try:
                async with api.exchange("PATCH", drop_path(drop), data=body, headers={
                        **token, "Upload-Offset": str(offset),
                        "Content-Type": UPLOAD_MEDIA_TYPE,
                        "Content-Length": str(total - offset)}) as resp:
                    offset = int(resp.headers["Upload-Offset"])
            except Exception:
                if patch_failed is not None:
                    patch_failed()
                raise
        if offset != total:
            raise _Unfinished()
        if before_complete is not None:
            await before_complete()
        async with api.exchange("POST", drop_path(drop, "complete"), headers=token):
            pass

    try:
        await api.retrying(attempt, repeatable=True, auth=True,
                           attempts=api.policy.transfer_attempts, retry_codes=UPLOAD_AGAIN,
                           again=(_Unfinished,))
    except _Unfinished:  # every attempt ended without the relay holding the whole file
        raise TransferError("transfer_failed") from None
    return drop


async def _upload_drop(api: RelayApi, path: Path, before: tuple[int, int, int], to: list[str],
                       ttl: int, progress: Progress | None, drops: list[tuple[str, str]],
                       name: str) -> Attachment:
    """One drop under a fresh key and header; ``_ContentChanged`` if the bytes move."""
    size = before[0]
    key = secrets.token_bytes(32)
    header = secrets.token_bytes(24)
    digests = _PlainDigests()
    hashes: list[bytes] = []

    async def body_at(offset: int) -> AsyncIterator[bytes]:
        hashes.clear()
        if await asyncio.to_thread(_identity, path) != before:
            raise TransferError("file_changed", name=path.name)
        return _ciphertext(path, key, header, size, offset, hashes, digests, progress)

    async def whole_hash() -> None:
        if not hashes:
            hashes.append(await _full_hash(path, key, header, size, digests))

    def spent_if_changed() -> None:
        # A chunk that differs from an earlier pass spends the key: not a transport failure
        # to retry; the file goes anew as another drop.
        if digests.changed:
            raise _ContentChanged() from None

    try:
        drop = await send_into_new_drop(api, ciphertext_size(size), to, ttl, drops, body_at,
                                        before_complete=whole_hash,
                                        patch_failed=spent_if_changed)
    except (_ContentChanged, TransferError):
        raise
    except Exception:
        spent_if_changed()  # whatever the HTTP client made of it
        raise
    return Attachment(drop=b64decode(drop, size=16, field="id"), key=key, size=size,
                      name=name, type=media_type(name), hash=hashes[-1])


# --- download ---------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


CHECKPOINT_EVERY = 8 * 1024 * 1024
"""Ciphertext bytes between two checkpoints of a save: after a kill, at most this much is
decrypted again (from the part file, or fetched again)."""


class SaveCheckpoints(Protocol):
    """Where checkpoints of a save are kept (sealed: they hold a secretstream state)."""

    async def load(self, tmp: Path) -> dict[str, Any] | None: ...

    async def store(self, tmp: Path, facts: dict[str, Any]) -> None: ...

    async def forget(self, tmp: Path) -> None: ...


def _open_own(path: Path) -> IO[bytes]:
    """``path`` opened for update if it is a plain file of ours with no other name."""
    fh = os.fdopen(os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK), "r+b")
    facts = os.fstat(fh.fileno())
    if (not stat.S_ISREG(facts.st_mode) or facts.st_uid != os.geteuid()
            or facts.st_nlink != 1):
        fh.close()
        raise OSError(f"{path.name} is not a file a save of ours made")
    return fh


def _file_identity(facts: os.stat_result) -> str:
    # as text: device and inode numbers may pass JSON's safe integer range
    return f"{facts.st_dev}:{facts.st_ino}"


def _digest_prefix(fh: IO[bytes], length: int, hasher: Any) -> bool:
    """Feed the first ``length`` bytes of ``fh`` to ``hasher``; False if it is shorter."""
    fh.seek(0)
    done = 0
    while done < length:
        data = fh.read(min(READ_PIECE, length - done))
        if not data:
            return False
        hasher.update(data)
        done += len(data)
    return True


def _plain_hasher() -> Any:
    return hashlib.blake2b(digest_size=32)


class _Saving:
    """Ciphertext appended to the part file and decrypted into the temporary file.

    With checkpoints, each stage notes where it stands after every batch (``_mark``): the
    decryptor's position, the ciphertext hash so far, the plaintext digest so far. Once all
    three agree on an offset the event loop may store them as one checkpoint.
    """

    out: IO[bytes]
    part: IO[bytes]

    def __init__(self, part: Path, tmp: Path, attachment: Attachment,
                 resume: dict[str, Any] | None = None) -> None:
        self.key = attachment.key
        self.expected_hash = attachment.hash
        self.drop = attachment.drop
        self.size = attachment.size
        self.total = ciphertext_size(attachment.size)
        self.part_path = part
        self.tracking = False  # marks are taken only when checkpoints are kept
        self.marks: dict[int, dict[str, Any]] = {}
        self.marks_lock = threading.Lock()  # three workers note marks, the event loop reads
        self.saved_at = 0  # where the last stored checkpoint stands
        self.resumed = resume is not None and self._resume(part, tmp, resume)
        if self.resumed:
            return
        # the ciphertext is hashed by another worker than the one decrypting (both release
        # the GIL), and compared with the signed hash in ``finish``
        self.dec = FileDecryptor(attachment.key, expected_size=attachment.size,
                                 hash_ciphertext=False)
        self.hasher = ciphertext_hasher()
        self.plain_hasher = _plain_hasher()
        self.plain = 0
        # The hidden names are predictable: in a folder others can write to, a link planted
        # there must not make us write through it (plaintext into someone's file, or ours
        # truncated). The temporary file is always made anew; the part file never followed.
        if resume is not None:
            discard_save_file(tmp)  # a checkpoint that does not fit: start over
            discard_save_file(part)
        tmp.unlink(missing_ok=True)
        self.out = os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                     0o600), "wb")
        # held while we write: the leftover sweep of another save leaves this file alone
        fcntl.flock(self.out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            self.part = os.fdopen(os.open(part, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600),
                                  "r+b")
        except BaseException:
            self.out.close()
            tmp.unlink(missing_ok=True)
            raise
        self.have = 0
        self.decrypted = self.hashed = 0

    def _resume(self, part: Path, tmp: Path, facts: dict[str, Any]) -> bool:
        """Go on from a checkpoint if both files still hold what it recorded."""
        opened: list[IO[bytes]] = []
        resumable = False
        try:
            if (facts["drop"] != b64encode(self.drop)
                    or facts["hash"] != b64encode(self.expected_hash)
                    or facts["part"] != str(part)):
                return False
            position = StreamPosition(b64decode(facts["state"]), int(facts["ciphertext"]),
                                      int(facts["plaintext"]))
            dec = FileDecryptor.resume(self.key, position, expected_size=self.size)
            plain = position.file_bytes(self.size)
            out = _open_own(tmp)
            opened.append(out)
            fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            here = os.fstat(out.fileno())
            if _file_identity(here) != facts["file"]:
                return False
            # the bytes themselves, not only the file's identity: a temporary file changed
            # since (or not written to disk before a power cut) starts the save over
            plain_hasher = _plain_hasher()
            if (not _digest_prefix(out, plain, plain_hasher)
                    or b64encode(plain_hasher.digest()) != facts["plain_digest"]):
                return False
            part_fh = _open_own(part)
            opened.append(part_fh)
            # SHA-256 of the ciphertext cannot be carried over (hashlib exports no midstate):
            # hashing the part file again rebuilds it and shows it is what was decrypted
            hasher = ciphertext_hasher()
            if (not _digest_prefix(part_fh, position.ciphertext, hasher)
                    or b64encode(hasher.digest()) != facts["cipher_digest"]):
                return False
            out.truncate(plain)
            out.seek(plain)
            part_fh.seek(position.ciphertext)
            resumable = True
        except (KeyError, TypeError, ValueError, OSError, ProtocolError):
            return False
        finally:
            if not resumable:
                for fh in opened:
                    fh.close()
        self.out, self.part = out, part_fh
        self.dec, self.hasher, self.plain_hasher = dec, hasher, plain_hasher
        self.plain = plain
        self.have = self.decrypted = self.hashed = self.saved_at = position.ciphertext
        return True

    def replay(self, total: int) -> int:
        """Decrypt what an earlier attempt left in the part file past the point this save
        starts from (no checkpoint: the start); returns the length now held."""
        size = os.fstat(self.part.fileno()).st_size
        if size > total:  # cannot be ours: back to where this save starts
            self.part.truncate(self.have)
            size = self.have
        self.part.seek(self.have)
        while self.have < size:
            data = self.part.read(min(READ_PIECE, size - self.have))
            if not data:
                break
            self.hasher.update(data)
            plain = self.dec.update(data)
            self.plain_hasher.update(plain)
            self.out.write(plain)
            self.plain += len(plain)
            self.have += len(data)
        self.part.seek(self.have)
        self.part.truncate(self.have)
        self.decrypted = self.hashed = self.have
        return self.have

    def _mark(self, offset: int, name: str, value: Any) -> None:
        with self.marks_lock:
            self.marks.setdefault(offset, {})[name] = value

    def decrypt(self, chunks: list[bytes]) -> list[bytes]:
        """The plaintext of a batch of whole ciphertext chunks (each checked)."""
        plain = [self.dec.update(chunk) for chunk in chunks]
        self.decrypted += sum(map(len, chunks))
        if self.tracking and self.decrypted < self.total:
            with contextlib.suppress(ProtocolError):  # not between two chunks: no mark
                self._mark(self.decrypted, "position", self.dec.position())
        return plain

    def hash(self, chunks: list[bytes]) -> None:
        """Add a batch of ciphertext to the hash (batches in order, one at a time)."""
        for chunk in chunks:
            self.hasher.update(chunk)
        self.hashed += sum(map(len, chunks))
        if self.tracking:
            self._mark(self.hashed, "cipher_digest", self.hasher.copy().digest())

    def keep(self, chunks: list[bytes], plain: list[bytes]) -> None:
        """Append a decrypted batch to both files."""
        self.part.writelines(chunks)
        self.out.writelines(plain)
        for piece in plain:
            self.plain_hasher.update(piece)
        self.plain += sum(map(len, plain))
        self.have += sum(map(len, chunks))
        if self.tracking:
            # in the kernel's hands before a checkpoint may name them: a killed process
            # loses nothing written (a power cut may: the digests then start the save over)
            self.part.flush()
            self.out.flush()
            self._mark(self.have, "plain_digest", self.plain_hasher.copy().digest())

    async def checkpoint(self, checkpoints: SaveCheckpoints, tmp: Path, *,
                         now: bool = False) -> None:
        """Store where the save stands, if every stage reached the same chunk boundary and
        (unless ``now``) ``CHECKPOINT_EVERY`` bytes came since the last checkpoint."""
        with self.marks_lock:
            for offset in [o for o in self.marks if o < self.have]:
                del self.marks[offset]
            mark = dict(self.marks.get(self.have, {}))
        if len(mark) != 3 or not (now or self.have - self.saved_at >= CHECKPOINT_EVERY):
            return
        if self.have == self.saved_at:
            return
        position: StreamPosition = mark["position"]
        here = os.fstat(self.out.fileno())
        await checkpoints.store(tmp, {
            "drop": b64encode(self.drop), "hash": b64encode(self.expected_hash),
            "part": str(self.part_path), "file": _file_identity(here),
            "state": b64encode(position.state), "ciphertext": position.ciphertext,
            "plaintext": position.plaintext, "cipher_digest": b64encode(mark["cipher_digest"]),
            "plain_digest": b64encode(mark["plain_digest"])})
        self.saved_at = self.have

    def finish(self) -> None:
        last = self.dec.finalize()  # truncation and the like first, as SPEC 13.3 orders them
        if not hmac.compare_digest(self.hasher.digest(), self.expected_hash):
            raise StreamHashMismatch()
        self.out.write(last)
        self.out.flush()
        os.fsync(self.out.fileno())

    def close(self) -> None:
        for fh in (self.out, self.part):
            with contextlib.suppress(OSError):
                fh.close()


_SAVE_FILE = re.compile(r"\..+\.[0-9a-f]{12}\.kok(tmp|part)", re.DOTALL)
_PLAINTEXT_LEFTOVER = re.compile(r"\..+\.[0-9a-f]{12}\.koktmp", re.DOTALL)


def discard_save_file(path: Path) -> bool:
    """Empty and delete a save's hidden file unless a running save holds it; True if gone.

    It is emptied before it is unlinked, so no other name left pointing at it keeps the
    plaintext; a file that is not ours (another owner, another name for it) is left alone.
    """
    if not _SAVE_FILE.fullmatch(path.name):
        return False
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        facts = os.fstat(fd)
        if (not stat.S_ISREG(facts.st_mode) or facts.st_uid != os.geteuid()
                or facts.st_nlink != 1):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.unlink(path)
        return True
    except OSError:
        return False  # a save in progress holds it (or it is already gone)
    finally:
        os.close(fd)


def plaintext_leftovers(folder: Path) -> list[str]:
    """The names of the decrypted temporary files of saves in ``folder``."""
    try:
        return [e.name for e in os.scandir(folder)
                if _PLAINTEXT_LEFTOVER.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def remove_plaintext_leftovers(folder: Path, keep: frozenset[str] = frozenset()) -> list[str]:
    """Delete the decrypted temporary files a killed save left in ``folder``; their names.

    ``keep`` names the ones a checkpoint of this profile can resume. A save holds a lock on
    its temporary file, so one still running keeps it. The ciphertext part files stay: the
    next save of that attachment resumes from them.
    """
    return [name for name in plaintext_leftovers(folder)
            if name not in keep and discard_save_file(folder / name)]


def _total_from(resp: aiohttp.ClientResponse) -> int | None:
    """The relay's size of the whole blob, from Content-Range or (for 200) Content-Length."""
    content_range = resp.headers.get("Content-Range", "")
    match = re.fullmatch(r"bytes (?:\d+-\d+|\*)/(\d+)", content_range.strip())
    if match:
        return int(match.group(1))
    if resp.status == 200 and resp.content_length is not None:
        return resp.content_length
    return None


def _check_total(relay_total: int | None, total: int) -> None:
    """A blob of another length than the signed size is damaged: say how, before fetching."""
    if relay_total is None:
        return
    if relay_total < total:
        raise StreamTruncated(f"the relay holds {relay_total} of the file's {total} bytes")
    if relay_total > total:
        raise StreamTrailingData(f"the relay holds {relay_total} bytes, the file has {total}")


def _to_boundary(position: int, padded: int) -> int:
    """Ciphertext bytes from ``position`` to the end of its chunk (or of the header)."""
    if position < HEADER_SIZE:
        return HEADER_SIZE - position
    index, inside = divmod(position - HEADER_SIZE, CHUNK_SIZE + ABYTES)
    return min(padded - index * CHUNK_SIZE, CHUNK_SIZE) + ABYTES - inside


async def _fetch(api: RelayApi, drop: str, job: _Saving, total: int,
                 progress: Progress | None,
                 checkpoint: Callable[[], Awaitable[None]] | None = None) -> None:
    """One GET from ``job.have`` on; returns when the body ends (complete or not).

    ``checkpoint`` runs after each batch is written (before progress is reported)."""
    padded = padded_stream_size(job.size)
    extra = {"Range": f"bytes={job.have}-"} if job.have else {}
    async with api.exchange("GET", drop_path(drop), headers=extra, check=False) as resp:
        if resp.status == 416:
            _check_total(_total_from(resp), total)
        if resp.status not in (200, 206):
            raise await problem(resp)
        _check_total(_total_from(resp), total)
        if resp.status == 200 and job.have:
            raise TransferError("bad_range_answer")
        queue: asyncio.Queue[list[bytes] | None] = asyncio.Queue(maxsize=4)

        async def consume() -> None:
            # one worker decrypts a batch while another writes the last one, and the
            # socket goes on filling the queue meanwhile
            writing: asyncio.Future[None] | None = None
            hashing: asyncio.Future[None] | None = None
            try:
                while (batch := await queue.get()) is not None:
                    if hashing is not None:
                        await hashing  # batches enter the hash in order
                    hashing = asyncio.ensure_future(asyncio.to_thread(job.hash, batch))
                    plain = await asyncio.to_thread(job.decrypt, batch)
                    if writing is not None:
                        await writing
                        if checkpoint is not None:
                            await checkpoint()
                        if progress:
                            progress(job.have, total)
                    writing = asyncio.ensure_future(asyncio.to_thread(job.keep, batch, plain))
            finally:
                if hashing is not None:
                    await asyncio.wait([hashing])
                    hashing.result()
                if writing is not None:
                    await asyncio.wait([writing])
                    writing.result()
                    if checkpoint is not None:
                        await checkpoint()
                    if progress:
                        progress(job.have, total)

        worker = asyncio.ensure_future(consume())
        try:
            received = job.have
            batch: list[bytes] = []
            while received < total and not worker.done():
                # read exactly up to the next chunk boundary: whole chunks decrypt copy-free
                data = await resp.content.readexactly(_to_boundary(received, padded))
                received += len(data)
                batch.append(data)
                if len(batch) == STEP_CHUNKS or received == total:
                    await queue.put(batch)
                    batch = []
            if not worker.done() and await resp.content.read(1):
                raise StreamTrailingData("the relay sent more bytes than the file has")
        finally:
            if not worker.done():
                await queue.put(None)
            await worker  # raises what decryption raised (a tampered chunk)


async def download_attachment(api: RelayApi, attachment: Attachment, dest_dir: Path, *,
                              name: str | None = None, force: bool = False,
                              progress: Progress | None = None,
                              checkpoints: SaveCheckpoints | None = None) -> Path:
    """Fetch, verify and decrypt one attachment into ``dest_dir``; returns the final path.

    With ``checkpoints`` an interrupted save keeps what it decrypted and notes where it
    stands, so the next save goes on from there without decrypting it again.
    """
    name = name or sanitize_name(attachment.name)
    final = dest_dir / name
    if final.exists() and not force:
        raise TransferError("file_exists", path=str(final))
    tag = attachment.drop.hex()[:12]
    # absolute: a checkpoint is found by the temporary file's path
    where = Path(await asyncio.to_thread(os.path.abspath, dest_dir))
    part = where / f".{name}.{tag}.kokpart"
    tmp = where / f".{name}.{tag}.koktmp"
    total = ciphertext_size(attachment.size)
    drop = b64encode(attachment.drop)
    keep_part = keep_tmp = False
    facts = None
    resumable: set[str] = set()  # interrupted saves of this profile in this folder
    if checkpoints is not None:
        facts = await checkpoints.load(tmp)
        for leftover in await asyncio.to_thread(plaintext_leftovers, dest_dir):
            found = facts if leftover == tmp.name else await checkpoints.load(where / leftover)
            if found is not None:
                resumable.add(leftover)
    await asyncio.to_thread(remove_plaintext_leftovers, dest_dir, frozenset(resumable))
    try:
        job = await asyncio.to_thread(_Saving, part, tmp, attachment, facts)
    except OSError as exc:
        raise TransferError("save_failed", path=str(dest_dir), detail=exc.strerror or "") from None
    step: Callable[[], Awaitable[None]] | None = None
    if checkpoints is not None:
        if facts is not None and not job.resumed:
            await checkpoints.forget(tmp)
        job.tracking = True
        keeper = checkpoints

        async def step() -> None:
            await job.checkpoint(keeper, tmp)

    try:
        await asyncio.to_thread(job.replay, total)
        if progress and job.have:
            progress(job.have, total)

        async def attempt() -> None:
            await _fetch(api, drop, job, total, progress, step)
            if job.have < total:
                raise _Unfinished()

        try:
            await api.retrying(attempt, repeatable=True, auth=True,
                               attempts=api.policy.transfer_attempts, again=(_Unfinished,))
        except (RelayUnreachable, _Unfinished):
            keep_part = True  # the next attempt resumes from here
            if checkpoints is not None:
                await job.checkpoint(checkpoints, tmp, now=True)
                keep_tmp = job.saved_at > 0
            raise RelayUnreachable(api.base_url) from None
        await asyncio.to_thread(job.finish)
        job.close()
        if final.exists() and not force:
            raise TransferError("file_exists", path=str(final))
        os.replace(tmp, final)
        await asyncio.to_thread(_fsync_dir, dest_dir)
    except ProtocolError as exc:
        raise VerificationError.from_protocol(exc) from exc
    except (asyncio.CancelledError, KeyboardInterrupt):
        # interrupted by the person: the next attempt resumes (from the last checkpoint)
        keep_part = True
        keep_tmp = checkpoints is not None and job.saved_at > 0
        raise
    finally:
        job.close()
        if not keep_tmp:
            tmp.unlink(missing_ok=True)
        if not keep_part:
            part.unlink(missing_ok=True)
        if checkpoints is not None and not keep_tmp and job.saved_at:
            await checkpoints.forget(tmp)
    return final
