"""The relay-auth challenge signature: ``kok/v1/auth || origin || nonce``.

Binding the relay's origin (scheme://host[:port]) stops a malicious relay from passing a
challenge of another relay through to a client and replaying the answer there. The nonce
is the relay's single-use 32-byte challenge.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from . import labels
from .errors import AuthSignatureInvalid, BadField, SignatureError
from .keys import SigningKeyPair, verify

NONCE_SIZE = 32
MAX_CHALLENGE_TTL = 60
"""The longest a login challenge may stay valid, in seconds."""
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


def origin_of(url: str) -> str:
    """The origin a login is bound to: ``scheme://host[:port]``, lower case, no default port.

    A client MUST take it from the relay URL it was configured with, never from anything the
    relay says: a host that merely forwards to the real relay then gets a signature bound to
    its own origin, which the real relay refuses.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadField(f"{url!r} is not an http(s) URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadField(f"{url!r} is not an http(s) URL")
    host = _origin_host(parts.hostname, url)
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _origin_host(host: str, url: str) -> str:
    """The host as an origin writes it (SPEC 11): ASCII only, one spelling per host.

    An IPv6 literal in brackets in its RFC 5952 form (lower case, zeros compressed), an
    internationalised name as IDNA A-labels (``xn--``), anything else in lower case.
    """
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise BadField(f"{url!r} has an IPv6 host an origin cannot name") from exc
        if address.scope_id is not None:  # fe80::1%eth0 names an interface of one machine
            raise BadField(f"{url!r} has an IPv6 zone id, which an origin cannot carry")
        return f"[{address.compressed}]"
    if host.isascii():
        return host.lower()
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise BadField(f"{url!r} has a host name that is not a valid IDN") from exc
