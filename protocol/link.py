"""Linking a new device with a one-time code: SPAKE2 over a relay mailbox (SPEC.md 6.9).

Theory of operation
-------------------
The person runs ``kok device link`` on a device they already use (the *existing* side,
SPAKE2 side A) and types the code it shows into the new device (the *new* side, B). The
code is ``NNNN-DDDD-DDDD``: the mailbox's *nameplate* (``NNNN``, chosen by the relay so
the new device finds the mailbox) and eight digits chosen by the existing device. The
whole code is the SPAKE2 password; both sides also bind the network key into SPAKE2's
identities, so a code means nothing on another network.

Four messages cross the relay's mailbox, in this order (as magic-wormhole's "pake" and
"version" phases)::

    A -> relay   a0 = SPAKE2 message of A (33 bytes)
    B -> relay   b0 = SPAKE2 message of B
    B -> relay   b1 = confirm_new      || nonce || SecretBox(box_new, device offer)
    A -> relay   a1 = confirm_existing || nonce || SecretBox(box_existing, profile offer)

Each side derives every key from the SPAKE2 key ``K`` with its own label
(``derive(K, label) = BLAKE2b-256(label, key=K)``). A side checks the other's
confirmation value before it opens anything: a wrong code (or a relay that played the
other side with a guessed code) fails there with ``link_wrong_code``, and the side gives
up the mailbox; each SPAKE2 run allows exactly one guess. The device offer is the new
device's public keys signed by its new signing key over the session's binding value (proof
that it holds the key, and only in this session); the profile offer tells the new device
who it belongs to and which relay log key the existing device pinned.

This module is pure: entropy for SPAKE2 and the nonces are parameters.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
from spake2 import SPAKE2_A, SPAKE2_B  # type: ignore[import-untyped]

from . import labels
from .encoding import (
    SignedItem,
    b64encode,
    canonical_json,
    check_fields,
    check_staff_id,
    get_bytes,
    get_str,
    parse_canonical,
    parse_json,
)
from .errors import (
    EncodingError,
    LinkCodeInvalid,
    LinkMessageInvalid,
    LinkWrongCode,
    SignatureError,
)
from .keys import SigningKeyPair, check_box_public, verify_item
from .records import MAX_NAME

NAMEPLATE_DIGITS = 4
"""Digits of a mailbox nameplate (chosen by the relay)."""
PASSWORD_DIGITS = 8
"""Digits of the secret part of a code (chosen by the existing device)."""
MAX_LINK_MESSAGE = 4096
"""The largest mailbox message a side sends or accepts, in bytes."""
PAKE_MESSAGE_SIZE = 33
CONFIRM_SIZE = 32
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE
EXISTING = "a"
NEW = "b"

Entropy = Callable[[int], bytes]


@dataclass(frozen=True)
class LinkCode:
    """A one-time code: the mailbox's nameplate and the secret digits."""

    nameplate: str
    password: str

    def __post_init__(self) -> None:
        if not (len(self.nameplate) == NAMEPLATE_DIGITS and self.nameplate.isdigit()
                and len(self.password) == PASSWORD_DIGITS and self.password.isdigit()
                and self.nameplate.isascii() and self.password.isascii()):
            raise LinkCodeInvalid()

    def __str__(self) -> str:
        return f"{self.nameplate}-{self.password[:4]}-{self.password[4:]}"

    @classmethod
    def parse(cls, text: str) -> LinkCode:
        """A code as a person typed it (spaces and dashes in any grouping are allowed)."""
        digits = re.sub(r"[\s\-]", "", text)
        if not (digits.isascii() and digits.isdigit()
                and len(digits) == NAMEPLATE_DIGITS + PASSWORD_DIGITS):
            raise LinkCodeInvalid()
        return cls(digits[:NAMEPLATE_DIGITS], digits[NAMEPLATE_DIGITS:])

    @classmethod
    def from_number(cls, nameplate: str, secret: int) -> LinkCode:
        """The code for a nameplate and a secret number below ``10**PASSWORD_DIGITS``."""
        if not 0 <= secret < 10**PASSWORD_DIGITS:
            raise LinkCodeInvalid()
        return cls(nameplate, f"{secret:0{PASSWORD_DIGITS}d}")


def check_nameplate(text: str) -> str:
    """A nameplate as the relay names mailboxes (``NNNN``), else ``LinkCodeInvalid``."""
    if not (len(text) == NAMEPLATE_DIGITS and text.isascii() and text.isdigit()):
        raise LinkCodeInvalid()
    return text


def derive(key: bytes, label: bytes) -> bytes:
    """A 32-byte key for one purpose from the SPAKE2 key."""
    return hashlib.blake2b(label, key=key, digest_size=32).digest()


def _identities(network_key: bytes) -> tuple[bytes, bytes]:
    return labels.LINK + b"/existing/" + network_key, labels.LINK + b"/new/" + network_key


@dataclass(frozen=True)
class LinkKeys:
    """Everything both sides derive from the SPAKE2 key."""

    confirm_existing: bytes
    confirm_new: bytes
    box_existing: bytes
    box_new: bytes
    binding: bytes

    @classmethod
    def from_shared(cls, key: bytes) -> LinkKeys:
        return cls(derive(key, labels.LINK_CONFIRM_EXISTING),
                   derive(key, labels.LINK_CONFIRM_NEW),
                   derive(key, labels.LINK_BOX_EXISTING), derive(key, labels.LINK_BOX_NEW),
                   derive(key, labels.LINK_BINDING))

    def __repr__(self) -> str:  # never print secrets
        return "LinkKeys(...)"


class LinkPake:
    """One side's SPAKE2 run: ``message`` goes to the other side, ``finish`` takes theirs.

    A run is good for exactly one attempt: ``finish`` may be called once.
    """

    def __init__(self, side: str, code: LinkCode, network_key: bytes, entropy: Entropy) -> None:
        id_existing, id_new = _identities(network_key)
        kind = {EXISTING: SPAKE2_A, NEW: SPAKE2_B}[side]
        self.side = side
        self._spake = kind(str(code).encode("ascii"), idA=id_existing, idB=id_new,
                           entropy_f=entropy)
        self.message: bytes = self._spake.start()

    def finish(self, peer_message: bytes) -> LinkKeys:
        """The session keys, from the other side's SPAKE2 message."""
        if len(peer_message) != PAKE_MESSAGE_SIZE:
            raise LinkMessageInvalid("the other side's PAKE message has the wrong size")
        try:
            shared = self._spake.finish(peer_message)
        except Exception as exc:  # the library raises its own classes for a bad point/side
            raise LinkMessageInvalid(f"the other side's PAKE message is invalid: {exc}") from exc
        return LinkKeys.from_shared(shared)


# --- confirmed, encrypted messages -------------------------------------------------------


def seal_link_message(keys: LinkKeys, side: str, plaintext: bytes, nonce: bytes) -> bytes:
    """``confirm || nonce || SecretBox`` of ``plaintext`` from ``side``."""
    confirm, box = _side_keys(keys, side)
    sealed = nacl.secret.SecretBox(box).encrypt(plaintext, nonce)
    data = confirm + bytes(sealed)
    if len(data) > MAX_LINK_MESSAGE:
        raise LinkMessageInvalid("a link message is too large")
    return data


def open_link_message(keys: LinkKeys, side: str, data: bytes) -> bytes:
    """Check the confirmation of a message ``side`` sent, then decrypt it.

    A wrong confirmation is ``LinkWrongCode``: the two sides did not use the same code.
    """
    confirm, box = _side_keys(keys, side)
    if len(data) < CONFIRM_SIZE + NONCE_SIZE + 16 or len(data) > MAX_LINK_MESSAGE:
        raise LinkMessageInvalid("a link message has an impossible size")
    if not hmac.compare_digest(data[:CONFIRM_SIZE], confirm):
        raise LinkWrongCode()
    try:
        return bytes(nacl.secret.SecretBox(box).decrypt(data[CONFIRM_SIZE:]))
    except nacl.exceptions.CryptoError as exc:
        raise LinkMessageInvalid("a link message was altered") from exc


def _side_keys(keys: LinkKeys, side: str) -> tuple[bytes, bytes]:
    if side == EXISTING:
        return keys.confirm_existing, keys.box_existing
    return keys.confirm_new, keys.box_new


# --- what each side sends ------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceOffer:
    """The new device's public keys (sent by the new side, inside ``b1``)."""

    signing_key: bytes
    box_key: bytes


def make_device_offer(signing: SigningKeyPair, box_public: bytes, keys: LinkKeys) -> bytes:
    """The new device's keys, self-signed over this session's binding value."""
    body = canonical_json({"v": 1, "type": "link_device",
                           "signing_key": b64encode(signing.public),
                           "box_key": b64encode(check_box_public(box_public, "box_key"))})
    return canonical_json(signing.sign_item(labels.LINK_DEVICE, body, keys.binding).to_json())


def open_device_offer(data: bytes, keys: LinkKeys) -> DeviceOffer:
    """Parse a device offer and check that its key signed it in this session."""
    try:
        item = SignedItem.from_json(parse_json(data))
        if len(item.sigs) != 1:
            raise LinkMessageInvalid("a device offer carries exactly one signature")
        obj = parse_canonical(item.body)
        check_fields(obj, ["v", "type", "signing_key", "box_key"])
        if obj.get("type") != "link_device" or obj.get("v") != 1:
            raise LinkMessageInvalid("this is not a device offer")
        offer = DeviceOffer(get_bytes(obj, "signing_key", 32),
                            check_box_public(get_bytes(obj, "box_key", 32), "box_key"))
        verify_item(item, offer.signing_key, labels.LINK_DEVICE, keys.binding)
    except (EncodingError, SignatureError) as exc:
        raise LinkMessageInvalid(f"the device offer is invalid: {exc.message}") from exc
    return offer


@dataclass(frozen=True)
class ProfileOffer:
    """What the new device needs to become a profile (sent by the existing side in ``a1``)."""

    staff_id: str
    name: str
    log_key: bytes


def make_profile_offer(offer: ProfileOffer) -> bytes:
    """The profile offer as canonical JSON."""
    return canonical_json({"v": 1, "type": "link_profile", "staff_id": offer.staff_id,
                           "name": offer.name, "log_key": b64encode(offer.log_key)})


def open_profile_offer(data: bytes) -> ProfileOffer:
    """Parse a profile offer."""
    try:
        obj = parse_canonical(data)
        check_fields(obj, ["v", "type", "staff_id", "name", "log_key"])
        if obj.get("type") != "link_profile" or obj.get("v") != 1:
            raise LinkMessageInvalid("this is not a profile offer")
        return ProfileOffer(check_staff_id(obj["staff_id"]),
                            get_str(obj, "name", max_len=MAX_NAME),
                            get_bytes(obj, "log_key", 32))
    except EncodingError as exc:
        raise LinkMessageInvalid(f"the profile offer is invalid: {exc.message}") from exc
