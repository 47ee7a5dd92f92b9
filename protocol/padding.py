"""Padmé padding (Nikitin et al., PETS 2019): leaks O(log log n) bits of a length.

``padme(L)`` rounds L up so that only the top ``floor(log2(floor(log2 L))) + 1`` bits of
the mantissa may be non-zero. Messages are framed as ``u32 length || data || zeros`` and
that whole frame is padded to ``padme(4 + len(data))``.
"""

from __future__ import annotations

from .errors import BadPadding

LENGTH_PREFIX = 4


def padme(length: int) -> int:
    """The Padmé-padded size of ``length`` bytes (``length`` itself for 0, 1 and 2)."""
    if length < 0:
        raise ValueError("length must not be negative")
    if length < 2:
        return length
    e = length.bit_length() - 1  # floor(log2 L)
    s = e.bit_length()  # floor(log2 E) + 1
    last_bits = e - s
    mask = (1 << last_bits) - 1
    return (length + mask) & ~mask


def pad_message(data: bytes) -> bytes:
    """``u32 len || data || zeros`` to the Padmé size of the frame."""
    if len(data) >= 2**32:
        raise ValueError("message too large to pad")
    framed = len(data).to_bytes(LENGTH_PREFIX, "big") + data
    return framed + bytes(padme(len(framed)) - len(framed))


def unpad_message(padded: bytes) -> bytes:
    """Inverse of ``pad_message``; rejects wrong sizes and non-zero padding."""
    if len(padded) < LENGTH_PREFIX:
        raise BadPadding("padded message shorter than its length prefix")
    length = int.from_bytes(padded[:LENGTH_PREFIX], "big")
    end = LENGTH_PREFIX + length
    if end > len(padded) or padme(end) != len(padded):
        raise BadPadding("padded size does not match the declared length")
    if padded.count(0, end) != len(padded) - end:
        raise BadPadding("padding bytes are not zero")
    return padded[LENGTH_PREFIX:end]
