"""Padmé: the padded size, its leak bound, and the message frame."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import BadPadding
from protocol.padding import pad_message, padme, unpad_message

SETTINGS = settings(max_examples=80, deadline=None)


def _reference(length: int) -> int:
    # the paper's pseudo-code, with floats (exact for these sizes)
    if length < 2:
        return length
    e = math.floor(math.log2(length))
    s = math.floor(math.log2(e)) + 1 if e > 0 else 0
    last_bits = e - s
    mask = (1 << last_bits) - 1 if last_bits > 0 else 0
    return (length + mask) & ~mask


@pytest.mark.parametrize(
    ("length", "padded"),
    [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (9, 10), (100, 104), (1000, 1024),
     (1025, 1088), (65544, 67584), (2**20 + 8, 2**20 + 2**15)],
)
def test_known_values(length: int, padded: int) -> None:
    assert padme(length) == padded


@SETTINGS
@given(st.integers(0, 2**40))
def test_matches_the_paper_and_bounds_overhead(length: int) -> None:
    padded = padme(length)
    assert padded == _reference(length)
    assert length <= padded
    if length >= 2:
        # at most 2^(E-S) - 1 bytes are added, and 2^S > E = floor(log2 L): below L / E
        assert padded - length < length / math.floor(math.log2(length))
    assert padme(padded) == padded  # padded sizes are fixed points


def test_negative_length_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        padme(-1)


@SETTINGS
@given(st.binary(max_size=3000))
def test_message_frame_round_trip(data: bytes) -> None:
    padded = pad_message(data)
    assert len(padded) == padme(4 + len(data))
    assert unpad_message(padded) == data


@pytest.mark.parametrize(
    "padded",
    [b"", b"\x00\x00\x00", b"\x00\x00\x00\x05ab",  # shorter than declared
     b"\x00\x00\x00\x01a\x00",  # one byte more than padme(5)
     pad_message(b"x" * 100)[:-1], pad_message(b"x" * 100) + b"\x00"],
)
def test_unpad_rejects_bad_frames(padded: bytes) -> None:
    with pytest.raises(BadPadding):
        unpad_message(padded)


def test_unpad_rejects_non_zero_padding_bytes() -> None:
    padded = bytearray(pad_message(b"x" * 101))
    assert len(padded) == 112
    padded[-1] = 1
    with pytest.raises(BadPadding, match="not zero"):
        unpad_message(bytes(padded))
