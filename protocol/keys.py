"""Key pairs from seeds, fingerprints, labelled signatures and safety codes.

Keys are libsodium's: Ed25519 for signing (``crypto_sign``), X25519 for boxes
(``crypto_box``). A seed is 32 bytes supplied by the caller (the protocol never reads
the OS random source). A fingerprint is BLAKE2b-160 of the 32-byte public key, written
in unpadded RFC 4648 base32 (32 characters) and shown in groups of four.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public
import nacl.signing

from . import labels
from .encoding import Signature, SignedItem, signing_input
from .errors import BadField, SignatureError, WrongSigner

KEY_SIZE = 32
SIG_SIZE = 64
FINGERPRINT_SIZE = 20


def fingerprint(public_key: bytes) -> str:
    """BLAKE2b-160 of the public key, base32 without padding (32 characters)."""
    if len(public_key) != KEY_SIZE:
        raise BadField("a public key must be 32 bytes")
    digest = hashlib.blake2b(public_key, digest_size=FINGERPRINT_SIZE).digest()
    return base64.b32encode(digest).decode("ascii")


def format_fingerprint(fp: str) -> str:
    """Groups of four characters, for reading aloud: ``ABCD EFGH ...``."""
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


@dataclass(frozen=True)
class SigningKeyPair:
    """An Ed25519 key pair; ``seed`` is the 32-byte secret."""

    seed: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKeyPair:
        if len(seed) != KEY_SIZE:
            raise BadField("a signing seed must be 32 bytes")
        return cls(seed=bytes(seed))

    @property
    def public(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).verify_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def sign(self, label: bytes, *parts: bytes) -> bytes:
        """Ed25519 signature over ``signing_input(label, *parts)``."""
        return nacl.signing.SigningKey(self.seed).sign(signing_input(label, *parts)).signature

    def sign_item(self, label: bytes, body: bytes, *extra: bytes) -> SignedItem:
        """A signed item with this key's single signature over ``body`` (and ``extra``)."""
        return SignedItem(body=body, sigs=(Signature(self.fingerprint, self.sign(label, body, *extra)),))

    def __repr__(self) -> str:  # never print secrets
        return f"SigningKeyPair({self.fingerprint})"


@dataclass(frozen=True)
class BoxKeyPair:
    """An X25519 key pair; ``secret`` is the 32-byte secret scalar."""

    secret: bytes

    @classmethod
    def from_seed(cls, seed: bytes) -> BoxKeyPair:
        if len(seed) != KEY_SIZE:
            raise BadField("a box seed must be 32 bytes")
        return cls(secret=bytes(seed))

    @property
    def public(self) -> bytes:
        return bytes(nacl.public.PrivateKey(self.secret).public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    def __repr__(self) -> str:
        return f"BoxKeyPair({self.fingerprint})"


def box_public_from_secret(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret (``crypto_scalarmult_base``)."""
    if len(secret) != KEY_SIZE:
        raise BadField("a box secret must be 32 bytes")
    return sodium.crypto_scalarmult_base(secret)


def verify(public_key: bytes, signature: bytes, label: bytes, *parts: bytes) -> None:
    """Raise ``SignatureError`` unless ``signature`` is valid over the labelled parts."""
    try:
        nacl.signing.VerifyKey(public_key).verify(signing_input(label, *parts), signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
        raise SignatureError() from exc


def verify_item(item: SignedItem, public_key: bytes, label: bytes, *extra: bytes) -> None:
    """Require a signature by ``public_key`` on ``item`` and check it."""
    fp = fingerprint(public_key)
    for sig in item.sigs:
        if sig.key == fp:
            verify(public_key, sig.sig, label, item.body, *extra)
            return
    raise WrongSigner(f"not signed by the expected key {format_fingerprint(fp)}")


def safety_code(identity_a: bytes, identity_b: bytes) -> str:
    """A 30-digit code two admins read to each other; the same for (a, b) and (b, a)."""
    first, second = sorted((identity_a, identity_b))
    digest = hashlib.blake2b(signing_input(labels.SAFETY, first, second), digest_size=32).digest()
    digits = "".join(f"{int.from_bytes(digest[i:i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))
    return " ".join(digits[i : i + 5] for i in range(0, 30, 5))
