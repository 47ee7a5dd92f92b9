"""libsodium's sealed box, with the ephemeral key made from a caller-supplied seed.

``crypto_box_seal(m, pk)`` is: an ephemeral key pair ``(epk, esk)``, the nonce
``BLAKE2b-192(epk || pk)`` (unkeyed, 24-byte output), output
``epk || crypto_box_easy(m, nonce, pk, esk)``. libsodium
draws ``esk`` from the OS random source; the protocol takes a 32-byte seed instead
(``crypto_box_seed_keypair``) so that it stays free of I/O and test vectors are
reproducible. The output is byte-for-byte a sealed box: ``crypto_box_seal_open`` opens it.
"""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import nacl.exceptions

from .errors import BadField, DecryptFailed

OVERHEAD = sodium.crypto_box_SEALBYTES  # 48: ephemeral public key + MAC


def seal(recipient_public: bytes, plaintext: bytes, ephemeral_seed: bytes) -> bytes:
    """A sealed box of ``plaintext`` to ``recipient_public``."""
    if len(recipient_public) != 32 or len(ephemeral_seed) != 32:
        raise BadField("sealing needs a 32-byte public key and a 32-byte seed")
    epk, esk = sodium.crypto_box_seed_keypair(ephemeral_seed)
    nonce = hashlib.blake2b(epk + recipient_public, digest_size=24).digest()
    try:
        return epk + sodium.crypto_box_easy(plaintext, nonce, recipient_public, esk)
    except nacl.exceptions.RuntimeError as exc:  # libsodium refuses a low-order key
        raise BadField("the recipient's key is not a usable X25519 public key") from exc


def open_sealed(recipient_public: bytes, recipient_secret: bytes, sealed: bytes) -> bytes:
    """Open a sealed box; any failure is ``DecryptFailed``."""
    if len(recipient_public) != 32 or len(recipient_secret) != 32:
        raise BadField("opening needs a 32-byte public key and a 32-byte secret key")
    if len(sealed) < OVERHEAD:
        raise DecryptFailed("sealed data is shorter than a sealed box")
    try:
        return sodium.crypto_box_seal_open(sealed, recipient_public, recipient_secret)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise DecryptFailed() from exc
