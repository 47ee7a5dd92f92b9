"""The values the service takes and returns: requests parsed by ``relay.wire``, answers.

Each request value has passed every check that needs nothing but the request itself (field set,
types, base64, identifier syntax, fixed sizes); the service adds the checks that need the
key log or the relay's limits. The sizes of the relay's own random values are defined
here, once, for both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IDEMPOTENCY_KEY_SIZE = 16
MESSAGE_ID_SIZE = 16
STATUS_TOKEN_SIZE = 32
SESSION_TOKEN_SIZE = 32
DROP_ID_SIZE = 16
UPLOAD_TOKEN_SIZE = 32
MAX_GRANTS = 1000
"""Grants in one upload (one per staff member of an organisation)."""
MIN_GRANT_BYTES = 48
MAX_GRANT_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Envelope:
    """One sealed envelope of a send, for one recipient organisation."""

    to_org: str
    epoch: int
    sealed: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SendRequest:
    """``POST /v1/messages``: envelopes under the client's idempotency key."""

    idempotency_key: bytes = field(repr=False)
    envelopes: tuple[Envelope, ...]
    ttl: int | None = None
    """None: the relay's default."""


@dataclass(frozen=True, slots=True)
class SealedGrant:
    """An epoch grant sealed to one device of a staff member."""

    staff_id: str
    device: str
    sealed: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class GrantUpload:
    """``PUT /v1/grants/{org_id}/{epoch}``."""

    org_id: str
    epoch: int
    grants: tuple[SealedGrant, ...]


@dataclass(frozen=True, slots=True)
class DropCreate:
    """``POST /v1/drops``: a drop of ``size`` ciphertext bytes to the organisations ``to``."""

    size: int
    to: tuple[str, ...]
    ttl: int | None = None
    """None: the relay's default."""


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """``POST /v1/auth/session``: a challenge signed by a staff member."""

    staff_id: str
    nonce: bytes = field(repr=False)
    signature: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One stored envelope of a send, as the sender learns it: id and status token."""

    id: bytes
    to_org: str
    status_token: bytes = field(repr=False)
    expires: int


@dataclass(frozen=True, slots=True)
class CreatedDrop:
    """A new drop: its id, the upload token (shown once, never stored) and its expiry."""

    id: bytes
    upload_token: bytes = field(repr=False)
    expires: int
