"""Key pairs from seeds, fingerprints, labelled signatures, safety codes, sealed boxes."""

from __future__ import annotations

import base64
import hashlib

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import labels
from protocol.errors import BadField, DecryptFailed, SignatureError, WrongSigner
from protocol.keys import (
    BoxKeyPair,
    SigningKeyPair,
    fingerprint,
    format_fingerprint,
    safety_code,
    verify,
    verify_item,
)
from protocol.sealedbox import OVERHEAD, open_sealed, seal

from .world import seed

SETTINGS = settings(max_examples=40, deadline=None)
SIGNER = SigningKeyPair.from_seed(seed("keys/signer"))


def test_fingerprint_is_blake2b_160_in_base32() -> None:
    public = SIGNER.public
    digest = hashlib.blake2b(public, digest_size=20).digest()
    assert fingerprint(public) == base64.b32encode(digest).decode()
    assert len(fingerprint(public)) == 32 and "=" not in fingerprint(public)
    assert format_fingerprint(fingerprint(public)).count(" ") == 7
    with pytest.raises(BadField):
        fingerprint(public[:31])


def test_keys_come_from_seeds_the_libsodium_way() -> None:
    assert SIGNER.public == sodium.crypto_sign_seed_keypair(seed("keys/signer"))[0]
    box = BoxKeyPair.from_seed(seed("keys/box"))
    assert box.public == sodium.crypto_scalarmult_base(seed("keys/box"))
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(BadField):
            SigningKeyPair.from_seed(bad)
        with pytest.raises(BadField):
            BoxKeyPair.from_seed(bad)


def test_secrets_never_show_in_repr() -> None:
    box = BoxKeyPair.from_seed(seed("keys/box"))
    assert seed("keys/signer").hex() not in repr(SIGNER)
    assert SIGNER.fingerprint in repr(SIGNER)
    assert box.secret.hex() not in repr(box) and repr(box.secret) not in repr(box)


@SETTINGS
@given(st.lists(st.binary(max_size=20), max_size=3), st.sampled_from(labels.ALL))
def test_signatures_verify_only_for_their_label_and_parts(parts: list[bytes],
                                                           label: bytes) -> None:
    sig = SIGNER.sign(label, *parts)
    verify(SIGNER.public, sig, label, *parts)
    other = next(x for x in labels.ALL if x != label)
    with pytest.raises(SignatureError):
        verify(SIGNER.public, sig, other, *parts)
    with pytest.raises(SignatureError):
        verify(SIGNER.public, sig, label, *parts, b"")


@SETTINGS
@given(st.integers(0, 64 * 8 - 1))
def test_any_flipped_signature_bit_fails(bit: int) -> None:
    sig = bytearray(SIGNER.sign(labels.AUTH, b"x"))
    sig[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(SignatureError):
        verify(SIGNER.public, bytes(sig), labels.AUTH, b"x")


def test_verify_item_names_the_missing_signer() -> None:
    item = SIGNER.sign_item(labels.RECORD, b"{}")
    verify_item(item, SIGNER.public, labels.RECORD)
    other = SigningKeyPair.from_seed(seed("keys/other"))
    with pytest.raises(WrongSigner):
        verify_item(item, other.public, labels.RECORD)
    with pytest.raises(SignatureError):
        verify(SIGNER.public, bytes(32), labels.RECORD, b"{}")


def test_safety_code_is_symmetric_and_thirty_digits() -> None:
    a, b = SIGNER.public, SigningKeyPair.from_seed(seed("keys/other")).public
    code = safety_code(a, b)
    assert code == safety_code(b, a)
    assert code != safety_code(a, a)
    groups = code.split(" ")
    assert len(groups) == 6 and all(len(g) == 5 and g.isdigit() for g in groups)
    with pytest.raises(BadField):
        safety_code(a, b[:16])


RECIPIENT = BoxKeyPair.from_seed(seed("keys/recipient"))


@SETTINGS
@given(st.binary(max_size=200), st.binary(min_size=32, max_size=32))
def test_seeded_seal_is_a_standard_sealed_box(plaintext: bytes, ephemeral: bytes) -> None:
    sealed = seal(RECIPIENT.public, plaintext, ephemeral)
    assert len(sealed) == len(plaintext) + OVERHEAD
    assert sodium.crypto_box_seal_open(sealed, RECIPIENT.public, RECIPIENT.secret) == plaintext
    assert open_sealed(RECIPIENT.public, RECIPIENT.secret, sealed) == plaintext
    assert seal(RECIPIENT.public, plaintext, ephemeral) == sealed  # deterministic


def test_open_sealed_accepts_libsodium_sealed_boxes_and_rejects_tampering() -> None:
    sealed = sodium.crypto_box_seal(b"hello", RECIPIENT.public)
    assert open_sealed(RECIPIENT.public, RECIPIENT.secret, sealed) == b"hello"
    for i in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[i] ^= 0x40
        with pytest.raises(DecryptFailed):
            open_sealed(RECIPIENT.public, RECIPIENT.secret, bytes(damaged))
    with pytest.raises(DecryptFailed):
        open_sealed(RECIPIENT.public, RECIPIENT.secret, sealed[: OVERHEAD - 1])
    other = BoxKeyPair.from_seed(seed("keys/other-box"))
    with pytest.raises(DecryptFailed):
        open_sealed(other.public, other.secret, sealed)
