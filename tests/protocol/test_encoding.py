"""Canonical JSON, base64url, signing_input and the signed-item form."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import (
    MAX_SAFE_INT,
    Signature,
    SignedItem,
    _signed_item_fast,
    b64decode,
    b64encode,
    canonical_json,
    canonical_json_of_checked,
    check_fields,
    parse_canonical,
    parse_json,
    signing_input,
)
from protocol.errors import (
    BadField,
    EncodingError,
    MalformedJSON,
    MissingField,
    NonCanonical,
    UnknownField,
    UnknownVersion,
)
from protocol.keys import SigningKeyPair

from .world import seed

SETTINGS = settings(max_examples=60, deadline=None)

nfc_text = st.text(max_size=12).map(lambda t: unicodedata.normalize("NFC", t)).filter(
    lambda t: not any("\ud800" <= c <= "\udfff" for c in t)
)
json_scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE_INT, MAX_SAFE_INT) | nfc_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nfc_text, inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(nfc_text, json_values, max_size=5)


# --- canonical JSON ---------------------------------------------------------------------


@SETTINGS
@given(json_objects)
def test_canonical_round_trip(value: dict[str, Any]) -> None:
    data = canonical_json(value)
    assert parse_canonical(data) == value
    assert canonical_json(parse_canonical(data)) == data


@SETTINGS
@given(json_objects)
def test_canonical_is_sorted_compact_utf8(value: dict[str, Any]) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected.encode("utf-8")
    assert canonical_json_of_checked(value) == canonical_json(value)


@SETTINGS
@given(json_objects, st.data())
def test_any_other_spelling_of_the_same_value_is_rejected(value: dict[str, Any],
                                                          data: st.DataObject) -> None:
    style = data.draw(st.sampled_from(["indent", "spaces", "ascii"]))
    text = {
        "indent": lambda: json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False),
        "spaces": lambda: json.dumps(value, sort_keys=True, ensure_ascii=False),
        "ascii": lambda: json.dumps(value, sort_keys=True, separators=(",", ":")),
    }[style]().encode("utf-8")
    if text == canonical_json(value):
        return  # this spelling happens to be the canonical one
    with pytest.raises(NonCanonical):
        parse_canonical(text)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b'{"b":1,"a":2}', NonCanonical),  # keys not sorted
        (b'{"a": 1}', NonCanonical),  # insignificant whitespace
        (b' {"a":1}', NonCanonical),
        (b'{"a":1}\n', NonCanonical),
        (b'{"a":1,"a":1}', NonCanonical),  # duplicate key
        (b'{"a":"\\u00e9"}', NonCanonical),  # escaped non-ASCII
        (b'{"a":"\\u001F"}', NonCanonical),  # upper-case hex escape
        (b'{"a":"\\/"}', NonCanonical),  # needless escape
        (b'{"a":-0}', NonCanonical),
        (b'{"a":01}', MalformedJSON),
        ('{"a":"e\u0301"}'.encode(), NonCanonical),  # not NFC
        ('{"e\u0301":1}'.encode(), NonCanonical),  # key not NFC
        (b'{"a":1.0}', BadField),  # floats
        (b'{"a":1e3}', BadField),
        (b'{"a":9007199254740992}', BadField),  # beyond 2^53 - 1
        (b'{"a":' + b"9" * 5000 + b"}", MalformedJSON),  # more digits than Python converts
        (b'{"a":"\\ud800"}', BadField),  # lone surrogate
        (b'{"a":NaN}', MalformedJSON),
        (b'{"a":Infinity}', MalformedJSON),
        (b'{"a":1', MalformedJSON),
        (b'{"a":1}{}', MalformedJSON),
        (b"\xef\xbb\xbf{}", MalformedJSON),  # BOM
        (b'{"a":"\xff"}', MalformedJSON),  # not UTF-8
        (b"[1]", BadField),  # not an object
        (b"", MalformedJSON),
        (b"[" * 100000 + b"]" * 100000, MalformedJSON),
    ],
)
def test_parse_canonical_rejects(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_canonical(data)


def test_escapes_follow_the_one_canonical_form() -> None:
    value = {"a": "\u0001\b\f\n\r\t\"\\\u007f\u2028é"}
    data = canonical_json(value)
    assert data == b'{"a":"\\u0001\\b\\f\\n\\r\\t\\"\\\\\x7f\xe2\x80\xa8\xc3\xa9"}'
    assert parse_canonical(data) == value


def test_nfc_shortcut_keeps_strings_whose_escape_composes_in_the_text() -> None:
    # "\n" followed by a combining tilde is NFC as a string, but the *text* "\\n" + U+0303
    # would compose to "ñ": the value must still be accepted
    value = {"a": "\n\u0303", "b": "\u001f\u0307"}
    assert parse_canonical(canonical_json(value)) == value


@pytest.mark.parametrize("value", [{"a": 1.5}, {"a": (1,)}, {1: "a"}, {"a": b"x"},
                                   {"a": 2**53}, {"a": "e\u0301"}, {"a": "\ud800"}])
def test_canonical_json_refuses_to_write_what_readers_reject(value: Any) -> None:
    with pytest.raises(EncodingError):
        canonical_json(value)


def test_canonical_json_limits_depth() -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(BadField):
        canonical_json({"a": deep})


def test_parse_json_is_strict_but_not_canonical() -> None:
    assert parse_json(b'{ "b": 1, "a": [true, null] }') == {"b": 1, "a": [True, None]}
    for bad in (b'{"a":1,"a":2}', b'{"a":NaN}', b"\xff", b'{"a":' + b"1" * 5000 + b"}"):
        with pytest.raises(MalformedJSON):
            parse_json(bad)
    with pytest.raises(BadField):
        parse_json(b'{"a":0.5}')


def test_canonical_parser_fed_one_byte_at_a_time_accepts_only_the_whole() -> None:
    data = canonical_json({"a": [1, {"b": "é\n"}], "c": None, "d": True})
    for end in range(len(data)):
        with pytest.raises(EncodingError):
            parse_canonical(data[:end])
    assert parse_canonical(data)["c"] is None


# --- base64url --------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=80))
def test_b64_round_trip_and_no_padding(data: bytes) -> None:
    text = b64encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64decode(text) == data


@pytest.mark.parametrize("text", ["A", "AA=", "AA==", "A+", "A/", "QR", "QUF", "QQ\n", " QQ",
                                  "Q Q", "ä", "QU.F", 5, None])
def test_b64_rejects_everything_but_one_encoding(text: Any) -> None:
    with pytest.raises(BadField):
        b64decode(text)


LONG = "QUFB" * 400  # long text (a sealed envelope) takes another path: same rules


@SETTINGS
@given(st.binary(min_size=1200, max_size=1300))
def test_long_b64_round_trips(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize("text", [LONG + "A", LONG + "AA=", LONG + "AA==", LONG + "A+",
                                  "A/" + LONG, LONG + "QR", LONG + "QUF", LONG + "QQ\n",
                                  " " + LONG, LONG[:800] + " " + LONG[800:],
                                  LONG[:800] + "ä" + LONG[801:], LONG[:5] + "." + LONG[6:],
                                  LONG[:9] + "\x00" + LONG[10:]])
def test_long_b64_rejects_everything_but_one_encoding(text: str) -> None:
    with pytest.raises(BadField):
        b64decode(text)


def test_b64_checks_size() -> None:
    assert b64decode(b64encode(bytes(16)), size=16) == bytes(16)
    with pytest.raises(BadField, match="16 bytes"):
        b64decode(b64encode(bytes(15)), size=16, field="id")


# --- signing_input ----------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.binary(max_size=6), max_size=4), st.lists(st.binary(max_size=6), max_size=4))
def test_signing_input_is_unambiguous(a: list[bytes], b: list[bytes]) -> None:
    if a != b:
        assert signing_input(b"kok/v1/x", *a) != signing_input(b"kok/v1/x", *b)


def test_signing_input_layout() -> None:
    assert signing_input(b"L", b"ab", b"") == b"L" + (2).to_bytes(8, "big") + b"ab" + bytes(8)


# --- field checks -----------------------------------------------------------------------


def test_check_fields_version_first_then_unknown_then_missing() -> None:
    check_fields({"v": 1, "a": 1}, ["v", "a"], ["b"])
    check_fields({"v": 1, "a": 1, "b": 2}, ["v", "a"], ["b"])
    with pytest.raises(UnknownVersion):
        check_fields({"v": 2, "zzz": 1}, ["v", "a"])
    with pytest.raises(UnknownVersion):
        check_fields({"v": True, "a": 1}, ["v", "a"])
    with pytest.raises(UnknownField):
        check_fields({"v": 1, "a": 1, "zzz": 1}, ["v", "a"])
    with pytest.raises(MissingField):
        check_fields({"v": 1}, ["v", "a"])
    with pytest.raises(MissingField):
        check_fields({"a": 1}, ["v", "a"])


# --- signed items -----------------------------------------------------------------------

KEY = SigningKeyPair.from_seed(seed("encoding/key"))
OTHER = SigningKeyPair.from_seed(seed("encoding/other"))


def _item(body: dict[str, Any], *signers: SigningKeyPair) -> SignedItem:
    data = canonical_json(body)
    return SignedItem(data, tuple(Signature(k.fingerprint, k.sign(b"kok/v1/test", data))
                                  for k in signers))


@SETTINGS
@given(json_objects, st.booleans())
def test_signed_item_bytes_round_trip(body: dict[str, Any], two: bool) -> None:
    item = _item(body, KEY, OTHER) if two else _item(body, KEY)
    data = item.to_bytes()
    assert data == canonical_json(item.to_json())  # the direct writer matches the generic one
    assert SignedItem.from_bytes(data) == item
    assert _signed_item_fast(data) == item  # the fast reader takes every canonical item


def _generic(data: bytes) -> SignedItem | type[Exception]:
    try:
        return SignedItem.from_json(parse_canonical(data))
    except EncodingError as exc:
        return type(exc)


def _public(data: bytes) -> SignedItem | type[Exception]:
    try:
        return SignedItem.from_bytes(data)
    except EncodingError as exc:
        return type(exc)


@SETTINGS
@given(st.data())
def test_fast_and_generic_item_readers_agree_on_damaged_input(data: st.DataObject) -> None:
    body = {"note": data.draw(nfc_text), "v": 1}
    raw = bytearray(_item(body, KEY, *([OTHER] if data.draw(st.booleans()) else [])).to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            raw[where] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "insert":
            raw.insert(where, data.draw(st.integers(0, 255)))
        else:
            del raw[where]
    damaged = bytes(raw)
    fast = _signed_item_fast(damaged)
    assert fast is None or fast == _generic(damaged)
    assert _public(damaged) == _generic(damaged)


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda o: o["sigs"].append(dict(o["sigs"][0])), BadField),  # same key twice
        (lambda o: o["sigs"].clear(), BadField),
        (lambda o: o["sigs"][0].update(key="not a fingerprint"), BadField),
        (lambda o: o["sigs"][0].update(sig=b64encode(bytes(63))), BadField),
        (lambda o: o["sigs"][0].update(extra=1), UnknownField),
        (lambda o: o.update(body=5), BadField),
        (lambda o: o.update(v=1), UnknownField),
        (lambda o: o.pop("sigs"), MissingField),
    ],
)
def test_signed_item_shape_is_checked(mutate: Any, error: type[Exception]) -> None:
    obj = _item({"v": 1}, KEY).to_json()
    mutate(obj)
    with pytest.raises(error):
        SignedItem.from_json(obj)


def test_three_signatures_are_too_many() -> None:
    third = SigningKeyPair.from_seed(seed("encoding/third"))
    obj = _item({"v": 1}, KEY, OTHER).to_json()
    obj["sigs"].append(_item({"v": 1}, third).to_json()["sigs"][0])
    with pytest.raises(BadField):
        SignedItem.from_json(obj)


def test_signed_item_with_a_non_nfc_body_is_refused_by_both_readers() -> None:
    item = _item({"v": 1}, KEY)
    good = item.to_bytes()
    bad = good.replace(b'{\\"v\\":1}', '{\\"a\\":\\"e\u0301\\",\\"v\\":1}'.encode())
    assert bad != good
    assert _signed_item_fast(bad) is None
    with pytest.raises(NonCanonical):
        SignedItem.from_bytes(bad)


def test_nesting_deeper_than_max_depth_is_malformed_for_every_reader() -> None:
    from protocol.encoding import MAX_DEPTH, parse_json
    from protocol.errors import MalformedJSON as Malformed

    deepest = b'{"a":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert parse_canonical(deepest) == {"a": _nested(MAX_DEPTH - 1)}
    too_deep = b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
    for reader in (parse_canonical, parse_json):
        with pytest.raises(Malformed):
            reader(too_deep)
    # brackets inside strings (also after an escaped quote) are text, not nesting
    text = '{"a":"' + '\\"' + "[{" * 40 + '"}'
    assert parse_canonical(text.encode()) == {"a": '"' + "[{" * 40}


def _nested(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels - 1):
        value = [value]
    return value
