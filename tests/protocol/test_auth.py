"""The relay-login signature is bound to the relay's origin and the challenge nonce."""

from __future__ import annotations

import pytest

from protocol import labels, sign_auth, verify_auth
from protocol.auth import origin_of
from protocol.encoding import signing_input
from protocol.errors import AuthSignatureInvalid, BadField
from protocol.keys import SigningKeyPair

from .world import seed

KEY = SigningKeyPair.from_seed(seed("auth/staff"))
ORIGIN = "https://relay.example.org"
NONCE = seed("auth/nonce")


def test_answer_verifies() -> None:
    verify_auth(KEY.public, ORIGIN, NONCE, sign_auth(KEY, ORIGIN, NONCE))


@pytest.mark.parametrize(
    ("origin", "nonce", "key"),
    [
        ("https://evil.example.org", NONCE, KEY),  # passed through from another relay
        (ORIGIN + "/", NONCE, KEY),
        (ORIGIN, seed("auth/other-nonce"), KEY),  # an old challenge
        (ORIGIN, NONCE, SigningKeyPair.from_seed(seed("auth/other"))),
    ],
)
def test_answer_for_anything_else_fails(origin: str, nonce: bytes, key: SigningKeyPair) -> None:
    signature = sign_auth(KEY, ORIGIN, NONCE)
    with pytest.raises(AuthSignatureInvalid) as info:
        verify_auth(key.public, origin, nonce, signature)
    assert info.value.code == "auth_bad_signature"


def test_a_signature_for_another_purpose_is_not_a_login() -> None:
    other = KEY.sign(labels.REQUEST, ORIGIN.encode(), NONCE)
    with pytest.raises(AuthSignatureInvalid):
        verify_auth(KEY.public, ORIGIN, NONCE, other)
    assert signing_input(labels.AUTH, ORIGIN.encode(), NONCE)[:12] == b"kok/v1/auth\x00"


@pytest.mark.parametrize(("origin", "nonce"), [("", NONCE), (ORIGIN, NONCE[:31]),
                                               ("https://ä.example", NONCE)])
def test_malformed_challenges(origin: str, nonce: bytes) -> None:
    with pytest.raises(BadField):
        sign_auth(KEY, origin, nonce)
    with pytest.raises(AuthSignatureInvalid):
        verify_auth(KEY.public, origin, nonce, bytes(64))


@pytest.mark.parametrize(("url", "origin"), [
    ("https://[2001:DB8:0:0::0001]:8443/v1", "https://[2001:db8::1]:8443"),
    ("http://[::1]:8787", "http://[::1]:8787"),
    ("https://[::FFFF:127.0.0.1]/", "https://[::ffff:7f00:1]"),
    ("https://Bücher.Example/", "https://xn--bcher-kva.example"),
    ("https://RELAY.example:443/", "https://relay.example"),
])
def test_an_origin_has_one_spelling_per_host(url: str, origin: str) -> None:
    """RFC 5952 for IPv6, IDNA A-labels for international names (SPEC 11)."""
    assert origin_of(url) == origin


def test_an_ipv6_zone_id_cannot_be_an_origin() -> None:
    with pytest.raises(BadField):
        origin_of("https://[fe80::1%25eth0]/")
