"""The typed shortcut for send bodies accepts only what the strict path accepts, with the
same value, and leaves every other body to the strict path (and its error wording)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import b64encode
from protocol.encoding import parse_json
from protocol.errors import ProtocolError
from relay import wire
from relay.errors import RelayError
from relay.sendparse import send_request_fast

KEY = b64encode(bytes(range(16)))
SEALED = b64encode(bytes(range(256)) * 2)


def _body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"idempotency_key": KEY, "ttl": 3600,
                            "envelopes": [{"to_org": "org-a", "epoch": 3, "sealed": SEALED}]}
    body.update(fields)
    return body


def _strict(raw: bytes) -> object:
    """The strict path's value, or the error it answers."""
    try:
        return wire.send_request(parse_json(raw))
    except (RelayError, ProtocolError) as exc:
        return type(exc)


def _agrees(raw: bytes) -> None:
    """The shortcut gives the strict path's value, or leaves the body to it (always when
    the strict path refuses it)."""
    fast = send_request_fast(raw)
    strict = _strict(raw)
    if isinstance(strict, type):
        assert fast is None
    elif fast is not None:
        assert fast == strict


def test_a_well_formed_send_takes_the_shortcut_with_the_strict_value() -> None:
    for body in (_body(), {k: v for k, v in _body().items() if k != "ttl"},
                 _body(envelopes=[{"to_org": f"org-{i}", "epoch": i + 1, "sealed": SEALED}
                                  for i in range(3)])):
        raw = json.dumps(body).encode()
        fast = send_request_fast(raw)
        assert fast is not None
        assert fast == _strict(raw)


BAD = [
    # duplicate keys: msgspec alone would keep the last one
    b'{"idempotency_key": "%s", "envelopes": [], "idempotency_key": "%s"}' % (KEY.encode(),
                                                                           KEY.encode()),
    json.dumps(_body()).encode().replace(b'"epoch": 3', b'"epoch": 3, "epoch": 4'),
    json.dumps(_body()).encode().replace(b'"ttl": 3600', b'"ttl": 1, "ttl": 3600'),
    json.dumps(_body()).encode().replace(b'"ttl": 3600', b'"t\\u0074l": 1, "ttl": 3600'),
    json.dumps(_body()).encode().replace(b'"ttl"', b'"\\u0074tl"'),
    json.dumps(_body()).encode()[:-1] + b', "envelopes": []}',
    json.dumps(_body()).encode().replace(b'"ttl": 3600', b'"ttl" : 1 ,"ttl"\n:3600'),
    json.dumps(_body(envelopes=[{"to_org": "org:a", "epoch": 1, "sealed": SEALED}])).encode(),
    json.dumps(_body(ttl=None)).encode(),
    json.dumps(_body(ttl=True)).encode(),
    json.dumps(_body()).encode().replace(b'"epoch": 3', b'"epoch": 3.0'),
    json.dumps(_body()).encode().replace(b'"epoch": 3', b'"epoch": NaN'),
    json.dumps(_body(envelopes=[{"to_org": "org-a", "epoch": 0, "sealed": SEALED}])).encode(),
    json.dumps(_body(envelopes=[{"to_org": "org-a", "epoch": 2**53, "sealed": SEALED}])).encode(),
    json.dumps(_body(envelopes=[{"to_org": "Org-A", "epoch": 1, "sealed": SEALED}])).encode(),
    json.dumps(_body(envelopes=[{"to_org": "org-a", "epoch": 1, "sealed": "AAAA"}])).encode(),
    json.dumps(_body(envelopes=[{"to_org": "org-a", "epoch": 1,
                                 "sealed": SEALED + "AB"}])).encode(),
    json.dumps(_body(envelopes=[{"to_org": "org-a", "epoch": 1, "sealed": SEALED,
                                 "extra": 1}])).encode(),
    json.dumps(_body(envelopes=[])).encode(),
    json.dumps(_body(idempotency_key=KEY[:-2])).encode(),
    json.dumps(_body(extra=1)).encode(),
    b"\xef\xbb\xbf" + json.dumps(_body()).encode(),
    json.dumps(_body()).encode() + b" x",
    json.dumps(_body()).encode().replace(b"org-a", b"org-\xff"),
    b"[]",
    b"",
]


@pytest.mark.parametrize("raw", BAD)
def test_every_doubtful_body_is_left_to_the_strict_path(raw: bytes) -> None:
    assert send_request_fast(raw) is None
    _agrees(raw)


def test_a_ttl_out_of_range_is_read_as_the_strict_path_reads_it() -> None:
    # the strict path leaves the range to the service (checked_ttl): so does the shortcut
    raw = json.dumps(_body(ttl=2**70)).encode()
    assert send_request_fast(raw) == _strict(raw)


def test_an_organisation_named_like_a_field_is_still_read_right() -> None:
    for name in ("epoch", "sealed", "to_org", "ttl"):
        _agrees(json.dumps(_body(envelopes=[{"to_org": name, "epoch": 1,
                                             "sealed": SEALED}])).encode())


_FIELDS = ["idempotency_key", "envelopes", "ttl", "to_org", "epoch", "sealed", "x", "t\\u0074l"]
_VALUES = st.one_of(st.just(KEY), st.just(SEALED), st.just("org-a"), st.just("epoch"),
                    st.just("a:b"),
                    st.integers(-2, 2**66), st.booleans(), st.none(), st.just("1.5"))


@st.composite
def _texts(draw: st.DrawFn) -> bytes:
    """JSON texts near a send: field names from the schema, repeated or missing, values
    of the wrong type or range, escapes."""
    def obj(keys: list[str], inner: str | None) -> str:
        parts = []
        for key in keys:
            value = inner if key == "envelopes" and inner is not None else json.dumps(
                draw(_VALUES))
            if value == '"1.5"':
                value = "1.5"
            parts.append(f'"{key}": {value}')
        return "{" + ", ".join(parts) + "}"

    envelope_keys = draw(st.lists(st.sampled_from(_FIELDS[3:]), min_size=2, max_size=5))
    envelopes = "[" + ", ".join(obj(envelope_keys, None)
                                for _ in range(draw(st.integers(0, 3)))) + "]"
    top_keys = draw(st.lists(st.sampled_from([*_FIELDS[:3], "x"]), min_size=1, max_size=5))
    return obj(top_keys, envelopes).encode()


@settings(max_examples=300, deadline=None)
@given(_texts())
def test_the_shortcut_never_accepts_what_the_strict_path_refuses(raw: bytes) -> None:
    _agrees(raw)
