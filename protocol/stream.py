"""File streams: secretstream XChaCha20-Poly1305 in 64 KiB chunks, padded inside.

Theory of operation
-------------------
The plaintext *stream* of a file of ``n`` bytes is::

    u64be(n) || file bytes || zero bytes        total P = padme(8 + n)

cut into K = ceil(P / 65536) chunks of ``CHUNK_SIZE`` (65536) bytes; the last chunk holds
the remainder (1..65536 bytes). The ciphertext is::

    header (24 bytes) || push(chunk_1, TAG_MESSAGE) || ... || push(chunk_K, TAG_FINAL)

with each pushed chunk ``ABYTES`` (17) bytes longer than its plaintext, so the layout of
the whole ciphertext follows from ``n`` alone (``ciphertext_size``). A reader MUST fail if
the stream ends before the chunk tagged FINAL (truncation), if any byte follows that chunk
(extension), if any chunk fails authentication (tampering, reordering, wrong key), if a
tag sits at the wrong place, if the padding is not zero, or if ``n`` differs from the
size the sender signed. Chunk lengths are fixed, so the reader never guesses where a
chunk ends: from the signed size if it has it, else from the first chunk's prefix.

libsodium draws the 24-byte header at random in ``init_push``. To keep this module free of
I/O the caller passes the header; the push state is then made exactly as ``init_pull``
makes it (``init_push`` and ``init_pull`` both set key = HChaCha20(key, header[0:16]),
counter = 1, nonce = header[16:24]), so the stream is a standard one.

The ciphertext hash (the commitment a sender signs into the message) is SHA-256: chosen by
measurement over BLAKE2b-256 because hashlib's SHA-256 uses the CPU's SHA extensions where
they exist (x86 SHA-NI, ARMv8 SHA2), which makes it about twice as fast here and keeps the
hash from costing as much as the cipher; it needs no extra dependency in any language.

Resuming a decryption: between two chunks a ``FileDecryptor`` can state where it stands
(``position``: the secretstream state, 52 bytes, and how much ciphertext and stream plaintext
it consumed) and a new one can go on from there (``FileDecryptor.resume``), so a client that
kept the plaintext it already wrote need not decrypt it again. The state holds the stream's
subkey and nonce: it decrypts the rest of the stream, so it is as secret as the file key and
a caller stores it only sealed. The ciphertext hash cannot be carried over (hashlib cannot
export a SHA-256 midstate), so a resumed decryptor leaves hashing to its caller, who hashes
the whole ciphertext itself (SPEC 13.4 is unchanged).

Throughput: PyNaCl wants ``bytes`` per chunk, so each chunk is copied once out of the
caller's pieces (``b"".join`` over memoryviews) and nothing else is copied on the way.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions

from .errors import (
    BadField,
    StreamCorrupt,
    StreamHashMismatch,
    StreamSizeMismatch,
    StreamTrailingData,
    StreamTruncated,
)
from .padding import padme

CHUNK_SIZE = 65536
HEADER_SIZE = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
KEY_SIZE = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES  # 32
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17
CHUNK_CIPHERTEXT = CHUNK_SIZE + ABYTES
SIZE_PREFIX = 8
MAX_FILE_SIZE = 2**48
"""Largest file size a stream may declare (256 TiB: far above any relay limit)."""
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL

_push = sodium.crypto_secretstream_xchacha20poly1305_push
_pull = sodium.crypto_secretstream_xchacha20poly1305_pull


HASH_SIZE = 32
STATE_SIZE = sodium.crypto_secretstream_xchacha20poly1305_STATEBYTES  # 52


def ciphertext_hasher() -> hashlib._Hash:
    """A fresh SHA-256 over a stream's whole ciphertext, header included (SPEC 13.4)."""
    return hashlib.sha256()


def padded_stream_size(size: int) -> int:
    """P: the plaintext stream length for a file of ``size`` bytes."""
    return padme(SIZE_PREFIX + size)


def chunk_count(size: int) -> int:
    """K: the number of chunks in the stream of a file of ``size`` bytes."""
    return -(-padded_stream_size(size) // CHUNK_SIZE)


def ciphertext_size(size: int) -> int:
    """Exact ciphertext length for a file of ``size`` bytes."""
    return HEADER_SIZE + padded_stream_size(size) + chunk_count(size) * ABYTES


def _check_size(size: int) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_SIZE:
        raise BadField(f"a file size is an integer from 0 to {MAX_FILE_SIZE}")
    return size


def _state(key: bytes, header: bytes) -> sodium.crypto_secretstream_xchacha20poly1305_state:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise BadField("a file key must be 32 bytes")
    if not isinstance(header, bytes) or len(header) != HEADER_SIZE:
        raise BadField("a stream header must be 24 bytes")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    return state


@dataclass(frozen=True, repr=False)
class StreamPosition:
    """Where a ``FileDecryptor`` stands between two chunks: enough to go on from there.

    ``state`` is the secretstream state (subkey and nonce): secret like the file key.
    """

    state: bytes
    ciphertext: int
    """Ciphertext bytes consumed, header included."""
    plaintext: int
    """Stream plaintext bytes consumed (size prefix, file bytes, padding)."""

    def file_bytes(self, size: int) -> int:
        """How many bytes of a file of ``size`` bytes were released up to here."""
        return max(0, min(self.plaintext, SIZE_PREFIX + size) - SIZE_PREFIX)


class _Pieces:
    """A FIFO of byte pieces from which exact-length ``bytes`` are taken with one copy."""

    def __init__(self) -> None:
        self._pieces: deque[memoryview] = deque()
        self.length = 0

    def add(self, data: bytes) -> None:
        """Queue ``data`` (kept by reference, so it must not change afterwards)."""
        if data:
            self._pieces.append(memoryview(data))
            self.length += len(data)

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes (the caller checked that ``length >= n``)."""
        parts: list[memoryview] = []
        need = n
        while need:
            piece = self._pieces[0]
            if len(piece) <= need:
                parts.append(self._pieces.popleft())
                need -= len(piece)
            else:
                parts.append(piece[:need])
                self._pieces[0] = piece[need:]
                need = 0
        self.length -= n
        if len(parts) == 1 and isinstance(parts[0].obj, bytes) and len(parts[0].obj) == n:
            return parts[0].obj  # a whole piece: no copy
        return b"".join(parts)


def _as_bytes(data: bytes | bytearray | memoryview) -> bytes:
    # keep no view into a caller's buffer that it might reuse (readinto) after the call
    return data if isinstance(data, bytes) else bytes(data)


class FileEncryptor:
    """Encrypt a file of known ``size``: feed bytes with ``update``, end with ``finalize``.

    Every call returns ciphertext bytes ready to upload; the first call's output begins
    with the header. ``ciphertext_hash`` (SHA-256) is ready after ``finalize``.
    ``header`` MUST be 24 fresh random bytes and ``key`` a fresh random key per file.

    With ``hash_ciphertext=False`` the caller hashes every byte it is given, in order, with
    ``ciphertext_hasher()`` (e.g. in another thread, while the next chunks are encrypted);
    ``ciphertext_hash`` is then not available.
    """

    def __init__(self, key: bytes, header: bytes, size: int, *,
                 hash_ciphertext: bool = True) -> None:
        self.size = _check_size(size)
        self._state = _state(key, header)
        self._padded = padded_stream_size(size)
        self._fed = 0
        self._emitted = 0  # stream plaintext bytes encrypted so far
        self._pieces = _Pieces()
        self._pieces.add(size.to_bytes(SIZE_PREFIX, "big"))
        self._header: bytes | None = header
        self._hash = ciphertext_hasher() if hash_ciphertext else None
        self._started_final = False
        self._done = False

    def _out(self, out: list[bytes], ciphertext: bytes) -> None:
        if self._hash is not None:
            self._hash.update(ciphertext)
        out.append(ciphertext)

    def _begin(self) -> list[bytes]:
        out: list[bytes] = []
        if self._header is not None:
            self._out(out, self._header)
            self._header = None
        return out

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt what fills whole chunks; keep the rest for the next call."""
        if self._started_final:
            raise BadField("the stream is already finalized")
        self._fed += len(data)
        if self._fed > self.size:
            raise StreamSizeMismatch("more data than the declared size")
        self._pieces.add(_as_bytes(data))
        out = self._begin()
        # a chunk is pushed once it is complete and known not to be the last one, which
        # must wait for finalize to carry TAG_FINAL
        while self._pieces.length >= CHUNK_SIZE and self._emitted + CHUNK_SIZE < self._padded:
            self._out(out, _push(self._state, self._pieces.take(CHUNK_SIZE), None, TAG_MESSAGE))
            self._emitted += CHUNK_SIZE
        return out[0] if len(out) == 1 else b"".join(out)

    def finalize_chunks(self) -> Iterator[bytes]:
        """Pad and encrypt the rest one chunk at a time (memory stays one chunk)."""
        if self._started_final:
            raise BadField("the stream is already finalized")
        if self._fed != self.size:
            raise StreamSizeMismatch(f"got {self._fed} bytes, declared {self.size}")
        self._started_final = True
        return self._final_chunks()

    def _final_chunks(self) -> Iterator[bytes]:
        if self._header is not None:
            yield b"".join(self._begin())
        while True:
            remaining = self._padded - self._emitted
            n = min(remaining, CHUNK_SIZE)
            # top the pieces up with zeros, one chunk's worth at a time
            if self._pieces.length < n:
                self._pieces.add(bytes(n - self._pieces.length))
            last = remaining <= CHUNK_SIZE
            ciphertext = _push(self._state, self._pieces.take(n), None,
                               TAG_FINAL if last else TAG_MESSAGE)
            self._emitted += n
            if self._hash is not None:
                self._hash.update(ciphertext)
            if last:
                self._done = True
            yield ciphertext
            if last:
                return

    def finalize(self) -> bytes:
        """Pad, encrypt the remaining chunks, the last with TAG_FINAL."""
        return b"".join(self.finalize_chunks())

    @property
    def ciphertext_hash(self) -> bytes:
        """SHA-256 of the whole ciphertext (header included); known after finalize."""
        if not self._done:
            raise BadField("the hash is known only after finalize")
        if self._hash is None:
            raise BadField("this encryptor was made without hashing: the caller hashes")
        return self._hash.digest()


class FileDecryptor:
    """Decrypt a stream fed in pieces of any size (one byte at a time works).

    ``update`` returns file bytes as soon as their chunk authenticates; ``finalize``
    raises unless the stream ended exactly after its FINAL chunk with the expected size
    and hash, and returns the last file bytes. Callers write output to a temporary file
    and keep it only if ``finalize`` returns. With ``expected_size`` (the size the sender
    signed) every chunk boundary is known in advance, so truncation and extension are
    reported as such even for one-chunk files.
    """

    def __init__(self, key: bytes, *, expected_size: int | None = None,
                 expected_hash: bytes | None = None, hash_ciphertext: bool = True) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise BadField("a file key must be 32 bytes")
        if expected_hash is not None and len(expected_hash) != HASH_SIZE:
            raise BadField("a ciphertext hash is 32 bytes")
        if expected_hash is not None and not hash_ciphertext:
            raise BadField("checking a ciphertext hash needs hashing (or the caller checks it)")
        self._key = key
        self._expected_size = None if expected_size is None else _check_size(expected_size)
        self._expected_hash = expected_hash
        self._state: sodium.crypto_secretstream_xchacha20poly1305_state | None = None
        self._pieces = _Pieces()
        self._hash = ciphertext_hasher() if hash_ciphertext else None
        self._size: int | None = None  # from the stream's own (authenticated) prefix
        # the layout: from the signed size now, or from the stream's prefix later
        self._padded: int | None = (
            None if expected_size is None else padded_stream_size(expected_size)
        )
        self._plain_seen = 0  # stream plaintext bytes, prefix and padding included
        self._final = False
        self._received = 0

    @classmethod
    def resume(cls, key: bytes, position: StreamPosition, *, expected_size: int,
               expected_hash: bytes | None = None) -> FileDecryptor:
        """A decryptor going on from ``position`` (taken by ``position()`` on the same stream).

        It does not hash: the ciphertext before ``position`` never passes through it, so the
        caller hashes the whole ciphertext and compares it with the signed hash.
        """
        if expected_hash is not None:
            raise BadField("a resumed decryptor cannot check the whole ciphertext's hash")
        dec = cls(key, expected_size=expected_size, hash_ciphertext=False)
        padded = padded_stream_size(expected_size)
        plain, cipher = position.plaintext, position.ciphertext
        chunks, inside = divmod(plain, CHUNK_SIZE)
        if (not isinstance(position.state, bytes) or len(position.state) != STATE_SIZE
                or inside or not 0 < plain < padded
                or cipher != HEADER_SIZE + plain + chunks * ABYTES):
            raise BadField("not a position between two chunks of this stream")
        state = _state(key, bytes(HEADER_SIZE))  # sets up PyNaCl's buffers; replaced below
        state.statebuf[0:STATE_SIZE] = position.state  # type: ignore[index]  # a cffi array
        dec._state = state
        dec._size = expected_size
        dec._plain_seen = plain
        dec._received = cipher
        return dec

    def position(self) -> StreamPosition:
        """Where this decryptor stands; only between two chunks, before the last one."""
        if self._state is None or self._size is None or self._final or self._pieces.length:
            raise BadField("a decryptor can say where it stands only between two chunks")
        return StreamPosition(bytes(self._state.statebuf), self._received, self._plain_seen)

    @property
    def expected_ciphertext(self) -> int | None:
        """Total ciphertext length, once the size is known."""
        size = self._size if self._size is not None else self._expected_size
        return None if size is None else ciphertext_size(size)

    def _next_chunk_length(self) -> int:
        if self._padded is None:
            return CHUNK_CIPHERTEXT
        return min(self._padded - self._plain_seen, CHUNK_SIZE) + ABYTES

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed ciphertext; return the file bytes it completes."""
        if not data:
            return b""
        if self._final:
            raise StreamTrailingData()
        data = _as_bytes(data)
        self._received += len(data)
        if self._hash is not None:
            self._hash.update(data)
        self._pieces.add(data)
        out: list[bytes | memoryview] = []
        if self._state is None:
            if self._pieces.length < HEADER_SIZE:
                return b""
            self._state = _state(self._key, self._pieces.take(HEADER_SIZE))
        while not self._final:
            n = self._next_chunk_length()
            if self._pieces.length < n:
                break
            self._open_chunk(self._pieces.take(n), out)
        if self._final and self._pieces.length:
            raise StreamTrailingData()
        return out[0] if len(out) == 1 and isinstance(out[0], bytes) else b"".join(out)

    def _open_chunk(self, chunk: bytes, out: list[bytes | memoryview]) -> None:
        if self._state is None:  # cannot happen: chunks are taken only after the header
            raise StreamCorrupt("a chunk before the stream header")
        try:
            plain, tag = _pull(self._state, chunk, None)
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise StreamCorrupt() from exc
        start = self._plain_seen
        self._plain_seen += len(plain)
        if start == 0:
            size, padded = self._read_prefix(plain)
        elif self._size is None or self._padded is None:  # cannot happen: chunk 1 sets both
            raise StreamCorrupt("the stream has no size prefix")
        else:
            size, padded = self._size, self._padded
        file_end = SIZE_PREFIX + size
        lo, hi = max(start, SIZE_PREFIX), min(self._plain_seen, file_end)
        if hi - lo == len(plain):
            out.append(plain)
        elif hi > lo:
            out.append(memoryview(plain)[lo - start : hi - start])
        # tags before padding, as SPEC 13.3 orders them (step 4, then step 5): a last chunk
        # without FINAL is a truncation whatever its padding holds
        last = self._plain_seen >= padded
        if tag == TAG_FINAL and last:
            final = True
        elif tag == TAG_FINAL:
            raise StreamCorrupt("a chunk before the last is marked final")
        elif tag != TAG_MESSAGE:
            raise StreamCorrupt(f"unexpected chunk tag {tag}")
        elif last:
            raise StreamTruncated("the stream's last chunk is not marked final")
        else:
            final = False
        pad_from = max(start, file_end) - start
        if pad_from < len(plain) and plain.count(0, pad_from) != len(plain) - pad_from:
            raise StreamCorrupt("padding bytes are not zero")
        self._final = final

    def _read_prefix(self, plain: bytes) -> tuple[int, int]:
        if len(plain) < SIZE_PREFIX:
            raise StreamCorrupt("the first chunk is too short for the size prefix")
        size = int.from_bytes(plain[:SIZE_PREFIX], "big")
        if self._expected_size is not None and size != self._expected_size:
            raise StreamSizeMismatch(
                f"the file holds {size} bytes, its sender signed {self._expected_size}"
            )
        if size > MAX_FILE_SIZE:
            raise StreamCorrupt("the stream declares an impossible size")
        padded = padded_stream_size(size)
        if len(plain) != min(padded, CHUNK_SIZE):
            raise StreamCorrupt("the first chunk does not match the declared size")
        self._size, self._padded = size, padded
        return size, padded

    def finalize(self) -> bytes:
        """Return the last file bytes; raise unless the whole stream arrived intact."""
        out: list[bytes | memoryview] = []
        if not self._final:
            if self._state is None:
                raise StreamTruncated("the stream ends inside its header")
            if self._padded is not None or self._pieces.length == 0:
                raise StreamTruncated()
            # no signed size and a first chunk shorter than a full one: this is the whole
            # (one-chunk) stream, or a damaged one; authentication decides which
            self._open_chunk(self._pieces.take(self._pieces.length), out)
            if not self._final:
                raise StreamTruncated()
        if (self._expected_hash is not None and self._hash is not None
                and self._hash.digest() != self._expected_hash):
            raise StreamHashMismatch()
        return b"".join(out)

    @property
    def ciphertext_hash(self) -> bytes:
        """SHA-256 of the ciphertext received so far."""
        if self._hash is None:
            raise BadField("this decryptor was made without hashing: the caller hashes")
        return self._hash.digest()


def encrypt_file_bytes(key: bytes, header: bytes, data: bytes) -> bytes:
    """Whole-buffer convenience for tests and vectors."""
    enc = FileEncryptor(key, header, len(data))
    return enc.update(data) + enc.finalize()


def decrypt_file_bytes(key: bytes, ciphertext: bytes, *, expected_size: int | None = None,
                       expected_hash: bytes | None = None) -> bytes:
    """Whole-buffer convenience for tests and vectors."""
    dec = FileDecryptor(key, expected_size=expected_size, expected_hash=expected_hash)
    return dec.update(ciphertext) + dec.finalize()
