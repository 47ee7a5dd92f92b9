"""The relay-auth challenge signature: ``kok/v1/auth || origin || nonce``.

Binding the relay's origin (scheme://host[:port]) stops a malicious relay from passing a
challenge of another relay through to a client and replaying the answer there. The nonce
is the relay's single-use 32-byte challenge.
"""

from __future__ import annotations

from . import labels
from .errors import AuthSignatureInvalid, BadField, SignatureError
from .keys import SigningKeyPair, verify

NONCE_SIZE = 32
MAX_ORIGIN = 255


def auth_signing_parts(origin: str, nonce: bytes) -> tuple[bytes, bytes]:
    """``(utf8(origin), nonce)``: what the label ``kok/v1/auth`` precedes."""
    if not isinstance(origin, str) or not 0 < len(origin) <= MAX_ORIGIN or not origin.isascii():
        raise BadField("the relay origin must be 1 to 255 ASCII characters")
    if len(nonce) != NONCE_SIZE:
        raise BadField(f"an auth nonce is {NONCE_SIZE} bytes")
    return origin.encode("ascii"), bytes(nonce)


def sign_auth(key: SigningKeyPair, origin: str, nonce: bytes) -> bytes:
    """A staff member's answer to a relay's challenge."""
    return key.sign(labels.AUTH, *auth_signing_parts(origin, nonce))


def verify_auth(public_key: bytes, origin: str, nonce: bytes, signature: bytes) -> None:
    """Raise ``AuthSignatureInvalid`` unless ``signature`` answers this challenge."""
    try:
        verify(public_key, signature, labels.AUTH, *auth_signing_parts(origin, nonce))
    except (SignatureError, BadField) as exc:
        raise AuthSignatureInvalid() from exc
