"""The body of ``POST /v1/messages`` read in one typed pass, for the well-formed case.

Sends are the relay's most frequent request, and the strict path (``parse_json`` into
dicts, then ``wire.send_request`` checking each field) costs several times what msgspec
takes to decode the same bytes straight into typed values. ``send_request_fast`` is
that shortcut, for bodies it can prove acceptable; it never refuses anything. On any
doubt it answers None and the caller takes the strict path, so every bad body still gets
the strict path's specific error, word for word, and only bodies the strict path accepts
(with the same values) are ever accepted here.

What msgspec does not check by itself and the strict path does:

* duplicate keys (msgspec keeps the last): in valid JSON every object member is followed by
  exactly one ``:``, and a ``:`` elsewhere can only be inside a string; none of the three
  string fields may hold one (base64url, organisation ids). So when the body has exactly
  as many ``:`` as the decoded value has fields, no member repeats (one scan of the body,
  where counting each field name took six);
* ranges and encodings: the same checks as ``wire.send_request``, by the same functions.
"""

from __future__ import annotations

import msgspec

from protocol.encoding import ID_RE, MAX_SAFE_INT, b64decode
from protocol.errors import EncodingError
from protocol.sealedbox import OVERHEAD

from .service.domain import IDEMPOTENCY_KEY_SIZE, Envelope, SendRequest


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    to_org: str
    epoch: int
    sealed: str


class _Send(msgspec.Struct, forbid_unknown_fields=True):
    idempotency_key: str
    envelopes: list[_Envelope]
    ttl: int | msgspec.UnsetType = msgspec.UNSET


_DECODER = msgspec.json.Decoder(_Send)


def send_request_fast(raw: bytes) -> SendRequest | None:
    """The send in ``raw`` if it is certainly well-formed, else None (ask the strict path)."""
    if b"\\" in raw:  # escaped text is rare in a send: the strict path reads it
        return None
    try:
        body = _DECODER.decode(raw)
    except msgspec.DecodeError:
        return None
    envelopes = body.envelopes
    fields = (2 if body.ttl is msgspec.UNSET else 3) + 3 * len(envelopes)
    if not envelopes or raw.count(b":") != fields:
        return None
    try:
        key = b64decode(body.idempotency_key, size=IDEMPOTENCY_KEY_SIZE)
        parsed = []
        for entry in envelopes:
            if not (ID_RE.fullmatch(entry.to_org) and 1 <= entry.epoch <= MAX_SAFE_INT):
                return None
            sealed = b64decode(entry.sealed)
            if len(sealed) < OVERHEAD:
                return None
            parsed.append(Envelope(entry.to_org, entry.epoch, sealed))
    except EncodingError:
        return None
    ttl = None if body.ttl is msgspec.UNSET else body.ttl
    return SendRequest(idempotency_key=key, envelopes=tuple(parsed), ttl=ttl)
