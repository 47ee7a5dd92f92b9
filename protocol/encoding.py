"""Canonical JSON, base64url and the signed-item form.

Theory of operation
-------------------
Signed structures travel as the exact bytes that were signed (SPEC section 5):

    {"body": "<canonical JSON text>", "sigs": [{"key": "<fingerprint>", "sig": "<b64>"}]}

A verifier checks each signature over ``signing_input(label, body_bytes, ...)`` *before*
parsing the body, then parses it, then checks it is canonical. Canonical JSON is UTF-8,
object keys sorted by code point, no insignificant whitespace, integers only, strings NFC,
no duplicate keys. ``signing_input`` length-prefixes every part after the label so no two
different inputs share bytes.
"""

from __future__ import annotations

import binascii
import json
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import (
    BadField,
    MalformedJSON,
    MissingField,
    NonCanonical,
    UnknownField,
    UnknownVersion,
)

MAX_SAFE_INT = 2**53 - 1
"""Largest integer magnitude allowed (what every JSON implementation represents exactly)."""

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects: a writer emits no deeper, a reader refuses deeper
(``malformed_json``); protocol structures use at most 4."""

_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_FINGERPRINT_RE = re.compile(r"\A[A-Z2-7]{32}\Z")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")  # lone surrogates: only from \\u escapes


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def b64encode(data: bytes) -> str:
    """base64url without padding."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(
        b"="
    ).decode("ascii")


_B64_TEXT_RE = re.compile(r"[A-Za-z0-9_-]*")
_B64_LAST_OF_TAIL = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
"""Last characters whose unused low bits are zero, by tail length (one encoding per value)."""


_B64_LONG = 1024
"""From this many characters on (a sealed envelope, not an id or key), the alphabet is
checked by binascii's strict mode: cheaper there than the regular expression, which
cost more than the decoding itself."""


def b64decode(text: str, *, size: int | None = None, field: str = "value") -> bytes:
    """Strict base64url without padding; ``size`` checks the decoded length."""
    if isinstance(text, str) and len(text) >= _B64_LONG and text.isascii():
        data = _b64decode_long(text.encode("ascii"))
        if data is not None:
            if size is not None and len(data) != size:
                raise BadField(f"{field} must be {size} bytes, not {len(data)}")
            return data
    elif isinstance(text, str) and _B64_TEXT_RE.fullmatch(text):
        # every id, key and signature on the wire takes this path: one regex, one decode
        tail = len(text) % 4
        if tail == 0 or (tail != 1 and text[-1] in _B64_LAST_OF_TAIL[tail]):
            data = binascii.a2b_base64(
                text.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4)
            )
            if size is not None and len(data) != size:
                raise BadField(f"{field} must be {size} bytes, not {len(data)}")
            return data
    _b64_refuse(text, field)
    raise AssertionError("unreachable: _b64_refuse always raises")  # pragma: no cover


def _b64decode_long(raw: bytes) -> bytes | None:
    """The bytes of canonical base64url ``raw`` (no padding), or None if it is not that."""
    tail = len(raw) % 4
    if b"+" in raw or b"/" in raw or b"=" in raw or tail == 1:
        return None
    if tail and raw[-1] not in _B64_LAST_OF_TAIL_BYTES[tail]:
        return None
    try:  # strict: any character outside the alphabet is an error, not skipped
        return binascii.a2b_base64(raw.translate(_FROM_URLSAFE) + b"=" * (-tail % 4),
                                   strict_mode=True)
    except binascii.Error:
        return None


_B64_LAST_OF_TAIL_BYTES = {n: frozenset("".join(chars).encode())
                           for n, chars in _B64_LAST_OF_TAIL.items()}


def _b64_refuse(text: Any, field: str) -> None:
    """Raise the precise ``BadField`` for text that is not canonical base64url."""
    if not isinstance(text, str) or len(text) % 4 == 1 or not text.isascii():
        raise BadField(f"{field} is not base64url without padding")
    raw = text.encode("ascii")
    if b"+" in raw or b"/" in raw or b"=" in raw:  # the other alphabet, or padding
        raise BadField(f"{field} is not base64url without padding")
    try:
        binascii.a2b_base64(
            raw.translate(_FROM_URLSAFE) + b"=" * (-len(raw) % 4), strict_mode=True
        )
    except (binascii.Error, ValueError) as exc:
        raise BadField(f"{field} is not base64url") from exc
    # the unused low bits of the last character are not zero
    raise BadField(f"{field} is not canonical base64url")


def _check_text(text: str) -> None:
    # only non-ASCII text can hold a lone surrogate (from a \\udXXX escape: it has no
    # UTF-8 encoding) or be outside NFC
    if _SURROGATE_RE.search(text) is not None:
        raise BadField("strings must not contain lone UTF-16 surrogates")
    if not unicodedata.is_normalized("NFC", text):
        raise NonCanonical("strings must be in Unicode NFC")


def _check_value(value: Any, depth: int = 0) -> None:
    # hot path of every seal and open: the common cases are tested first
    if isinstance(value, str):
        if not value.isascii():
            _check_text(value)
        return
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise BadField("integer out of the safe range")
        return
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        raise BadField(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadField("object keys must be strings")
            if not key.isascii():
                _check_text(key)
            _check_value(item, depth + 1)
        return
    if isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, float):
        raise BadField("floats are not allowed in canonical JSON")
    raise BadField(f"type {type(value).__name__} cannot be encoded")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
)


def _make_fast_encode() -> Callable[[Any], str]:
    """``_ENCODER.encode``, without building CPython's C encoder object on every call.

    ``JSONEncoder.encode`` makes a new C encoder per call, a fixed cost that is a fifth of
    encoding a message payload. The C encoder is made once here, with the same settings;
    a self-test falls back to the plain method wherever it is absent or differs.
    """
    from json import encoder as stdlib_encoder

    make = getattr(stdlib_encoder, "c_make_encoder", None)
    basestring = getattr(stdlib_encoder, "c_encode_basestring", None)
    if make is None or basestring is None:
        return _ENCODER.encode

    def refuse(value: Any) -> Any:
        raise TypeError(f"type {type(value).__name__} cannot be encoded")

    iterencode = make(None, refuse, basestring, None, ":", ",", True, False, False)

    def encode(value: Any) -> str:
        if isinstance(value, str):
            return basestring(value)  # type: ignore[no-any-return]
        return "".join(iterencode(value, 0))

    samples: list[Any] = [{"b": [1, -2, None, True, {"é": "\u2028\n\"\x7f"}], "a": ""},
                          "x\u0001", [], {}]
    try:
        same = all(encode(v) == _ENCODER.encode(v) for v in samples)
    except (TypeError, ValueError):  # another Python's C encoder: use the documented path
        same = False
    return encode if same else _ENCODER.encode


_encode = _make_fast_encode()


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes (raises on floats and non-NFC strings)."""
    _check_value(value)
    return _encode(value).encode("utf-8")


def canonical_json_of_checked(value: Any) -> bytes:
    """``canonical_json`` for a value whose types and integer ranges the caller checked.

    Only Unicode needs checking then, and a text that is all NFC has only NFC strings
    (a non-NFC string would show verbatim), so the walk runs only when it is not.
    """
    text = _encode(value)
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        _check_value(value)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadField("strings must not contain lone UTF-16 surrogates") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJSON(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_float(text: str) -> Any:
    raise BadField("floats are not allowed")


def _reject_constant(text: str) -> Any:
    raise MalformedJSON(f"{text} is not JSON")


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise BadField("integer out of the safe range")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_float=_reject_float, parse_constant=_reject_constant
)
# no duplicate-key hook here: a repeated key cannot survive the byte-for-byte comparison
# with the re-encoding, so it is rejected as non-canonical without a Python call per object
_CANONICAL_DECODER = json.JSONDecoder(
    parse_float=_reject_float,
    parse_constant=_reject_constant,
    parse_int=_safe_int,
)


def _decode(data: bytes, decoder: json.JSONDecoder) -> tuple[str, Any]:
    try:
        text = data.decode("utf-8")
    except (UnicodeDecodeError, AttributeError) as exc:
        raise MalformedJSON("not UTF-8") from exc
    # more opening brackets than MAX_DEPTH (counted at C speed) is rare: only then is the
    # nesting measured, before the recursive parser ever sees the text
    if text.count("[") + text.count("{") > MAX_DEPTH and _nesting(text) > MAX_DEPTH:
        raise MalformedJSON(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return text, decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedJSON(f"not JSON: {exc.msg} at position {exc.pos}") from exc
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise MalformedJSON("not JSON the protocol accepts: a number is too long") from exc
    except RecursionError as exc:
        raise MalformedJSON("nested too deeply") from exc


_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")


def _nesting(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    depth = deepest = 0
    for bracket in _BRACKET_RE.findall(_JSON_STRING_RE.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(data: bytes) -> Any:
    """Parse JSON strictly: UTF-8, no duplicate keys, no floats, no NaN."""
    return _decode(data, _DECODER)[1]


def parse_canonical(data: bytes) -> dict[str, Any]:
    """Parse bytes that must be a canonical JSON object."""
    text, value = _decode(data, _CANONICAL_DECODER)  # integers range-checked while parsing
    if not isinstance(value, dict):
        raise BadField("expected a JSON object")
    try:
        encoded = _encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadField("strings must not contain lone UTF-16 surrogates") from exc
    except RecursionError as exc:
        raise MalformedJSON("nested too deeply") from exc
    if encoded != data:
        raise NonCanonical()
    # Every string is NFC if the whole text is (a non-NFC string shows verbatim in the
    # text), so the value is walked only when the text is not. Nesting depth is bounded by
    # each structure's schema, which readers check next.
    if not (text.isascii() or unicodedata.is_normalized("NFC", text)):
        _check_value(value)
    return value


def signing_input(label: bytes, *parts: bytes) -> bytes:
    """``label || len(part1) || part1 || ...`` with 8-byte big-endian lengths."""
    pieces = [label]
    for part in parts:
        pieces.append(len(part).to_bytes(8, "big"))
        pieces.append(part)
    return b"".join(pieces)


# --- field schemas ----------------------------------------------------------------------

ID_RE = re.compile(r"\A[a-z0-9][a-z0-9-]{1,31}\Z")
"""Organisation ids and the name part of staff ids."""


@lru_cache(maxsize=128)
def _field_sets(
    required: tuple[str, ...], optional: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(required), frozenset(required) | frozenset(optional)


def check_version(obj: dict[str, Any]) -> None:
    """``v`` present and 1: checked before any other field (SPEC section 1)."""
    if "v" not in obj:
        raise MissingField("field 'v' is missing")
    if obj["v"] != 1 or isinstance(obj["v"], bool):
        raise UnknownVersion(f"version {obj['v']!r} is not supported (this software speaks 1)")


def check_fields(
    obj: dict[str, Any], required: Iterable[str], optional: Iterable[str] = ()
) -> None:
    """Reject unknown and missing fields; check ``v`` == 1 first so a newer version says so."""
    required, allowed = _field_sets(tuple(required), tuple(optional))
    if "v" in required:
        check_version(obj)
    if obj.keys() == required:  # the common case, in one comparison
        return
    for key in obj:
        if key not in allowed:
            raise UnknownField(f"unknown field {key!r}")
    missing = sorted(required - obj.keys())
    if missing:
        raise MissingField(f"field {missing[0]!r} is missing")


def get_str(
    obj: dict[str, Any], key: str, *, max_len: int = 1024, pattern: re.Pattern[str] | None = None
) -> str:
    """``obj[key]`` as a string of at most ``max_len`` characters matching ``pattern``."""
    value = obj[key]
    if not isinstance(value, str):
        raise BadField(f"{key} must be a string")
    if len(value) > max_len:
        raise BadField(f"{key} is longer than {max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadField(f"{key} has an invalid format")
    return value


def get_int(
    obj: dict[str, Any], key: str, *, minimum: int = 0, maximum: int = MAX_SAFE_INT
) -> int:
    """``obj[key]`` as an integer (not a boolean) in ``[minimum, maximum]``."""
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadField(f"{key} must be an integer")
    if not minimum <= value <= maximum:
        raise BadField(f"{key} must be between {minimum} and {maximum}")
    return value


def get_bool(obj: dict[str, Any], key: str) -> bool:
    """``obj[key]`` as a JSON ``true`` or ``false`` (not 0 or 1)."""
    value = obj[key]
    if not isinstance(value, bool):
        raise BadField(f"{key} must be true or false")
    return value


def get_bytes(obj: dict[str, Any], key: str, size: int | None = None) -> bytes:
    """``obj[key]`` decoded from base64url, of exactly ``size`` bytes if given."""
    return b64decode(obj[key], size=size, field=key)


def check_org_id(value: Any) -> str:
    """``value`` if it is a valid organisation id, else ``BadField``."""
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise BadField(f"{value!r} is not a valid organisation id ([a-z0-9][a-z0-9-]{{1,31}})")
    return value


def check_fingerprint(value: Any, field: str = "key") -> str:
    """``value`` if it is a fingerprint (32 characters of ``A-Z2-7``), else ``BadField``."""
    if not isinstance(value, str) or not _FINGERPRINT_RE.match(value):
        raise BadField(f"{field} must be a fingerprint (32 base32 characters)")
    return value


def check_staff_id(value: Any) -> str:
    """``value`` if it is a valid staff id ``org/name``, else ``BadField``."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise BadField(f"{value!r} is not a valid staff id (org/name)")
    org, name = value.split("/")
    if not ID_RE.fullmatch(org) or not ID_RE.fullmatch(name):
        raise BadField(
            f"{value!r} is not a valid staff id (org/name, each [a-z0-9][a-z0-9-]{{1,31}})"
        )
    return value


def org_of(staff_id: str) -> str:
    """The organisation part of a staff id."""
    return staff_id.split("/", 1)[0]


# --- signed items -----------------------------------------------------------------------


_ITEM_FIELDS = ("body", "sigs")
_SIGNATURE_FIELDS = ("key", "sig")


@dataclass(frozen=True)
class Signature:
    """One signature of a signed item: the signer's fingerprint and the 64 signature bytes."""

    key: str
    sig: bytes


@dataclass(frozen=True)
class SignedItem:
    """A body (canonical JSON bytes) and its signatures, as they travel."""

    body: bytes
    sigs: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        """The item as a JSON object (``body`` as text, signatures in base64url)."""
        return {
            "body": self.body.decode("utf-8"),
            "sigs": [{"key": s.key, "sig": b64encode(s.sig)} for s in self.sigs],
        }

    def to_bytes(self) -> bytes:
        """The canonical bytes of the whole item (what the key log hashes).

        Byte for byte ``canonical_json(self.to_json())`` (a test holds them equal), written
        out directly because every sealed message passes through here.
        """
        try:
            body = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadField("a signed body must be UTF-8") from exc
        texts = [body, *(s.key for s in self.sigs)]
        for text in texts:
            if not isinstance(text, str):
                raise BadField("a signature's key must be a string")
            if not text.isascii():
                _check_text(text)
        encode = _encode
        sigs = ",".join(
            f'{{"key":{encode(s.key)},"sig":"{b64encode(s.sig)}"}}' for s in self.sigs
        )
        return f'{{"body":{encode(body)},"sigs":[{sigs}]}}'.encode()

    @classmethod
    def from_json(cls, obj: Any) -> SignedItem:
        """Validate the item's shape (not its signatures; the verifier does that)."""
        if not isinstance(obj, dict):
            raise BadField("a signed item must be a JSON object")
        check_fields(obj, _ITEM_FIELDS)
        body = obj["body"]
        if not isinstance(body, str):
            raise BadField("body must be a string")
        raw_sigs = obj["sigs"]
        if not isinstance(raw_sigs, list) or not 1 <= len(raw_sigs) <= 2:
            raise BadField("sigs must be a list of one or two signatures")
        sigs: list[Signature] = []
        for raw in raw_sigs:
            if not isinstance(raw, dict):
                raise BadField("a signature must be an object")
            check_fields(raw, _SIGNATURE_FIELDS)
            key = raw["key"]
            if not isinstance(key, str) or not _FINGERPRINT_RE.match(key):
                raise BadField("a signature's key must be a fingerprint (32 base32 characters)")
            if any(s.key == key for s in sigs):
                raise BadField("the same key signs twice")
            sigs.append(Signature(key=key, sig=get_bytes(raw, "sig", 64)))
        if not body.isascii() and _SURROGATE_RE.search(body) is not None:
            raise BadField("body must not contain lone UTF-16 surrogates")
        return cls(body=body.encode("utf-8"), sigs=tuple(sigs))

    @classmethod
    def from_bytes(cls, data: bytes) -> SignedItem:
        """Parse the canonical bytes of a signed item (as stored in the key log)."""
        return _signed_item_fast(data) or cls.from_json(parse_canonical(data))


# A canonical signed item is ``{"body":<string>,"sigs":[<sig>(,<sig>)?]}`` with each sig
# ``{"key":"<32 base32>","sig":"<86 base64url>"}``: the tail has one of two fixed
# lengths, so the body's string literal is what lies between. Every sealed message is
# parsed here, so this path skips the generic parse of the wrapper; anything it does not
# accept in full goes through the generic parser, which gives the precise error.
_SIG_RE = rb'\{"key":"([A-Z2-7]{32})","sig":"([A-Za-z0-9_-]{86})"\}'
_TAILS = (
    (148, re.compile(rb',"sigs":\[' + _SIG_RE + rb"\]\}")),
    (286, re.compile(rb',"sigs":\[' + _SIG_RE + b"," + _SIG_RE + rb"\]\}")),
)
_ITEM_HEAD = b'{"body":"'
_scan_string: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


def _signed_item_fast(data: bytes) -> SignedItem | None:
    if not isinstance(data, bytes) or not data.startswith(_ITEM_HEAD):
        return None
    for length, tail_re in _TAILS:
        tail = tail_re.fullmatch(data, len(data) - length) if len(data) > length + 9 else None
        if tail is None:
            continue
        try:
            literal = data[8 : len(data) - length].decode("utf-8")
            body, end = _scan_string(literal, 1)  # literal[0] is the opening quote
        except (UnicodeDecodeError, ValueError):
            return None
        if end != len(literal) or _encode(body) != literal:
            return None
        if not body.isascii() and not unicodedata.is_normalized("NFC", body):
            return None
        groups = tail.groups()
        keys = groups[0::2]
        if len(set(keys)) != len(keys):
            return None
        try:
            sigs = tuple(
                Signature(key.decode("ascii"), b64decode(sig.decode("ascii"), size=64))
                for key, sig in zip(keys, groups[1::2], strict=True)
            )
        except BadField:
            return None
        return SignedItem(body=body.encode("utf-8"), sigs=sigs)
    return None
