"""File streams: secretstream XChaCha20-Poly1305 in 64 KiB chunks, padded inside.

Theory of operation
-------------------
The plaintext *stream* of a file of ``n`` bytes is::

    u64be(n) || file bytes || zero bytes        total P = padme(8 + n)

cut into chunks of ``CHUNK_SIZE`` (65536) bytes; the last chunk holds the remainder
(1..65536 bytes). The ciphertext is::

    header (24 bytes) || push(chunk_1, TAG_MESSAGE) || ... || push(chunk_k, TAG_FINAL)

with each pushed chunk ``17`` bytes longer than its plaintext. A reader MUST fail if the
stream ends without a chunk tagged FINAL (truncation), if any byte follows that chunk
(extension), if any chunk fails authentication (tampering, reordering, wrong key), if the
padding is not zero, or if ``n`` differs from the size the sender signed.

libsodium draws the 24-byte header at random in ``init_push``. To keep this module free of
I/O the caller passes the header; the push state is then derived exactly as ``init_pull``
derives it (both are HChaCha20 of key and header), so the stream is a standard one.
"""

from __future__ import annotations

import hashlib

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
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def padded_stream_size(size: int) -> int:
    """P: the plaintext stream length for a file of ``size`` bytes."""
    return padme(SIZE_PREFIX + size)


def ciphertext_size(size: int) -> int:
    """Exact ciphertext length for a file of ``size`` bytes."""
    padded = padded_stream_size(size)
    chunks = -(-padded // CHUNK_SIZE)
    return HEADER_SIZE + padded + chunks * ABYTES


def _state(key: bytes, header: bytes) -> object:
    if len(key) != KEY_SIZE:
        raise BadField("a file key must be 32 bytes")
    if len(header) != HEADER_SIZE:
        raise BadField("a stream header must be 24 bytes")
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    return state


class FileEncryptor:
    """Encrypt a file of known ``size``: feed bytes with ``update``, end with ``finalize``.

    Every call returns ciphertext bytes ready to upload; the first call's output begins
    with the header. ``ciphertext_hash`` (BLAKE2b-256) is ready after ``finalize``.
    """

    def __init__(self, key: bytes, header: bytes, size: int) -> None:
        if size < 0:
            raise BadField("size must not be negative")
        self._state = _state(key, header)
        self.size = size
        self._padded = padded_stream_size(size)
        self._fed = 0
        self._emitted_plain = 0
        self._buffer = bytearray(size.to_bytes(SIZE_PREFIX, "big"))
        self._pending_header = header
        self._hash = hashlib.blake2b(digest_size=32)
        self._done = False

    def _emit(self, out: bytearray, chunk: bytes, tag: int) -> None:
        ct = sodium.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, None, tag)
        out += ct
        self._emitted_plain += len(chunk)

    def _start(self) -> bytearray:
        out = bytearray(self._pending_header)
        self._pending_header = b""
        return out

    def update(self, data: bytes) -> bytes:
        """Encrypt what fills whole chunks; keep the rest for the next call."""
        if self._done:
            raise BadField("the stream is already finalized")
        self._fed += len(data)
        if self._fed > self.size:
            raise StreamSizeMismatch("more data than the declared size")
        self._buffer += data
        out = self._start()
        # keep at least one byte back so the last chunk can carry TAG_FINAL
        while len(self._buffer) > CHUNK_SIZE and self._emitted_plain + CHUNK_SIZE < self._padded:
            self._emit(out, bytes(self._buffer[:CHUNK_SIZE]), TAG_MESSAGE)
            del self._buffer[:CHUNK_SIZE]
        self._hash.update(out)
        return bytes(out)

    def finalize(self) -> bytes:
        """Pad, encrypt the remaining chunks, the last with TAG_FINAL."""
        if self._done:
            raise BadField("the stream is already finalized")
        if self._fed != self.size:
            raise StreamSizeMismatch(f"got {self._fed} bytes, declared {self.size}")
        self._done = True
        self._buffer += bytes(self._padded - self._emitted_plain - len(self._buffer))
        out = self._start()
        while len(self._buffer) > CHUNK_SIZE:
            self._emit(out, bytes(self._buffer[:CHUNK_SIZE]), TAG_MESSAGE)
            del self._buffer[:CHUNK_SIZE]
        self._emit(out, bytes(self._buffer), TAG_FINAL)
        self._buffer.clear()
        self._hash.update(out)
        return bytes(out)

    @property
    def ciphertext_hash(self) -> bytes:
        if not self._done:
            raise BadField("the hash is known only after finalize")
        return self._hash.digest()


class FileDecryptor:
    """Decrypt a stream fed in pieces of any size (one byte at a time works).

    ``update`` returns file bytes as soon as their chunk authenticates; ``finalize``
    raises unless the stream ended exactly after its FINAL chunk with the expected size
    and hash. Callers write output to a temporary file and keep it only if ``finalize``
    returns.
    """

    def __init__(self, key: bytes, *, expected_size: int | None = None,
                 expected_hash: bytes | None = None) -> None:
        if len(key) != KEY_SIZE:
            raise BadField("a file key must be 32 bytes")
        self._key = key
        self._state: object | None = None
        self._buffer = bytearray()
        self._hash = hashlib.blake2b(digest_size=32)
        self._expected_size = expected_size
        self._expected_hash = expected_hash
        self._size: int | None = None  # from the stream's own prefix
        self._plain_seen = 0  # stream plaintext bytes, prefix and padding included
        self._file_out = 0
        self._final = False
        self._received = 0

    @property
    def expected_ciphertext(self) -> int | None:
        return None if self._size is None else ciphertext_size(self._size)

    def update(self, data: bytes) -> bytes:
        """Feed ciphertext; return the file bytes it completes."""
        if not data:
            return b""
        if self._final:
            raise StreamTrailingData()
        self._received += len(data)
        self._hash.update(data)
        self._buffer += data
        out = bytearray()
        if self._state is None:
            if len(self._buffer) < HEADER_SIZE:
                return b""
            self._state = _state(self._key, bytes(self._buffer[:HEADER_SIZE]))
            del self._buffer[:HEADER_SIZE]
        # a full-size chunk can be opened once one more byte shows it is not the whole rest,
        # or at once if its tag says FINAL (then any further byte is trailing data)
        while len(self._buffer) >= CHUNK_CIPHERTEXT:
            self._pull(bytes(self._buffer[:CHUNK_CIPHERTEXT]), out)
            del self._buffer[:CHUNK_CIPHERTEXT]
            if self._final and self._buffer:
                raise StreamTrailingData()
        if self._size is not None and not self._final:
            expected_end = ciphertext_size(self._size)
            if self._received == expected_end and self._buffer:
                self._pull(bytes(self._buffer), out)
                self._buffer.clear()
            elif self._received > expected_end:
                raise StreamTrailingData()
        return bytes(out)

    def _pull(self, chunk: bytes, out: bytearray) -> None:
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, chunk, None)
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise StreamCorrupt() from exc
        if tag not in (TAG_MESSAGE, TAG_FINAL):
            raise StreamCorrupt(f"unexpected chunk tag {tag}")
        start = self._plain_seen
        self._plain_seen += len(plain)
        if self._size is None:
            if len(plain) < SIZE_PREFIX:
                raise StreamCorrupt("first chunk too short for the size prefix")
            self._size = int.from_bytes(plain[:SIZE_PREFIX], "big")
            if self._expected_size is not None and self._size != self._expected_size:
                raise StreamSizeMismatch(
                    f"the file holds {self._size} bytes, its sender signed {self._expected_size}"
                )
        padded = padded_stream_size(self._size)
        file_end = SIZE_PREFIX + self._size
        if self._plain_seen > padded:
            raise StreamCorrupt("the stream is longer than its padded size")
        lo = max(start, SIZE_PREFIX)
        hi = min(self._plain_seen, file_end)
        if hi > lo:
            out += plain[lo - start : hi - start]
            self._file_out += hi - lo
        pad_from = max(start, file_end)
        if self._plain_seen > pad_from and any(plain[pad_from - start :]):
            raise StreamCorrupt("padding bytes are not zero")
        if tag == TAG_FINAL:
            if self._plain_seen != padded:
                raise StreamCorrupt("the final chunk came at the wrong place")
            self._final = True
        elif self._plain_seen >= padded:
            raise StreamTruncated("the stream's last chunk is not marked final")

    def finalize(self) -> bytes:
        """Return the last file bytes; raise unless the whole stream arrived intact."""
        out = bytearray()
        if not self._final and self._buffer and self._state is not None:
            expected = self.expected_ciphertext
            if expected is not None and self._received < expected:
                raise StreamTruncated()
            self._pull(bytes(self._buffer), out)
            self._buffer.clear()
        if not self._final:
            raise StreamTruncated()
        if self._expected_hash is not None and self._hash.digest() != self._expected_hash:
            raise StreamHashMismatch()
        return bytes(out)

    @property
    def ciphertext_hash(self) -> bytes:
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
