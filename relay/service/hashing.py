"""Keyed and labelled hashes for the secrets the relay must recognise but never keep.

Session tokens, login nonces, status tokens and idempotency keys are stored only as
BLAKE2b-256 hashes, each under its own personalisation string, so a hash made for one
purpose never matches one made for another. The inputs are 16 or 32 random bytes, so a
fast hash suffices: there is nothing to brute-force.

Message ids and status tokens are *derived* from the relay's token key and the client's
idempotency key, so a retried send gets the same answer (same ids, same status tokens)
although the relay stored only their hashes.
"""

from __future__ import annotations

import hashlib

SESSION = b"kok-relay/sess"
NONCE = b"kok-relay/nonce"
STATUS = b"kok-relay/status"
IDEMPOTENCY = b"kok-relay/idem"
REQUEST = b"kok-relay/req"
MESSAGE_ID = b"kok-relay/msgid"
STATUS_TOKEN = b"kok-relay/stok"


def secret_hash(purpose: bytes, secret: bytes) -> bytes:
    """BLAKE2b-256 of ``secret`` personalised with ``purpose`` (at most 16 bytes)."""
    return hashlib.blake2b(secret, digest_size=32, person=purpose).digest()


def derive(
    token_key: bytes, purpose: bytes, idempotency_key: bytes, index: int, size: int
) -> bytes:
    """Keyed BLAKE2b of (idempotency key, envelope index): stable across retries."""
    return hashlib.blake2b(
        idempotency_key + index.to_bytes(2, "big"), digest_size=size, key=token_key, person=purpose
    ).digest()
