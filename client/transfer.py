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
chunk is authenticated as it arrives. An interrupted download resumes with ``Range``: the
``.kokpart`` bytes are decrypted again from the start (locally) and the rest is fetched.
Only when the stream ended exactly after its FINAL chunk, with the signed size and the
signed ciphertext hash, is the temporary file renamed to its final name. A stream that
fails a check removes both hidden files; a relay that cannot be reached keeps the
``.kokpart`` so the next attempt resumes.
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
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

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


class _Saving:
    """Ciphertext appended to the part file and decrypted into the temporary file."""

    def __init__(self, part: Path, tmp: Path, attachment: Attachment) -> None:
        # the ciphertext is hashed by another worker than the one decrypting (both release
        # the GIL), and compared with the signed hash in ``finish``
        self.dec = FileDecryptor(attachment.key, expected_size=attachment.size,
                                 hash_ciphertext=False)
        self.hasher = ciphertext_hasher()
        self.expected_hash = attachment.hash
        self.size = attachment.size
        # The hidden names are predictable: in a folder others can write to, a link planted
        # there must not make us write through it (plaintext into someone's file, or ours
        # truncated). The temporary file is always made anew; the part file never followed.
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

    def replay(self, total: int) -> int:
        """Decrypt what an earlier attempt left in the part file; returns its length."""
        size = os.fstat(self.part.fileno()).st_size
        if size > total:  # cannot be ours: start over
            self.part.truncate(0)
            size = 0
        self.part.seek(0)
        while self.have < size:
            data = self.part.read(min(READ_PIECE, size - self.have))
            if not data:
                break
            self.hasher.update(data)
            self.out.write(self.dec.update(data))
            self.have += len(data)
        self.part.seek(self.have)
        self.part.truncate(self.have)
        return self.have

    def decrypt(self, chunks: list[bytes]) -> list[bytes]:
        """The plaintext of a batch of whole ciphertext chunks (each checked)."""
        return [self.dec.update(chunk) for chunk in chunks]

    def hash(self, chunks: list[bytes]) -> None:
        """Add a batch of ciphertext to the hash (batches in order, one at a time)."""
        for chunk in chunks:
            self.hasher.update(chunk)

    def keep(self, chunks: list[bytes], plain: list[bytes]) -> None:
        """Append a decrypted batch to both files."""
        self.part.writelines(chunks)
        self.out.writelines(plain)
        self.have += sum(map(len, chunks))

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


_PLAINTEXT_LEFTOVER = re.compile(r"\..+\.[0-9a-f]{12}\.koktmp", re.DOTALL)


def remove_plaintext_leftovers(folder: Path) -> list[str]:
    """Delete the decrypted temporary files a killed save left in ``folder``; their names.

    A save holds a lock on its temporary file, so one still running keeps it. The file is
    emptied before it is unlinked, so no other name left pointing at it keeps the plaintext.
    The ciphertext part files stay: the next save of that attachment resumes from them.
    """
    removed = []
    try:
        names = [e.name for e in os.scandir(folder)
                 if _PLAINTEXT_LEFTOVER.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    except OSError:
        return []
    for name in names:
        try:
            fd = os.open(folder / name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            facts = os.fstat(fd)
            if facts.st_uid != os.geteuid() or facts.st_nlink != 1:
                continue  # not a file a save of ours made: never empty someone else's
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.unlink(folder / name)
            removed.append(name)
        except OSError:
            continue  # a save in progress holds it (or it is already gone)
        finally:
            os.close(fd)
    return removed


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
                 progress: Progress | None) -> None:
    """One GET from ``job.have`` on; returns when the body ends (complete or not)."""
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
                              progress: Progress | None = None) -> Path:
    """Fetch, verify and decrypt one attachment into ``dest_dir``; returns the final path."""
    name = name or sanitize_name(attachment.name)
    final = dest_dir / name
    if final.exists() and not force:
        raise TransferError("file_exists", path=str(final))
    tag = attachment.drop.hex()[:12]
    part = dest_dir / f".{name}.{tag}.kokpart"
    tmp = dest_dir / f".{name}.{tag}.koktmp"
    total = ciphertext_size(attachment.size)
    drop = b64encode(attachment.drop)
    keep_part = False
    await asyncio.to_thread(remove_plaintext_leftovers, dest_dir)
    try:
        job = await asyncio.to_thread(_Saving, part, tmp, attachment)
    except OSError as exc:
        raise TransferError("save_failed", path=str(dest_dir), detail=exc.strerror or "") from None
    try:
        await asyncio.to_thread(job.replay, total)
        if progress and job.have:
            progress(job.have, total)

        async def attempt() -> None:
            await _fetch(api, drop, job, total, progress)
            if job.have < total:
                raise _Unfinished()

        try:
            await api.retrying(attempt, repeatable=True, auth=True,
                               attempts=api.policy.transfer_attempts, again=(_Unfinished,))
        except (RelayUnreachable, _Unfinished):
            keep_part = True  # the next attempt resumes from here
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
        keep_part = True  # interrupted by the person: the next attempt resumes
        raise
    finally:
        job.close()
        tmp.unlink(missing_ok=True)
        if not keep_part:
            part.unlink(missing_ok=True)
    return final
