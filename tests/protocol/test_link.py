"""Device linking's pure parts (protocol/link.py, SPEC.md section 6.9)."""

from __future__ import annotations

import secrets

import pytest

from protocol.errors import LinkCodeInvalid, LinkMessageInvalid, LinkWrongCode
from protocol.keys import BoxKeyPair, SigningKeyPair
from protocol.link import (
    EXISTING,
    MAX_LINK_MESSAGE,
    NEW,
    LinkCode,
    LinkKeys,
    LinkPake,
    ProfileOffer,
    make_device_offer,
    make_profile_offer,
    open_device_offer,
    open_link_message,
    open_profile_offer,
    seal_link_message,
)

NETWORK = secrets.token_bytes(32)
CODE = LinkCode("4711", "29508163")


def pair(code_a: LinkCode = CODE, code_b: LinkCode = CODE,
         network_b: bytes = NETWORK) -> tuple[LinkKeys, LinkKeys]:
    a = LinkPake(EXISTING, code_a, NETWORK, secrets.token_bytes)
    b = LinkPake(NEW, code_b, network_b, secrets.token_bytes)
    return a.finish(b.message), b.finish(a.message)


def nonce() -> bytes:
    return secrets.token_bytes(24)


@pytest.mark.parametrize("text", ["4711-2950-8163", "4711 2950 8163", "471129508163",
                                  " 4711-29508163 "])
def test_a_code_is_read_however_it_is_grouped(text: str) -> None:
    assert LinkCode.parse(text) == CODE
    assert str(LinkCode.parse(text)) == "4711-2950-8163"


@pytest.mark.parametrize("text", ["4711-2950-816", "4711-2950-81634", "4711-2950-816a",
                                  "٤٧١١-2950-8163", "", "4711_2950_8163"])
def test_anything_but_twelve_ascii_digits_is_no_code(text: str) -> None:
    with pytest.raises(LinkCodeInvalid):
        LinkCode.parse(text)


def test_the_same_code_gives_both_sides_the_same_keys_and_they_open_each_other() -> None:
    keys_a, keys_b = pair()
    signing = SigningKeyPair.from_seed(secrets.token_bytes(32))
    box = BoxKeyPair.from_seed(secrets.token_bytes(32))
    b1 = seal_link_message(keys_b, NEW, make_device_offer(signing, box.public, keys_b), nonce())
    offer = open_device_offer(open_link_message(keys_a, NEW, b1), keys_a)
    assert (offer.signing_key, offer.box_key) == (signing.public, box.public)
    profile = ProfileOffer("org-a/alice", "Alice", secrets.token_bytes(32))
    a1 = seal_link_message(keys_a, EXISTING, make_profile_offer(profile), nonce())
    assert open_profile_offer(open_link_message(keys_b, EXISTING, a1)) == profile


@pytest.mark.parametrize("other", [
    (LinkCode("4711", "29508164"), NETWORK),   # one digit off
    (LinkCode("4712", "29508163"), NETWORK),   # the nameplate is part of the password
    (CODE, secrets.token_bytes(32)),           # the same code on another network
])
def test_another_code_or_network_fails_the_key_confirmation(
        other: tuple[LinkCode, bytes]) -> None:
    keys_a, keys_b = pair(code_b=other[0], network_b=other[1])
    with pytest.raises(LinkWrongCode):
        open_link_message(keys_a, NEW, seal_link_message(keys_b, NEW, b"offer", nonce()))
    with pytest.raises(LinkWrongCode):
        open_link_message(keys_b, EXISTING, seal_link_message(keys_a, EXISTING, b"x", nonce()))


def test_a_message_is_checked_for_its_direction_size_and_integrity() -> None:
    keys_a, keys_b = pair()
    b1 = seal_link_message(keys_b, NEW, b"offer", nonce())
    with pytest.raises(LinkWrongCode):  # reflected back as if from the other side
        open_link_message(keys_b, EXISTING, b1)
    altered = b1[:-1] + bytes([b1[-1] ^ 1])
    with pytest.raises(LinkMessageInvalid):
        open_link_message(keys_a, NEW, altered)
    for size in (0, 32, 71, MAX_LINK_MESSAGE + 1):
        with pytest.raises(LinkMessageInvalid):
            open_link_message(keys_a, NEW, b1[:32] + bytes(max(0, size - 32)))


def test_a_side_cannot_finish_with_its_own_message_or_a_bad_one() -> None:
    a = LinkPake(EXISTING, CODE, NETWORK, secrets.token_bytes)
    with pytest.raises(LinkMessageInvalid):
        a.finish(a.message)  # a relay reflecting A's message back
    for bad in (b"", a.message[:-1], b"B" + bytes(32)):
        with pytest.raises(LinkMessageInvalid):
            LinkPake(EXISTING, CODE, NETWORK, secrets.token_bytes).finish(bad)


def test_a_device_offer_is_bound_to_its_session() -> None:
    keys_a, _ = pair()
    other_a, other_b = pair()
    signing = SigningKeyPair.from_seed(secrets.token_bytes(32))
    box = BoxKeyPair.from_seed(secrets.token_bytes(32))
    replayed = make_device_offer(signing, box.public, other_b)  # signed in another link
    with pytest.raises(LinkMessageInvalid):
        open_device_offer(replayed, keys_a)
    assert open_device_offer(replayed, other_a).signing_key == signing.public
