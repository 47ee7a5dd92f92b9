"""File streams: round trips, libsodium compatibility, and every way a stream can be broken."""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import (
    BadField,
    StreamCorrupt,
    StreamError,
    StreamHashMismatch,
    StreamSizeMismatch,
    StreamTrailingData,
    StreamTruncated,
)
from protocol.stream import (
    ABYTES,
    CHUNK_CIPHERTEXT,
    CHUNK_SIZE,
    HEADER_SIZE,
    TAG_FINAL,
    TAG_MESSAGE,
    FileDecryptor,
    FileEncryptor,
    _state,
    chunk_count,
    ciphertext_size,
    decrypt_file_bytes,
    encrypt_file_bytes,
    padded_stream_size,
)

from .world import seed

KEY = seed("stream/key")
HEADER = seed("stream/header")[:HEADER_SIZE]
SMALL = b"Sehr geehrte Damen und Herren, anbei der Bescheid." * 3
TWO_CHUNKS = bytes(range(256)) * 280  # 71680 bytes: two chunks
THREE_CHUNKS = hashlib.shake_256(b"three").digest(140_000)


def _chunks(ciphertext: bytes) -> list[bytes]:
    body = ciphertext[HEADER_SIZE:]
    return [body[i : i + CHUNK_CIPHERTEXT] for i in range(0, len(body), CHUNK_CIPHERTEXT)]


def _decrypt(ciphertext: bytes, size: int | None, digest: bytes | None = None,
             piece: int = 1 << 20) -> bytes:
    dec = FileDecryptor(KEY, expected_size=size, expected_hash=digest)
    out = [dec.update(ciphertext[i : i + piece]) for i in range(0, len(ciphertext), piece)]
    return b"".join(out) + dec.finalize()


def _craft(plain_chunks: list[bytes], tags: list[int]) -> bytes:
    """A stream with chosen plaintext chunks and tags (what only a key holder can make)."""
    state = _state(KEY, HEADER)
    out = [HEADER]
    for chunk, tag in zip(plain_chunks, tags, strict=True):
        out.append(sodium.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag))
    return b"".join(out)


def _stream_plain(data: bytes) -> bytes:
    padded = padded_stream_size(len(data))
    return (len(data).to_bytes(8, "big") + data).ljust(padded, b"\0")


# --- round trips and layout --------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 5000), st.integers(1, 5000))
def test_round_trip_in_any_pieces(data: bytes, write_piece: int, read_piece: int) -> None:
    enc = FileEncryptor(KEY, HEADER, len(data))
    parts = [enc.update(data[i : i + write_piece]) for i in range(0, len(data), write_piece)]
    ciphertext = b"".join(parts) + enc.finalize()
    assert len(ciphertext) == ciphertext_size(len(data))
    assert enc.ciphertext_hash == hashlib.sha256(ciphertext).digest()
    assert _decrypt(ciphertext, len(data), enc.ciphertext_hash, read_piece) == data
    assert _decrypt(ciphertext, None, None, read_piece) == data


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 8, CHUNK_SIZE - 7, CHUNK_SIZE,
                                  2 * CHUNK_SIZE - 8, 2 * CHUNK_SIZE, 200_001])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = hashlib.shake_256(str(size).encode()).digest(size) if size else b""
    ciphertext = encrypt_file_bytes(KEY, HEADER, data)
    assert len(ciphertext) == ciphertext_size(size)
    assert len(_chunks(ciphertext)) == chunk_count(size)
    assert _decrypt(ciphertext, size, piece=CHUNK_CIPHERTEXT) == data
    assert _decrypt(ciphertext, None, piece=65536) == data


def test_the_stream_is_a_standard_libsodium_stream() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, TWO_CHUNKS)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, ciphertext[:HEADER_SIZE], KEY)
    plain, tags = b"", []
    for chunk in _chunks(ciphertext):
        piece, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, None)
        plain += piece
        tags.append(tag)
    assert tags == [TAG_MESSAGE, TAG_FINAL]
    assert plain == _stream_plain(TWO_CHUNKS)


def test_a_stream_from_libsodium_init_push_opens() -> None:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, KEY)
    plain = _stream_plain(SMALL)
    ciphertext = header + sodium.crypto_secretstream_xchacha20poly1305_push(
        state, plain, None, TAG_FINAL)
    assert _decrypt(ciphertext, len(SMALL)) == SMALL


def test_decryptor_fed_one_byte_at_a_time() -> None:
    for data, size in ((SMALL, len(SMALL)), (TWO_CHUNKS, None)):
        ciphertext = encrypt_file_bytes(KEY, HEADER, data)
        dec = FileDecryptor(KEY, expected_size=size)
        out = bytearray()
        for i in range(len(ciphertext)):
            out += dec.update(ciphertext[i : i + 1])
        out += dec.finalize()
        assert bytes(out) == data


def test_plaintext_is_released_chunk_by_chunk() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, THREE_CHUNKS)
    dec = FileDecryptor(KEY, expected_size=len(THREE_CHUNKS))
    first = dec.update(ciphertext[: HEADER_SIZE + CHUNK_CIPHERTEXT])
    assert first == THREE_CHUNKS[: CHUNK_SIZE - 8]  # after authenticating chunk 1 only


def test_finalize_chunks_keeps_memory_to_one_chunk() -> None:
    size = 5 * CHUNK_SIZE + 100  # Padmé adds several chunks of zeros
    enc = FileEncryptor(KEY, HEADER, size)
    head = enc.update(bytes(size))
    tail = list(enc.finalize_chunks())
    assert all(len(piece) <= CHUNK_CIPHERTEXT for piece in tail)
    assert len(head) + sum(map(len, tail)) == ciphertext_size(size)


def test_caller_buffers_may_be_reused() -> None:
    buffer = bytearray(SMALL)
    enc = FileEncryptor(KEY, HEADER, len(SMALL))
    out = enc.update(buffer)
    buffer[:] = bytes(len(buffer))  # e.g. the next readinto()
    assert out + enc.finalize() == encrypt_file_bytes(KEY, HEADER, SMALL)


# --- broken streams --------------------------------------------------------------------------


def _rejects(ciphertext: bytes, error: type[StreamError], size: int | None,
             digest: bytes | None = None) -> None:
    for piece in (1 << 20, 1000):
        with pytest.raises(error):
            _decrypt(ciphertext, size, digest, piece)


def test_truncated_anywhere() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, SMALL)
    for end in range(len(ciphertext)):
        _rejects(ciphertext[:end], StreamTruncated, len(SMALL))
    two = encrypt_file_bytes(KEY, HEADER, TWO_CHUNKS)
    for end in (0, 23, HEADER_SIZE, HEADER_SIZE + CHUNK_CIPHERTEXT,  # the FINAL chunk dropped
                HEADER_SIZE + CHUNK_CIPHERTEXT + 1, len(two) - 1):
        _rejects(two[:end], StreamTruncated, len(TWO_CHUNKS))
    _rejects(two[: HEADER_SIZE + CHUNK_CIPHERTEXT], StreamTruncated, None)


def test_extended() -> None:
    for data in (SMALL, TWO_CHUNKS):
        ciphertext = encrypt_file_bytes(KEY, HEADER, data)
        for extra in (b"\0", ciphertext[-ABYTES:], _chunks(ciphertext)[-1]):
            _rejects(ciphertext + extra, StreamTrailingData, len(data))
    two = encrypt_file_bytes(KEY, HEADER, TWO_CHUNKS)
    _rejects(two + b"\0", StreamTrailingData, None)
    dec = FileDecryptor(KEY)
    dec.update(two)
    with pytest.raises(StreamTrailingData):
        dec.update(b"x")


def test_extended_one_chunk_stream_without_a_signed_size_is_corrupt() -> None:
    # without the signed size the reader cannot tell where a short first chunk ends
    _rejects(encrypt_file_bytes(KEY, HEADER, SMALL) + b"\0", StreamCorrupt, None)


def test_reordered_and_duplicated_chunks() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, THREE_CHUNKS)
    one, two, three = _chunks(ciphertext)
    for chunks in ([two, one, three], [one, one, three], [one, two, two, three],
                   [two, three], [one, two, one, three]):
        _rejects(HEADER + b"".join(chunks), StreamCorrupt, len(THREE_CHUNKS))
    # a dropped middle chunk leaves the stream shorter than its signed size says
    _rejects(HEADER + one + three, StreamTruncated, len(THREE_CHUNKS))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, len(encrypt_file_bytes(KEY, HEADER, SMALL)) * 8 - 1))
def test_any_flipped_bit(bit: int) -> None:
    ciphertext = bytearray(encrypt_file_bytes(KEY, HEADER, SMALL))
    ciphertext[bit // 8] ^= 1 << (bit % 8)
    _rejects(bytes(ciphertext), StreamCorrupt, len(SMALL))


def test_flipped_bit_in_a_later_chunk() -> None:
    ciphertext = bytearray(encrypt_file_bytes(KEY, HEADER, TWO_CHUNKS))
    ciphertext[-5] ^= 0x80
    _rejects(bytes(ciphertext), StreamCorrupt, len(TWO_CHUNKS))


def test_wrong_key() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, SMALL)
    with pytest.raises(StreamCorrupt):
        decrypt_file_bytes(seed("stream/other"), ciphertext, expected_size=len(SMALL))


def test_size_and_hash_must_match_what_the_sender_signed() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, SMALL)
    # a size with the same padded length, so the layout agrees and the prefix decides
    assert padded_stream_size(len(SMALL) + 1) == padded_stream_size(len(SMALL))
    _rejects(ciphertext, StreamSizeMismatch, len(SMALL) + 1)
    _rejects(ciphertext, StreamHashMismatch, len(SMALL), bytes(32))
    _rejects(encrypt_file_bytes(KEY, HEADER, TWO_CHUNKS), StreamSizeMismatch, 70_000)


def test_missing_final_tag_is_truncation() -> None:
    crafted = _craft([_stream_plain(SMALL)], [TAG_MESSAGE])
    _rejects(crafted, StreamTruncated, len(SMALL))
    _rejects(crafted, StreamTruncated, None)
    dec = FileDecryptor(KEY, expected_size=len(SMALL))
    with pytest.raises(StreamTruncated):  # at once, not only at finalize
        dec.update(crafted)


def test_final_tag_too_early_is_corrupt() -> None:
    plain = _stream_plain(TWO_CHUNKS)
    crafted = _craft([plain[:CHUNK_SIZE], plain[CHUNK_SIZE:]], [TAG_FINAL, TAG_FINAL])
    _rejects(crafted, StreamCorrupt, len(TWO_CHUNKS))


def test_other_tags_are_corrupt() -> None:
    rekey = sodium.crypto_secretstream_xchacha20poly1305_TAG_REKEY
    _rejects(_craft([_stream_plain(SMALL)], [rekey]), StreamCorrupt, len(SMALL))


def test_non_zero_padding_is_corrupt() -> None:
    plain = bytearray(_stream_plain(SMALL))
    assert len(plain) > 8 + len(SMALL)
    plain[-1] = 1
    _rejects(_craft([bytes(plain)], [TAG_FINAL]), StreamCorrupt, len(SMALL))


def test_a_chunk_size_that_does_not_fit_the_declared_size_is_corrupt() -> None:
    plain = _stream_plain(SMALL) + bytes(16)  # one chunk, longer than the size allows
    _rejects(_craft([plain], [TAG_FINAL]), StreamCorrupt, None)


# --- the encryptor refuses misuse ----------------------------------------------------------


def test_encryptor_checks_the_declared_size() -> None:
    enc = FileEncryptor(KEY, HEADER, 3)
    with pytest.raises(StreamSizeMismatch):
        enc.update(b"four")
    enc = FileEncryptor(KEY, HEADER, 3)
    enc.update(b"ab")
    with pytest.raises(StreamSizeMismatch):
        enc.finalize()


def test_encryptor_is_used_once() -> None:
    enc = FileEncryptor(KEY, HEADER, 1)
    with pytest.raises(BadField):
        _ = enc.ciphertext_hash
    enc.update(b"a")
    enc.finalize()
    with pytest.raises(BadField):
        enc.update(b"")
    with pytest.raises(BadField):
        enc.finalize()


@pytest.mark.parametrize(("key", "header", "size"), [(KEY[:31], HEADER, 1), (KEY, HEADER[:23], 1),
                                                     (KEY, HEADER, -1), (KEY, HEADER, 2**49)])
def test_encryptor_parameters(key: bytes, header: bytes, size: int) -> None:
    with pytest.raises(BadField):
        FileEncryptor(key, header, size)


def test_decryptor_parameters() -> None:
    with pytest.raises(BadField):
        FileDecryptor(KEY[:16])
    with pytest.raises(BadField):
        FileDecryptor(KEY, expected_hash=bytes(31))


def test_a_caller_may_hash_the_ciphertext_itself() -> None:
    """``hash_ciphertext=False``: the caller's SHA-256 over the output is the same commitment
    (so it can hash in another thread while the next chunks are encrypted)."""
    from protocol.errors import BadField as Bad
    from protocol.stream import ciphertext_hasher

    data = bytes(range(256)) * 600
    key, header = bytes(range(32)), bytes(range(24))
    inside = FileEncryptor(key, header, len(data))
    expected = inside.update(data) + inside.finalize()
    outside = FileEncryptor(key, header, len(data), hash_ciphertext=False)
    hasher = ciphertext_hasher()
    for piece in (outside.update(data), *outside.finalize_chunks()):
        hasher.update(piece)
    assert hasher.digest() == inside.ciphertext_hash
    with pytest.raises(Bad):
        _ = outside.ciphertext_hash
    with pytest.raises(Bad):
        FileDecryptor(key, expected_hash=hasher.digest(), hash_ciphertext=False)
    reader = FileDecryptor(key, expected_size=len(data), hash_ciphertext=False)
    assert reader.update(expected) + reader.finalize() == data


# --- resuming a decryption from a stated position ----------------------------------------


def _split_after_first(ciphertext: bytes) -> tuple[FileDecryptor, bytes, bytes]:
    """A decryptor that consumed the header and first chunk; its output; the rest."""
    cut = HEADER_SIZE + CHUNK_CIPHERTEXT
    dec = FileDecryptor(KEY, expected_size=len(THREE_CHUNKS), hash_ciphertext=False)
    return dec, dec.update(ciphertext[:cut]), ciphertext[cut:]


def test_a_decryption_resumes_from_its_position_without_the_earlier_chunks() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, THREE_CHUNKS)
    dec, first, rest = _split_after_first(ciphertext)
    position = dec.position()
    assert (position.ciphertext, position.plaintext) == (HEADER_SIZE + CHUNK_CIPHERTEXT,
                                                         CHUNK_SIZE)
    assert position.file_bytes(len(THREE_CHUNKS)) == len(first) == CHUNK_SIZE - 8
    again = FileDecryptor.resume(KEY, position, expected_size=len(THREE_CHUNKS))
    assert first + again.update(rest) + again.finalize() == THREE_CHUNKS
    # the position is a snapshot: the first decryptor goes on independently
    assert dec.update(rest) + dec.finalize() == THREE_CHUNKS[len(first):]


def test_a_resumed_decryption_still_detects_tampering_and_truncation() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, THREE_CHUNKS)
    dec, _, rest = _split_after_first(ciphertext)
    position = dec.position()
    for damaged, error in ((rest[:-1], StreamTruncated), (rest + b"\0", StreamTrailingData),
                           (rest[:100] + bytes([rest[100] ^ 1]) + rest[101:], StreamCorrupt),
                           # the chunk before the position served again
                           (ciphertext[HEADER_SIZE:HEADER_SIZE + CHUNK_CIPHERTEXT] + rest,
                            StreamCorrupt)):
        again = FileDecryptor.resume(KEY, position, expected_size=len(THREE_CHUNKS))
        with pytest.raises(error):
            again.update(damaged)
            again.finalize()
    # a state from another stream (or altered) opens nothing
    forged = type(position)(bytes(52), position.ciphertext, position.plaintext)
    with pytest.raises(StreamCorrupt):
        FileDecryptor.resume(KEY, forged, expected_size=len(THREE_CHUNKS)).update(rest)


def test_a_position_exists_only_between_chunks_and_must_fit_the_stream() -> None:
    ciphertext = encrypt_file_bytes(KEY, HEADER, THREE_CHUNKS)
    dec = FileDecryptor(KEY, expected_size=len(THREE_CHUNKS), hash_ciphertext=False)
    with pytest.raises(BadField):
        dec.position()  # nothing read: the size prefix is not checked yet
    dec.update(ciphertext[:HEADER_SIZE + CHUNK_CIPHERTEXT + 10])
    with pytest.raises(BadField):
        dec.position()  # inside a chunk
    good = _split_after_first(ciphertext)[0].position()
    size = len(THREE_CHUNKS)
    for state, cipher, plain in ((good.state[:51], good.ciphertext, good.plaintext),
                                 (good.state, good.ciphertext + 1, good.plaintext),
                                 (good.state, good.ciphertext, good.plaintext + 1),
                                 (good.state, HEADER_SIZE, 0)):
        with pytest.raises(BadField):
            FileDecryptor.resume(KEY, type(good)(state, cipher, plain), expected_size=size)
    with pytest.raises(BadField):
        FileDecryptor.resume(KEY, good, expected_size=size, expected_hash=bytes(32))
    with pytest.raises(BadField):  # past the end of a smaller stream
        FileDecryptor.resume(KEY, good, expected_size=100)
