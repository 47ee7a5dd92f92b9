"""Keyed and labelled hashes for the secrets the relay must recognise but never keep.

Session tokens, login nonces, status tokens and idempotency keys are stored only as
BLAKE2b-256 hashes, each under its own personalisation string, so a hash made for one
purpose never matches one made for another. The inputs are 16 or 32 random bytes, so a
fast hash suffices: there is nothing to brute-force.

Message ids and status tokens are *derived* from the relay's token key and the client's
idempotency key, so a retried send gets the same answer (same ids, same status tokens)
although the relay stored only their hashes.

Both begin with the second the send arrived (4 bytes, big-endian), and so does the stored
status hash (``status_key``): the store's indexes over ids and status hashes then grow at
their end, as a log does, instead of each send rewriting a random page of each of them,
which was most of what a durable send wrote. The arrival second is no secret (recipients
get it as ``received``); what follows it is keyed (ids, tokens) or a hash (status keys).
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


ARRIVAL_SIZE = 4
"""Bytes of the arrival second that begin ids, status tokens and status keys."""


def derive(
    token_key: bytes, purpose: bytes, idempotency_key: bytes, index: int, size: int
) -> bytes:
    """Keyed BLAKE2b of (idempotency key, envelope index): stable across retries."""
    return hashlib.blake2b(
        idempotency_key + index.to_bytes(2, "big"), digest_size=size, key=token_key, person=purpose
    ).digest()


def arrival_ordered(
    token_key: bytes, purpose: bytes, idempotency_key: bytes, index: int, size: int,
    received: int
) -> bytes:
    """``size`` bytes: the arrival second, then ``derive`` of the rest (stable across
    retries: a retry is answered with the first send's ``received``)."""
    return received.to_bytes(ARRIVAL_SIZE, "big") + derive(
        token_key, purpose, idempotency_key, index, size - ARRIVAL_SIZE)


def status_key(token: bytes) -> bytes:
    """What the store keeps and looks up for a status token: the token's arrival second,
    then its hash (BLAKE2b-256 cut to fill 32 bytes)."""
    return token[:ARRIVAL_SIZE] + secret_hash(STATUS, token)[ARRIVAL_SIZE:]
