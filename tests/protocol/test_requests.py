"""Onboarding request files: self-signed, and any change shows."""

from __future__ import annotations

import json

import pytest

from protocol import labels
from protocol.encoding import b64encode, canonical_json
from protocol.errors import RequestInvalid
from protocol.keys import BoxKeyPair, SigningKeyPair
from protocol.requests import (
    make_org_request,
    make_staff_request,
    open_org_request,
    open_staff_request,
)

from .world import T0, seed

IDENTITY = SigningKeyPair.from_seed(seed("requests/identity"))
SIGNING = SigningKeyPair.from_seed(seed("requests/signing"))
BOX = BoxKeyPair.from_seed(seed("requests/box"))


def test_org_request_round_trip() -> None:
    request = open_org_request(make_org_request(IDENTITY, "org-n", "Neue Beratung", T0))
    assert (request.org_id, request.name, request.identity_key) == (
        "org-n", "Neue Beratung", IDENTITY.public)


def test_staff_request_round_trip() -> None:
    data = make_staff_request(SIGNING, BOX.public, "org-n/dana", "Dana", T0, role="admin")
    request = open_staff_request(data)
    assert (request.staff_id, request.role, request.box_key) == ("org-n/dana", "admin",
                                                                 BOX.public)


def test_every_flipped_byte_is_caught() -> None:
    data = make_org_request(IDENTITY, "org-n", "Neue Beratung", T0)
    for index in range(len(data)):
        damaged = bytearray(data)
        damaged[index] ^= 0x01
        with pytest.raises(RequestInvalid):
            open_org_request(bytes(damaged))


def test_swapped_key_is_caught() -> None:
    obj = json.loads(make_staff_request(SIGNING, BOX.public, "org-n/dana", "Dana", T0))
    body = json.loads(obj["body"])
    body["box_key"] = body["signing_key"]
    obj["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"))
    with pytest.raises(RequestInvalid):
        open_staff_request(json.dumps(obj).encode())


def test_the_kinds_are_not_interchangeable() -> None:
    with pytest.raises(RequestInvalid):
        open_staff_request(make_org_request(IDENTITY, "org-n", "N", T0))
    with pytest.raises(RequestInvalid):
        open_org_request(make_staff_request(SIGNING, BOX.public, "org-n/dana", "Dana", T0))
    with pytest.raises(RequestInvalid):
        open_org_request(b"not json")


def test_writers_refuse_invalid_requests() -> None:
    with pytest.raises(RequestInvalid):
        make_staff_request(SIGNING, BOX.public, "org-n/dana", "Dana", T0, role="root")
    with pytest.raises(RequestInvalid):
        make_org_request(IDENTITY, "org-n", "x" * 500, T0)


def test_a_staff_request_with_a_low_order_box_key_is_refused() -> None:
    """Writer and reader both refuse it: an admin could never seal a grant to that key."""
    with pytest.raises(RequestInvalid):
        make_staff_request(SIGNING, bytes(32), "org-a/erin", "Erin", T0)
    body = json.loads(json.loads(make_staff_request(SIGNING, BOX.public, "org-a/erin",
                                                    "Erin", T0))["body"])
    body["box_key"] = b64encode(bytes(32))  # then signed again by the requester's own key
    forged = canonical_json(SIGNING.sign_item(labels.REQUEST, canonical_json(body)).to_json())
    with pytest.raises(RequestInvalid):
        open_staff_request(forged)
