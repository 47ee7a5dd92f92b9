"""The relay-auth challenge signature: ``kok/v1/auth || origin || nonce``.

Binding the relay's origin (scheme://host[:port]) stops a malicious relay from passing a
challenge of another relay through to a client and replaying the answer there.
"""

from __future__ import annotations

from . import labels
from .errors import AuthSignatureInvalid, SignatureError
from .keys import SigningKeyPair, verify

NONCE_SIZE = 32


def sign_auth(key: SigningKeyPair, origin: str, nonce: bytes) -> bytes:
    """A staff member's answer to a relay's challenge."""
    return key.sign(labels.AUTH, origin.encode("utf-8"), nonce)


def verify_auth(public_key: bytes, origin: str, nonce: bytes, signature: bytes) -> None:
    """Raise ``AuthSignatureInvalid`` unless ``signature`` answers this challenge."""
    try:
        verify(public_key, signature, labels.AUTH, origin.encode("utf-8"), nonce)
    except SignatureError as exc:
        raise AuthSignatureInvalid() from exc
