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
from functools import cached_property, lru_cache

import nacl.bindings as sodium
import nacl.exceptions
import nacl.public

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
    return _fingerprint(bytes(public_key))


@lru_cache(maxsize=4096)  # public values only; verifiers look up the same few keys often
def _fingerprint(public_key: bytes) -> str:
    return base64.b32encode(key_id(public_key)).decode("ascii")


@lru_cache(maxsize=4096)
def key_id(public_key: bytes) -> bytes:
    """The 20 bytes of BLAKE2b-160 of a public key (a fingerprint before base32)."""
    if len(public_key) != KEY_SIZE:
        raise BadField("a public key must be 32 bytes")
    return hashlib.blake2b(public_key, digest_size=FINGERPRINT_SIZE).digest()


def format_fingerprint(fp: str) -> str:
    """Groups of four characters, for reading aloud: ``ABCD EFGH ...``."""
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


@dataclass(frozen=True)
class SigningKeyPair:
    """An Ed25519 key pair; ``seed`` is the 32-byte secret."""

    seed: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.seed, bytes) or len(self.seed) != KEY_SIZE:
            raise BadField("a signing seed must be 32 bytes")

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKeyPair:
        """The key pair of a 32-byte seed (RFC 8032 secret key)."""
        return cls(seed=bytes(seed))

    # Deriving the key pair from the seed costs as much as a signature, so it is done once
    # per key pair, in one libsodium call that gives the public key and the 64-byte secret
    # key (seed || public key) together (cached_property writes the instance dict).
    @cached_property
    def _keypair(self) -> tuple[bytes, bytes]:
        public, secret = sodium.crypto_sign_seed_keypair(self.seed)
        return public, secret

    @property
    def public(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._keypair[0]

    @cached_property
    def fingerprint(self) -> str:
        """``fingerprint(public)``."""
        return fingerprint(self.public)

    @property
    def _secret_key(self) -> bytes:
        return self._keypair[1]

    def sign(self, label: bytes, *parts: bytes) -> bytes:
        """Ed25519 signature over ``signing_input(label, *parts)``."""
        return sodium.crypto_sign(signing_input(label, *parts), self._secret_key)[:SIG_SIZE]

    def sign_item(self, label: bytes, body: bytes, *extra: bytes) -> SignedItem:
        """A signed item with this key's single signature over ``body`` (and ``extra``)."""
        signature = Signature(self.fingerprint, self.sign(label, body, *extra))
        return SignedItem(body=body, sigs=(signature,))

    def __repr__(self) -> str:  # never print secrets
        return f"SigningKeyPair({self.fingerprint})"


@dataclass(frozen=True)
class BoxKeyPair:
    """An X25519 key pair; ``secret`` is the 32-byte secret scalar."""

    secret: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_SIZE:
            raise BadField("a box secret must be 32 bytes")

    @classmethod
    def from_seed(cls, seed: bytes) -> BoxKeyPair:
        """The key pair whose secret scalar is the 32 seed bytes themselves (no hashing)."""
        return cls(secret=bytes(seed))

    @cached_property
    def public(self) -> bytes:
        """``X25519(secret, 9)``: the 32-byte public key."""
        return box_public_from_secret(self.secret)

    @cached_property
    def fingerprint(self) -> str:
        """``fingerprint(public)``."""
        return fingerprint(self.public)

    def __repr__(self) -> str:
        return f"BoxKeyPair({self.fingerprint})"


# Any scalar serves (libsodium clamps it to a multiple of 8): the product is the identity,
# which libsodium refuses, exactly when the point has small order.
_PROBE_SCALAR = bytes(range(1, KEY_SIZE + 1))


def check_box_public(public_key: bytes, field: str = "box key") -> bytes:
    """``public_key`` if X25519 can use it, else ``BadField``.

    A low-order point (or a non-canonical encoding of one) makes every shared secret with
    it the identity, which libsodium refuses: sealing a grant or a message to such a key
    fails, so it must never get into the key log or a request file.
    """
    if not isinstance(public_key, bytes) or len(public_key) != KEY_SIZE:
        raise BadField(f"{field} must be a 32-byte X25519 public key")
    try:
        sodium.crypto_scalarmult(_PROBE_SCALAR, public_key)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.CryptoError, ValueError) as exc:
        raise BadField(f"{field} is not a usable X25519 public key (a low-order point)") from exc
    return public_key


def box_public_from_secret(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret (``crypto_scalarmult_base``)."""
    if len(secret) != KEY_SIZE:
        raise BadField("a box secret must be 32 bytes")
    return sodium.crypto_scalarmult_base(secret)


def verify(public_key: bytes, signature: bytes, label: bytes, *parts: bytes) -> None:
    """Raise ``SignatureError`` unless ``signature`` is valid over the labelled parts."""
    if len(public_key) != KEY_SIZE or len(signature) != SIG_SIZE:
        raise SignatureError("a signature is 64 bytes, a public key 32")
    try:
        sodium.crypto_sign_open(bytes(signature) + signing_input(label, *parts), public_key)
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
    if len(identity_a) != KEY_SIZE or len(identity_b) != KEY_SIZE:
        raise BadField("a safety code is made of two 32-byte public keys")
    first, second = sorted((identity_a, identity_b))
    digest = hashlib.blake2b(signing_input(labels.SAFETY, first, second), digest_size=32).digest()
    groups = (int.from_bytes(digest[i : i + 5], "big") % 100000 for i in range(0, 30, 5))
    return " ".join(f"{group:05d}" for group in groups)
