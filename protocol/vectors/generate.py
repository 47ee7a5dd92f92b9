#!/usr/bin/env python3
"""Generate the protocol test vectors in this directory from fixed seeds.

    python protocol/vectors/generate.py          # (re)write every vectors/*.json
    python protocol/vectors/generate.py --check  # exit 1 unless the files are exactly these

One file per scenario, named ``<area>_<case>.json``. The first field, ``expect``, is
``"success"`` or the stable error code a reader must fail with (SPEC.md, "Error codes");
``description`` says what the case is. Every key, nonce, header and ephemeral seed comes
from ``seed(name) = BLAKE2b-256("kok/v1/vectors/" || name)``, so the files are reproduced
byte for byte. Binary values are base64url without padding; JSON texts that a reader must
take byte for byte (records, request files) are JSON strings holding that text.

The expected outcome of each case is written here by hand, from the scenario; the
generator then runs the reference code on the case and refuses to write a vector the
code disagrees with (tests/protocol/test_vectors.py runs every vector again).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script: make the repository's `protocol` importable
    sys.path.insert(0, str(HERE.parents[1]))
if str(HERE) not in sys.path:  # and run.py, the reference reader beside this file
    sys.path.append(str(HERE))

import nacl.bindings as sodium  # noqa: E402

from protocol import errors, labels  # noqa: E402
from protocol.auth import sign_auth  # noqa: E402
from protocol.encoding import (  # noqa: E402
    Signature,
    SignedItem,
    b64encode,
    canonical_json,
    signing_input,
)
from protocol.grants import grant_upload_parts, make_grant  # noqa: E402
from protocol.keylog import MAX_SKEW, KeyLog, sign_head  # noqa: E402
from protocol.keys import (  # noqa: E402
    BoxKeyPair,
    SigningKeyPair,
    box_public_from_secret,
    fingerprint,
    format_fingerprint,
    safety_code,
)
from protocol.link import (  # noqa: E402
    EXISTING,
    NEW,
    LinkCode,
    LinkPake,
    ProfileOffer,
    make_device_offer,
    make_profile_offer,
    seal_link_message,
)
from protocol.message import (  # noqa: E402
    RECEIPT_MARGIN,
    Attachment,
    LogPosition,
    MessagePayload,
    message_content,
    message_signing_parts,
    retraction_notice,
    seal_message,
)
from protocol.padding import pad_message, padme  # noqa: E402
from protocol.records import (  # noqa: E402
    BoxKey,
    DeviceAdd,
    DeviceRemove,
    Epoch,
    OrgAdmit,
    OrgRekey,
    OrgRevoke,
    OrgSettings,
    OrgVerify,
    StaffAdd,
    StaffRemove,
    countersign,
    record_body,
    sign_record,
)
from protocol.requests import make_org_request, make_staff_request  # noqa: E402
from protocol.sealedbox import seal  # noqa: E402
from protocol.stream import (  # noqa: E402
    CHUNK_CIPHERTEXT,
    CHUNK_SIZE,
    HEADER_SIZE,
    TAG_FINAL,
    TAG_MESSAGE,
    FileEncryptor,
    _state,
    padded_stream_size,
)

T0 = 1_700_000_000
Vector = dict[str, Any]


def seed(name: str) -> bytes:
    """The 32 bytes every vector secret is made from."""
    return hashlib.blake2b(b"kok/v1/vectors/" + name.encode(), digest_size=32).digest()


def b64(data: bytes) -> str:
    return b64encode(data)


def vector(expect: str, description: str, **fields: Any) -> Vector:
    known = {cls.code for cls in errors.all_error_classes()} | {"success"}
    if expect not in known:
        raise ValueError(f"unknown expectation {expect!r}")
    return {"expect": expect, "description": description, **fields}


# --- a small network, built record by record ---------------------------------------------


class Net:
    """The network office, orgs and staff of the vectors, and the log they write."""

    def __init__(self) -> None:
        self.network = SigningKeyPair.from_seed(seed("network"))
        self.log_key = SigningKeyPair.from_seed(seed("relay-log"))
        self.records: list[bytes] = []
        self.now = T0
        self.identity: dict[str, SigningKeyPair] = {}
        self.signing: dict[str, SigningKeyPair] = {}
        self.box: dict[str, BoxKeyPair] = {}
        self.epochs: dict[tuple[str, int], BoxKeyPair] = {}

    def add(self, item: SignedItem) -> bytes:
        data = item.to_bytes()
        self.records.append(data)
        return data

    def admit(self, org_id: str) -> None:
        self.identity[org_id] = SigningKeyPair.from_seed(seed(f"identity/{org_id}"))
        self.add(sign_record(OrgAdmit(org_id, f"Beratungsstelle {org_id[-1].upper()}",
                                      self.identity[org_id].public, self.now), self.network))

    def staff(self, staff_id: str, role: str = "staff") -> None:
        self.signing[staff_id] = SigningKeyPair.from_seed(seed(f"signing/{staff_id}"))
        self.box[staff_id] = BoxKeyPair.from_seed(seed(f"box/{staff_id}"))
        org_id = staff_id.split("/")[0]
        self.add(sign_record(StaffAdd(staff_id, self.signing[staff_id].public,
                                      self.box[staff_id].public, role, self.now),
                             self.identity[org_id]))

    def epoch(self, org_id: str, number: int) -> None:
        pair = BoxKeyPair.from_seed(seed(f"epoch/{org_id}/{number}"))
        self.epochs[(org_id, number)] = pair
        self.add(sign_record(Epoch(org_id, number, pair.public, self.now),
                             self.identity[org_id]))

    def remove(self, staff_id: str) -> None:
        org_id = staff_id.split("/")[0]
        self.add(sign_record(StaffRemove(staff_id, self.now), self.identity[org_id]))

    def log_texts(self) -> list[str]:
        return [r.decode("utf-8") for r in self.records]

    def position(self) -> LogPosition:
        """The head of the log written so far, as a signer states it (SPEC 9.1, 10)."""
        log = KeyLog(self.network.public)
        for record in self.records:
            log.apply(record, self.now)
        return LogPosition.of(log)


def base_net() -> Net:
    """org-a (alice, carol), org-b (bob), org-c (dan), each with epoch 1."""
    net = Net()
    for org_id in ("org-a", "org-b", "org-c"):
        net.admit(org_id)
        net.epoch(org_id, 1)
    net.staff("org-a/alice", "admin")
    net.staff("org-a/carol")
    net.staff("org-b/bob", "admin")
    net.staff("org-c/dan")
    net.now += 3600
    return net


# --- keys and encoding ------------------------------------------------------------------


def keys_vectors() -> dict[str, Vector]:
    entries = []
    for name in ("network", "identity/org-a", "signing/org-a/alice"):
        pair = SigningKeyPair.from_seed(seed(name))
        entries.append({"kind": "ed25519", "seed": b64(seed(name)), "public": b64(pair.public),
                        "fingerprint": pair.fingerprint,
                        "formatted": format_fingerprint(pair.fingerprint)})
    for name in ("box/org-a/alice", "epoch/org-a/1"):
        box = BoxKeyPair.from_seed(seed(name))
        entries.append({"kind": "x25519", "secret": b64(box.secret), "public": b64(box.public),
                        "fingerprint": fingerprint(box.public),
                        "formatted": format_fingerprint(fingerprint(box.public))})
    a = SigningKeyPair.from_seed(seed("identity/org-a")).public
    b = SigningKeyPair.from_seed(seed("identity/org-b")).public
    return {
        "keys_fingerprint": vector(
            "success",
            "Ed25519 key pairs from 32-byte seeds (RFC 8032) and X25519 key pairs whose secret "
            "is the seed itself; fingerprint = base32(BLAKE2b-160(public key)), shown in "
            "groups of four.", keys=entries),
        "keys_safety_code": vector(
            "success", "Safety code of two org identity keys; the same in either order.",
            identity_a=b64(a), identity_b=b64(b), code=safety_code(a, b)),
    }


def encoding_vectors() -> dict[str, Vector]:
    valid = [
        {"v": 1, "a": [1, -2, 9007199254740991], "b": {"c": None, "d": True, "e": False}},
        {"z": "Grüße, “quoted” \u2028 and \u00e9", "a": "ctl \u0001\b\f\n\r\t \" \\ /"},
        {"": "", "\u00e9": "keys sort by code point", "Z": 0, "a": "\U0001F600"},
    ]
    out: dict[str, Vector] = {
        "encoding_canonical": vector(
            "success",
            "Canonical JSON texts a reader accepts; each parses to `value` and re-encodes to "
            "exactly `input`.",
            cases=[{"input": b64(canonical_json(v)), "value": v} for v in valid]),
    }
    rejects = [
        ("whitespace", "non_canonical", b'{"a": 1}', "insignificant whitespace"),
        ("unsorted_keys", "non_canonical", b'{"b":1,"a":2}', "object keys not sorted"),
        ("duplicate_key", "non_canonical", b'{"a":1,"a":1}', "a key appears twice"),
        ("escaped_non_ascii", "non_canonical", b'{"a":"\\u00e9"}',
         "a character escaped that canonical form writes as UTF-8"),
        ("uppercase_escape", "non_canonical", b'{"a":"\\u001F"}',
         "control characters are escaped with lower-case hex"),
        ("escaped_slash", "non_canonical", b'{"a":"\\/"}', "a needless escape"),
        ("not_nfc", "non_canonical", '{"a":"e\u0301"}'.encode(), "a string not in Unicode NFC"),
        ("negative_zero", "non_canonical", b'{"a":-0}', "-0 is written 0"),
        ("float", "bad_field", b'{"a":1.0}', "floats are not allowed"),
        ("exponent", "bad_field", b'{"a":1e3}', "numbers with exponents are floats"),
        ("integer_too_large", "bad_field", b'{"a":9007199254740992}',
         "integers must lie within +-(2^53 - 1)"),
        ("lone_surrogate", "bad_field", b'{"a":"\\ud800"}', "a lone UTF-16 surrogate escape"),
        ("invalid_utf8", "malformed_json", b'{"a":"\xc3"}', "bytes that are not UTF-8"),
        ("byte_order_mark", "malformed_json", b'\xef\xbb\xbf{"a":1}', "a UTF-8 byte order mark"),
        ("trailing_data", "malformed_json", b'{"a":1}{}', "a second value after the first"),
        ("nan", "malformed_json", b'{"a":NaN}', "NaN is not JSON"),
        ("not_an_object", "bad_field", b"[1,2]", "a signed body is always an object"),
        ("too_deep", "malformed_json", b'{"a":' + b"[" * 32 + b"]" * 32 + b"}",
         "33 levels of nesting (an object holding 32 nested arrays), one more than MAX_DEPTH"),
        ("deepest", "bad_field", b"[" * 32 + b"]" * 32,
         "32 levels of nesting are allowed (this fails only for not being an object)"),
    ]
    for case, code, data, what in rejects:
        out[f"encoding_{case}"] = vector(code, f"Canonical JSON reader: {what}.", input=b64(data))
    out["encoding_base64"] = vector(
        "success", "base64url without padding (RFC 4648 section 5): bytes and their text.",
        cases=[{"bytes": b64(bytes(range(n))), "text": b64encode(bytes(range(n)))}
               for n in range(0, 7)])
    for case, text, what in [
        ("padded", "QQ==", "padding characters are not allowed"),
        ("standard_alphabet", "+/8", "the standard alphabet is not base64url"),
        ("trailing_bits", "QR", "unused low bits of the last character must be zero"),
        ("length", "QUFBQ", "a length of 1 mod 4 cannot be base64"),
    ]:
        out[f"encoding_base64_{case}"] = vector("bad_field", f"base64url reader: {what}.",
                                                text=text)
    parts = [b"", b"\x00", b"abc"]
    out["encoding_signing_input"] = vector(
        "success",
        "signing_input(label, parts...) = label || for each part: u64be(len(part)) || part.",
        label=labels.MESSAGE.decode(), parts=[b64(p) for p in parts],
        output=b64(signing_input(labels.MESSAGE, *parts)))
    out["encoding_labels"] = vector(
        "success", "Every domain-separation label of protocol version 1.",
        labels={name: value.decode() for name, value in sorted(vars(labels).items())
                if isinstance(value, bytes)})
    return out


def padding_vectors() -> dict[str, Vector]:
    lengths = [0, 1, 2, 3, 4, 5, 9, 17, 100, 1000, 1025, 4096, 65544, 1048584, 4294967304]
    frames = [b"", b"x", b"kok" * 40]
    return {
        "padding_padme": vector("success", "Padmé sizes: [L, padme(L)].",
                                sizes=[[n, padme(n)] for n in lengths]),
        "padding_message_frame": vector(
            "success", "Message framing before sealing: u32be(len) || data || zeros to "
            "padme(4 + len).",
            cases=[{"data": b64(d), "padded": b64(pad_message(d))} for d in frames]),
        "padding_nonzero": vector("bad_padding", "A frame whose padding is not all zero.",
                                  padded=b64(b"\x00\x00\x00\x01x\x00\x01")),
        "padding_wrong_length": vector(
            "bad_padding", "A frame whose total length is not padme(4 + declared length).",
            padded=b64(pad_message(b"kok" * 40) + b"\x00")),
    }


def sealedbox_vectors() -> dict[str, Vector]:
    recipient = BoxKeyPair.from_seed(seed("sealedbox/recipient"))
    ephemeral = seed("sealedbox/ephemeral")
    plaintext = b"kok sealed box"
    sealed = seal(recipient.public, plaintext, ephemeral)
    damaged = bytearray(sealed)
    damaged[40] ^= 1
    return {
        "sealedbox_seeded": vector(
            "success",
            "crypto_box_seal with the ephemeral key pair made by crypto_box_seed_keypair("
            "ephemeral_seed); crypto_box_seal_open opens it.",
            recipient_secret=b64(recipient.secret), recipient_public=b64(recipient.public),
            ephemeral_seed=b64(ephemeral),
            ephemeral_public=b64(sodium.crypto_box_seed_keypair(ephemeral)[0]),
            plaintext=b64(plaintext), sealed=b64(sealed)),
        "sealedbox_tampered": vector(
            "decrypt_failed", "A sealed box with one bit flipped.",
            recipient_secret=b64(recipient.secret), recipient_public=b64(recipient.public),
            sealed=b64(bytes(damaged))),
    }


# --- records and the key log ------------------------------------------------------------


def record_vectors() -> dict[str, Vector]:
    out: dict[str, Vector] = {}

    def case(name: str, expect: str, description: str, net: Net, record: bytes) -> None:
        out[f"record_{name}"] = vector(
            expect, description, network_key=b64(net.network.public), now=net.now,
            log=net.log_texts(), record=record.decode("utf-8"))

    net = base_net()
    now = net.now
    a, b = net.identity["org-a"], net.identity["org-b"]
    alice, carol = net.signing["org-a/alice"], net.signing["org-a/carol"]
    new_org = SigningKeyPair.from_seed(seed("identity/org-d"))
    new_id = SigningKeyPair.from_seed(seed("identity/org-a/2"))

    def item(record: Any, *signers: SigningKeyPair) -> bytes:
        return sign_record(record, *signers).to_bytes()

    def raw_record(obj: dict[str, Any], signer: SigningKeyPair) -> bytes:
        data = canonical_json(obj)
        return SignedItem(data, (Signature(signer.fingerprint, signer.sign(labels.RECORD,
                                                                           data)),)).to_bytes()

    def unchecked(record: Any, signer: SigningKeyPair) -> bytes:  # what sign_record refuses
        body = record_body(record)
        return SignedItem(body, (Signature(signer.fingerprint, signer.sign(labels.RECORD,
                                                                           body)),)).to_bytes()

    case("org_admit_valid", "success", "The network office admits org-d.", net,
         item(OrgAdmit("org-d", "Beratungsstelle D", new_org.public, now), net.network))
    case("org_admit_exists", "log_org_exists", "org-a is admitted already.", net,
         item(OrgAdmit("org-a", "Again", new_org.public, now), net.network))
    case("org_admit_wrong_signer", "wrong_signer", "An admission signed by an org, not the "
         "network office.", net, item(OrgAdmit("org-d", "D", new_org.public, now), a))
    case("org_revoke_valid", "success", "The network office revokes org-c.", net,
         item(OrgRevoke("org-c", "left the network", now), net.network))
    case("org_revoke_unknown", "log_org_unknown", "Revoking an org never admitted.", net,
         item(OrgRevoke("org-x", "?", now), net.network))
    rekey = OrgRekey("org-a", new_id.public, now)
    case("org_rekey_valid", "success", "org-a replaces its identity key: signed by the old "
         "key and countersigned by the network office.", net,
         countersign(sign_record(rekey, a), net.network).to_bytes())
    case("org_rekey_one_signature", "wrong_signer", "A rekey without the network office's "
         "countersignature.", net, item(rekey, a))
    reversed_rekey = sign_record(rekey, a)
    reversed_rekey = SignedItem(reversed_rekey.body, (
        Signature(net.network.fingerprint, net.network.sign(labels.RECORD, reversed_rekey.body)),
        *reversed_rekey.sigs))
    case("org_rekey_signatures_reversed", "wrong_signer", "A rekey with both signatures, the "
         "network office's first: the order is fixed (old identity key, then network key) so "
         "that one record has one encoding and one chain hash.", net, reversed_rekey.to_bytes())
    case("org_rekey_key_reused", "log_key_reused", "A rekey to the key the org already has.",
         net, countersign(sign_record(OrgRekey("org-a", a.public, now), a),
                          net.network).to_bytes())
    erin = SigningKeyPair.from_seed(seed("signing/org-a/erin"))
    add_erin = StaffAdd("org-a/erin", erin.public, seed("box/org-a/erin"), "staff", now)
    case("staff_add_valid", "success", "org-a enrols erin.", net, item(add_erin, a))
    case("staff_add_wrong_signer", "wrong_signer", "org-b's identity key enrols staff of "
         "org-a.", net, item(add_erin, b))
    low_order = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
    case("staff_add_low_order_box_key", "bad_field", "erin's box key is a point of order 8: "
         "no grant could be sealed to it.", net,
         unchecked(StaffAdd("org-a/erin", erin.public, low_order, "staff", now), a))
    case("staff_add_exists", "log_staff_exists", "The staff id org-a/carol is taken.", net,
         item(StaffAdd("org-a/carol", erin.public, seed("box/x"), "staff", now), a))
    case("staff_add_key_enrolled", "log_staff_exists", "carol's signing key enrolled again "
         "under another id.", net,
         item(StaffAdd("org-a/erin", carol.public, seed("box/x"), "staff", now), a))
    case("staff_remove_valid", "success", "org-a removes carol.", net,
         item(StaffRemove("org-a/carol", now), a))
    case("staff_remove_self_valid", "success", "carol removes herself (a lost device).", net,
         item(StaffRemove("org-a/carol", now), carol))
    case("staff_remove_by_colleague", "wrong_signer", "alice may not remove carol.", net,
         item(StaffRemove("org-a/carol", now), alice))
    case("staff_remove_unknown", "log_staff_unknown", "Removing a staff id never enrolled.",
         net, item(StaffRemove("org-a/nobody", now), a))
    case("epoch_valid", "success", "org-a publishes epoch 2.", net,
         item(Epoch("org-a", 2, seed("epoch-key/org-a/2"), now), a))
    case("epoch_not_increasing", "log_epoch_order", "org-a publishes epoch 1 again.", net,
         item(Epoch("org-a", 1, seed("epoch-key/org-a/1b"), now), a))
    case("epoch_low_order_key", "bad_field", "Epoch 2 whose public key is zero (a low-order "
         "point): no message could be sealed to it.", net,
         unchecked(Epoch("org-a", 2, bytes(32), now), a))
    case("epoch_key_reused", "log_key_reused", "Epoch 2 with the key of epoch 1.", net,
         item(Epoch("org-a", 2, net.epochs[("org-a", 1)].public, now), a))
    case("future", "log_timestamp", "A record dated more than MAX_SKEW after `now`.", net,
         item(Epoch("org-a", 2, seed("epoch-key/org-a/2"), now + MAX_SKEW + 1), a))
    case("before_previous", "log_timestamp", "A record dated more than MAX_SKEW before the "
         "previous entry.", net,
         item(Epoch("org-a", 2, seed("epoch-key/org-a/2"), now - 3600 - MAX_SKEW - 1), a))
    body = record_body(Epoch("org-a", 2, seed("epoch-key/org-a/2"), now))
    signed = sign_record(Epoch("org-a", 3, seed("epoch-key/org-a/2"), now), a)
    case("bad_signature", "bad_signature", "The signature of another body (epoch 3) on this "
         "body (epoch 2).", net, SignedItem(body, signed.sigs).to_bytes())
    verify_b = OrgVerify("org-a", "org-b", b.public, now)
    case("org_verify_valid", "success", "org-a's identity key states that org-a verified "
         "org-b's current identity key (SPEC 6.7).", net, item(verify_b, a))
    case("org_verify_by_staff", "wrong_signer", "The same statement signed by alice's device "
         "key, not the org identity key: a member cannot speak for the org.", net,
         item(verify_b, alice))
    case("org_verify_not_current_key", "bad_field", "org-a vouches for a key that is not "
         "org-b's current identity key.", net,
         item(OrgVerify("org-a", "org-b", new_org.public, now), a))
    settings_a = OrgSettings("org-a", False, 14, now)
    case("org_settings_valid", "success", "org-a's identity key sets its staff clients to "
         "send no read reports and keep read messages 14 days (SPEC 6.8).", net,
         item(settings_a, a))
    case("org_settings_by_staff", "wrong_signer", "The same settings signed by alice's device "
         "key, not the org identity key: a member cannot set them for colleagues.", net,
         item(settings_a, alice))
    case("org_settings_by_other_org", "wrong_signer", "org-a's settings signed by org-b's "
         "identity key.", net, item(settings_a, b))
    settings_obj = {"v": 1, "type": "org_settings", "created": now, "org_id": "org-a",
                    "read_reports": True, "retention_days": 30}
    case("org_settings_retention_zero", "bad_field", "retention_days 0: below the smallest "
         "(1 day).", net, raw_record({**settings_obj, "retention_days": 0}, a))
    case("org_settings_read_reports_number", "bad_field", "read_reports given as 1, not as "
         "the JSON boolean true.", net, raw_record({**settings_obj, "read_reports": 1}, a))
    sig = a.sign(labels.GRANT, body)
    case("wrong_label", "bad_signature", "A signature under the grant label, not the record "
         "label.", net, SignedItem(body, (Signature(a.fingerprint, sig),)).to_bytes())

    def raw(obj: dict[str, Any], signer: SigningKeyPair, text: bytes | None = None) -> bytes:
        data = canonical_json(obj) if text is None else text
        return SignedItem(data, (Signature(signer.fingerprint, signer.sign(labels.RECORD,
                                                                           data)),)).to_bytes()

    epoch_obj = {"v": 1, "type": "epoch", "created": now, "org_id": "org-a", "epoch": 2,
                 "public_key": b64(seed("epoch-key/org-a/2"))}
    case("unknown_field", "unknown_field", "An epoch record with a field v1 does not define.",
         net, raw({**epoch_obj, "note": "x"}, a))
    case("unknown_version", "unknown_version", "A record of version 2.", net,
         raw({**epoch_obj, "v": 2}, a))
    case("missing_field", "missing_field", "An epoch record without public_key.", net,
         raw({k: v for k, v in epoch_obj.items() if k != "public_key"}, a))
    case("unknown_type", "bad_field", "A record of a type version 1 does not define "
         "(`staff_move`), with fields of its own: the type is what is wrong, not its fields.",
         net, raw({"v": 1, "type": "staff_move", "created": now, "staff_id": "org-a/alice",
                   "to_org": "org-b"}, a))
    case("unknown_and_missing_field", "unknown_field", "An epoch record with a field v1 does "
         "not define and without public_key: unknown fields are reported before missing "
         "ones (SPEC section 1).", net,
         raw({**{k: v for k, v in epoch_obj.items() if k != "public_key"}, "note": "x"}, a))
    case("missing_and_bad_field", "missing_field", "An epoch record without public_key whose "
         "org_id is not valid: missing fields are reported before bad values.", net,
         raw({**{k: v for k, v in epoch_obj.items() if k != "public_key"},
              "org_id": "Org-A"}, a))
    case("bad_field", "bad_field", "An epoch record whose org_id has upper-case letters.",
         net, raw({**epoch_obj, "org_id": "Org-A"}, a))
    case("non_canonical_body", "non_canonical", "A correctly signed body with a space in it.",
         net, raw(epoch_obj, a, canonical_json(epoch_obj).replace(b",", b", ", 1)))
    good = sign_record(Epoch("org-a", 2, seed("epoch-key/org-a/2"), now), a).to_bytes()
    case("non_canonical_item", "non_canonical", "A valid record whose signed-item wrapper has "
         "a space in it.", net, good.replace(b'"sigs":', b'"sigs": '))
    readmit = base_net()
    readmit.now += 60
    readmit.add(sign_record(OrgRevoke("org-c", "keys stolen", readmit.now), readmit.network))
    case("org_admit_again_old_identity", "log_key_reused", "org-c, revoked, is admitted again "
         "with its old identity key (it may be stolen).", readmit,
         item(OrgAdmit("org-c", "C", readmit.identity["org-c"].public, readmit.now),
              readmit.network))
    case("org_admit_again_valid", "success", "org-c, revoked, is admitted again with a new "
         "identity key.", readmit,
         item(OrgAdmit("org-c", "C", new_org.public, readmit.now), readmit.network))
    return out


def keylog_vectors() -> dict[str, Vector]:
    net = base_net()
    net.epoch("org-a", 2)
    net.now += 600
    net.remove("org-a/carol")
    net.epoch("org-a", 3)
    net.now += 60
    entries, previous = [], bytes(32)
    for data in net.records:
        previous = hashlib.blake2b(labels.LOG + previous + data, digest_size=32).digest()
        entries.append({"record": data.decode("utf-8"), "hash": b64(previous)})
    head = sign_head(net.log_key, len(entries), previous, net.now)
    carol_added = T0
    removed = net.now - 60
    questions = {
        "current_epoch": {"org-a": 3, "org-b": 1, "org-c": 1},
        "staff_valid_at": [
            {"staff_id": "org-a/carol", "time": carol_added - 1, "valid": False},
            {"staff_id": "org-a/carol", "time": carol_added, "valid": True},
            {"staff_id": "org-a/carol", "time": removed - 1, "valid": True},
            {"staff_id": "org-a/carol", "time": removed, "valid": False},
            {"staff_id": "org-a/alice", "time": net.now, "valid": True},
            {"staff_id": "org-a/nobody", "time": net.now, "valid": False},
        ],
    }
    forged = dict(head.to_json(), hash=b64(bytes(32)))
    other = base_net()
    other.admit("org-d")
    return {
        "keylog_chain": vector(
            "success",
            "A whole key log: each entry's chain hash h_i = BLAKE2b-256(\"kok/v1/log\" || "
            "h_(i-1) || record), h_0 = 32 zero bytes; the relay's signed head; and answers a "
            "client derives from the log.",
            network_key=b64(net.network.public), log_key=b64(net.log_key.public), now=net.now,
            entries=entries, head=head.to_json(), questions=questions),
        "keylog_head_tampered": vector(
            "log_head_invalid", "A signed head whose hash was changed after signing.",
            log_key=b64(net.log_key.public), head=forged),
        "keylog_rewritten": vector(
            "log_rewritten",
            "The client saw `seen` (size and hash) before; the relay now serves `log`, whose "
            "entry at that size hashes differently.",
            network_key=b64(net.network.public), now=net.now,
            seen={"size": len(entries), "hash": b64(previous)},
            log=other.log_texts()),
    }


# --- messages and grants ------------------------------------------------------------------


def message_vectors() -> dict[str, Vector]:
    net = base_net()
    sent = net.now
    alice, carol = net.signing["org-a/alice"], net.signing["org-a/carol"]
    counter = iter(range(1000))

    def payload(staff_id: str = "org-a/alice", to: tuple[str, ...] = ("org-b",),
                when: int = sent, text: str = "", **extra: Any) -> MessagePayload:
        n = next(counter)
        return MessagePayload(
            id=seed(f"message-id/{n}")[:16], from_org=staff_id.split("/")[0],
            from_staff=staff_id, to=to, sent=when, subject="Anfrage zu einem Fall",
            body="Guten Tag, wir bitten um Rückruf wegen eines Aufenthaltstitels." + text,
            thread=seed(f"thread/{n}")[:16], expires=when + 7 * 86400,
            **({"log": net.position()} | extra))

    out: dict[str, Vector] = {}

    def case(name: str, expect: str, description: str, sealed: bytes, *, to_org: str = "org-b",
             epoch: int = 1, secret_of: tuple[str, int] | None = None, at: Net | None = None,
             now: int | None = None, opened: MessagePayload | None = None,
             received: int | None = None) -> None:
        at = at or net
        fields: dict[str, Any] = dict(
            network_key=b64(at.network.public), now=at.now if now is None else now,
            log=at.log_texts(), to_org=to_org, epoch=epoch,
            epoch_secret=b64(at.epochs[secret_of or (to_org, epoch)].secret),
            sealed=b64(sealed))
        if received is not None:
            fields["received"] = received
        if opened is not None:
            fields["payload"] = opened.to_bytes().decode("utf-8")
            fields["from_staff"] = opened.from_staff
        out[f"message_{name}"] = vector(expect, description, **fields)

    def sealed_to(p: MessagePayload, signer: SigningKeyPair, to_org: str = "org-b",
                  epoch: int = 1, at: Net | None = None) -> bytes:
        at = at or net
        return seal_message(p, signer, to_org, epoch, at.epochs[(to_org, epoch)].public,
                            seed(f"ephemeral/{next(counter)}"))

    def crafted(body: bytes, signer: SigningKeyPair, *, signed_for: tuple[str, int] =
                ("org-b", 1), seal_to: tuple[str, int] = ("org-b", 1),
                padded: bytes | None = None) -> bytes:
        sig = signer.sign(labels.MESSAGE, *message_signing_parts(body, *signed_for))
        content = message_content(signer.public, sig, body)
        return seal(net.epochs[seal_to].public, padded or pad_message(content),
                    seed(f"ephemeral/{next(counter)}"))

    p = payload()
    case("valid", "success", "alice (org-a) writes to org-b; org-b opens it with its epoch-1 "
         "secret.", sealed_to(p, alice), opened=p)
    attachment = Attachment(drop=seed("drop")[:16], key=seed("file-key"), size=12345,
                            name="Bescheid.pdf", type="application/pdf", hash=seed("ct-hash"))
    p2 = payload(to=("org-b", "org-c"), attachments=(attachment,),
                 reply_to=seed("parent")[:16])
    case("two_recipients_valid", "success", "A message to org-b and org-c with an "
         "attachment, as org-c receives it.", sealed_to(p2, alice, "org-c"), to_org="org-c",
         opened=p2)
    sealed = bytearray(sealed_to(payload(), alice))
    sealed[len(sealed) // 2] ^= 0x01
    case("tampered", "decrypt_failed", "One bit of the sealed bytes flipped.", bytes(sealed))
    case("swapped_recipient", "decrypt_failed", "An envelope for org-b delivered to org-c.",
         sealed_to(payload(to=("org-b", "org-c")), alice), to_org="org-c")
    net2 = base_net()
    net2.epoch("org-b", 2)
    case("swapped_epoch", "decrypt_failed", "Sealed to org-b epoch 2, labelled epoch 1.",
         sealed_to(payload(), alice, "org-b", 2, at=net2), epoch=1, at=net2)
    case("unknown_epoch", "wrong_recipient", "Labelled with an epoch org-b never published.",
         sealed_to(payload(), alice), epoch=5, secret_of=("org-b", 1))
    fwd = payload(to=("org-b", "org-c"))
    body = fwd.to_bytes()
    sig = alice.sign(labels.MESSAGE, *message_signing_parts(body, "org-b", 1))
    content = message_content(alice.public, sig, body)
    case("forwarded", "wrong_recipient", "org-b re-seals alice's signed message to org-c: the "
         "signature names org-b and epoch 1.",
         seal(net.epochs[("org-c", 1)].public, pad_message(content), seed("ephemeral/fwd")),
         to_org="org-c")
    case("wrong_signer", "wrong_signer", "A payload naming alice, signed by carol.",
         crafted(payload().to_bytes(), carol))
    other = payload().to_bytes()
    target = payload().to_bytes()
    sig = alice.sign(labels.MESSAGE, *message_signing_parts(other, "org-b", 1))
    content = message_content(alice.public, sig, target)
    case("bad_signature", "bad_signature", "alice's signature of another payload.",
         seal(net.epochs[("org-b", 1)].public, pad_message(content), seed("ephemeral/bad")))
    mallory = SigningKeyPair.from_seed(seed("signing/org-a/mallory"))
    case("signer_not_staff", "sender_invalid", "org-a/mallory was never enrolled.",
         sealed_to(payload("org-a/mallory"), mallory))
    net3 = base_net()
    net3.remove("org-a/carol")
    net3.epoch("org-a", 2)
    removal = net3.now
    net3.now += 600
    case("removed_signer", "sender_invalid", "carol was removed before she sent this.",
         sealed_to(payload("org-a/carol", when=net3.now), carol, at=net3), at=net3)
    case("removed_signer_backdated", "sender_invalid",
         "After her removal carol writes to her former org's new epoch 2 and dates the "
         "message just before her removal: she was not staff when that epoch was created.",
         sealed_to(payload("org-a/carol", ("org-a",), when=removal - 10), carol, "org-a", 2,
                   at=net3), to_org="org-a", epoch=2, at=net3)
    net4 = base_net()
    net4.now += 86400
    net4.epoch("org-b", 2)
    case("backdated", "bad_timestamp", "A message dated more than MAX_SKEW before the epoch "
         "it is sealed to was created.",
         sealed_to(payload(when=net4.now - MAX_SKEW - 1), alice, "org-b", 2, at=net4),
         epoch=2, at=net4)
    case("future", "bad_timestamp", "A message dated more than MAX_SKEW after `now`.",
         sealed_to(payload(when=sent + MAX_SKEW + 1), alice))
    p3 = payload()
    case("expired", "message_expired", "Opened more than MAX_SKEW after its `expires`: a late "
         "replay.", sealed_to(p3, alice), now=p3.expires + MAX_SKEW + 1)
    case("not_addressed", "wrong_recipient", "Signed and sealed for org-b, but `to` names only "
         "org-c.", crafted(payload(to=("org-c",)).to_bytes(), alice))
    case("short_content", "bad_field", "A frame whose content is only 84 bytes: a key id and "
         "a signature, but no payload.",
         seal(net.epochs[("org-b", 1)].public, pad_message(bytes(84)), seed("ephemeral/short")))
    base = payload().to_json()
    case("unknown_version", "unknown_version", "A payload of version 2.",
         crafted(canonical_json({**base, "v": 2}), alice))
    case("unknown_field", "unknown_field", "A payload with a field v1 does not define.",
         crafted(canonical_json({**base, "cc": ["org-c"]}), alice))
    case("non_canonical", "non_canonical", "A correctly signed payload with a space in it.",
         crafted(canonical_json(base).replace(b",", b", ", 1), alice))
    frame, text = bytearray(), ""
    while len(frame) == 0 or frame[-1] != 0:  # a payload whose frame has padding to spoil
        text += "."
        good = payload(text=text).to_bytes()
        sig = alice.sign(labels.MESSAGE, *message_signing_parts(good, "org-b", 1))
        frame = bytearray(pad_message(message_content(alice.public, sig, good)))
    frame[-1] = 0x01
    case("bad_padding", "bad_padding", "A frame inside the box whose padding is not zero.",
         crafted(good, alice, padded=bytes(frame)))
    net5 = base_net()
    revoked_sent = payload(when=net5.now)
    net5.now += 60
    net5.add(sign_record(OrgRevoke("org-a", "left the network", net5.now), net5.network))
    net5.now += 60
    case("revoked_sender", "sender_invalid", "alice wrote to org-b while org-a was a member; "
         "org-b opens it after org-a was revoked: a revoked org is no longer believed.",
         sealed_to(revoked_sent, alice, at=net5), at=net5)
    # carol, removed, dates a message to org-b (whose epoch predates her removal) before
    # her removal and posts it through a colleague's session: the relay's receipt time
    # shows it arrived after the removal
    early = payload("org-a/carol", when=removal - 10)
    case("removed_signer_received_after", "sender_invalid",
         "carol, removed, dates a message to org-b before her removal; the relay received "
         "it more than RECEIPT_MARGIN after the removal.",
         sealed_to(early, carol, at=net3), at=net3, received=removal + RECEIPT_MARGIN)
    early = payload("org-a/carol", when=removal - 10)
    case("removed_signer_received_within_margin_valid", "success",
         "carol's message dated before her removal, received by the relay within "
         "RECEIPT_MARGIN of it (clocks differ): accepted.",
         sealed_to(early, carol, at=net3), at=net3, received=removal + RECEIPT_MARGIN - 1,
         opened=early)
    # org-a is re-admitted (with a new identity key) after its revocation: what its old
    # keys signed for a time before the revocation is not believed again
    net6 = base_net()
    readmit_sent = payload(when=net6.now)
    net6.now += 60
    net6.add(sign_record(OrgRevoke("org-a", "keys stolen", net6.now), net6.network))
    net6.now += 60
    net6.add(sign_record(OrgAdmit("org-a", "Beratungsstelle A",
                                  SigningKeyPair.from_seed(seed("identity/org-a/readmitted"))
                                  .public, net6.now), net6.network))
    case("readmitted_sender_before_revocation", "sender_invalid",
         "alice's message dated before org-a's revocation, opened after org-a was "
         "re-admitted with a new identity key: re-admission does not restore old keys.",
         sealed_to(readmit_sent, alice, at=net6), at=net6)
    withdrawn = payload()
    notice = retraction_notice(withdrawn.id, id=seed("message-id/notice")[:16],
                               from_staff="org-a/alice", to=("org-b",), sent=sent + 60,
                               expires=withdrawn.expires, thread=withdrawn.thread,
                               log=net.position())
    case("retraction_valid", "success", "alice withdraws her message: a retraction notice "
         "(SPEC 9.4) naming its id, with no subject, body or attachments.",
         sealed_to(notice, alice), opened=notice, now=sent + 60)
    case("retraction_with_body", "bad_field", "A retraction notice, signed by alice, that "
         "still carries a body: a notice carries nothing but the id it withdraws.",
         crafted(canonical_json({**notice.to_json(), "body": "noch da"}), alice),
         now=sent + 60)
    return out


def mailbox_vectors() -> dict[str, Vector]:
    """Envelopes opened in order by one reader, which remembers what it accepted."""
    net = base_net()
    alice, dan = net.signing["org-a/alice"], net.signing["org-c/dan"]
    carol = net.signing["org-a/carol"]
    shared_id = seed("mailbox/shared-id")[:16]

    def payload(staff_id: str, to: tuple[str, ...], n: int) -> MessagePayload:
        return MessagePayload(
            id=shared_id, from_org=staff_id.split("/")[0], from_staff=staff_id, to=to,
            sent=net.now, subject="Anfrage", body=f"Nachricht {n}",
            thread=seed(f"mailbox/thread/{n}")[:16], expires=net.now + 86400,
            log=net.position())

    def envelope(p: MessagePayload, signer: SigningKeyPair, n: int) -> dict[str, Any]:
        sealed = seal_message(p, signer, "org-b", 1, net.epochs[("org-b", 1)].public,
                              seed(f"mailbox/ephemeral/{n}"))
        return {"sealed": b64(sealed)}

    def case(expect: str, description: str, envelopes: list[dict[str, Any]],
             **extra: Any) -> Vector:
        return vector(expect, description, network_key=b64(net.network.public), now=net.now,
                      log=net.log_texts(), to_org="org-b", epoch=1,
                      epoch_secret=b64(net.epochs[("org-b", 1)].secret), envelopes=envelopes,
                      **extra)

    def notice(staff_id: str, n: int) -> MessagePayload:
        return retraction_notice(shared_id, id=seed(f"mailbox/notice/{n}")[:16],
                                 from_staff=staff_id, to=("org-b",), sent=net.now,
                                 expires=net.now + 86400, thread=seed("mailbox/thread/1")[:16],
                                 log=net.position())

    genuine = payload("org-a/alice", ("org-b", "org-c"), 1)
    return {
        "mailbox_same_sender_same_id": case(
            "replayed", "org-b opens alice's message, then the same message in a second "
            "envelope (sealed again): the second has the same sender and id.",
            [envelope(genuine, alice, 1), envelope(genuine, alice, 2)]),
        "mailbox_other_sender_same_id": case(
            "success", "org-c, a co-recipient, learned the id of alice's message and sends "
            "org-b its own message under that id first; alice's genuine message, opened "
            "next, has another sender and MUST be accepted.",
            [envelope(payload("org-c/dan", ("org-b",), 3), dan, 3), envelope(genuine, alice, 4)]),
        "mailbox_retraction_valid": case(
            "success", "org-b opens alice's message, then alice's retraction notice naming "
            "it: the message is withdrawn (`withdrawn` lists the (from_staff, id) pairs a "
            "reader holds withdrawn at the end).",
            [envelope(genuine, alice, 5), envelope(notice("org-a/alice", 6), alice, 6)],
            withdrawn=[["org-a/alice", b64(shared_id)]]),
        "mailbox_retraction_before_message_valid": case(
            "success", "alice's retraction notice arrives before her message: kept, so the "
            "message arrives withdrawn.",
            [envelope(notice("org-a/alice", 7), alice, 7), envelope(genuine, alice, 8)],
            withdrawn=[["org-a/alice", b64(shared_id)]]),
        "mailbox_retraction_by_colleague": case(
            "wrong_signer", "carol, alice's colleague in org-a, sends a retraction notice "
            "naming alice's message: only its signer's own message can be withdrawn.",
            [envelope(genuine, alice, 9), envelope(notice("org-a/carol", 10), carol, 10)]),
    }


def grant_vectors() -> dict[str, Vector]:
    net = base_net()
    net.epoch("org-a", 2)
    a = net.identity["org-a"]
    carol_box = net.box["org-a/carol"]
    secret = net.epochs[("org-a", 1)].secret

    def case(name: str, expect: str, description: str, sealed: bytes) -> Vector:
        return vector(expect, description, network_key=b64(net.network.public), now=net.now,
                      log=net.log_texts(), staff_id="org-a/carol",
                      box_secret=b64(carol_box.secret), grant=b64(sealed))

    def forged(body: dict[str, Any], signer: SigningKeyPair = a) -> bytes:
        data = canonical_json(body)
        item = SignedItem(data, (Signature(signer.fingerprint, signer.sign(labels.GRANT,
                                                                           data)),))
        sealed = seal(carol_box.public, item.to_bytes(), seed("grant-ephemeral/forged"))
        return sealed + signer.sign(labels.GRANT_UPLOAD, *grant_upload_parts(
            "org-a", 1, "org-a/carol", carol_device, carol_box.public, sealed))

    carol_device = net.signing["org-a/carol"].fingerprint  # her first device
    alice_device = net.signing["org-a/alice"].fingerprint
    position = net.position().to_json()
    rogue = seed("rogue-epoch-secret")
    body = {"v": 1, "org_id": "org-a", "epoch": 1, "staff_id": "org-a/carol",
            "public_key": b64(box_public_from_secret(rogue)), "secret_key": b64(rogue),
            "log": position}
    valid = case("valid", "success", "org-a grants epoch 1 to carol; `epoch_secret` is what "
                 "she obtains.", make_grant(a, "org-a", 1, secret, "org-a/carol",
                                            carol_box.public, seed("grant-ephemeral/1"),
                                            device_id=carol_device, log=net.position()))
    valid["epoch_secret"] = b64(secret)
    granted = make_grant(a, "org-a", 1, secret, "org-a/carol", carol_box.public,
                         seed("grant-ephemeral/2"), device_id=carol_device, log=net.position())
    alice = net.signing["org-a/alice"]  # an admin by role, without the identity key
    by_alice = granted[:-64] + alice.sign(labels.GRANT_UPLOAD, *grant_upload_parts(
        "org-a", 1, "org-a/carol", carol_device, carol_box.public, granted[:-64]))
    # sealed to carol's device, but the statement names alice's device and box key: filed
    # under alice's device, the relay refuses it (it names another device than the row)
    to_alice_device = granted[:-64] + a.sign(labels.GRANT_UPLOAD, *grant_upload_parts(
        "org-a", 1, "org-a/carol", alice_device, net.box["org-a/alice"].public,
        granted[:-64]))

    def upload(expect: str, description: str, grant: bytes, epoch: int = 1,
               device_id: str = carol_device) -> Vector:
        return vector(expect, description, network_key=b64(net.network.public), now=net.now,
                      log=net.log_texts(), org_id="org-a", epoch=epoch,
                      staff_id="org-a/carol", device_id=device_id, grant=b64(grant))

    return {
        "grantupload_valid": upload(
            "success", "What the relay checks before it stores a grant: the last 64 bytes "
            "sign (org_id, epoch, staff_id, device_id, box_key, sealed) under org-a's "
            "identity key.", granted),
        "grantupload_other_device": upload(
            "wrong_signer", "carol's grant uploaded for another device (alice's first "
            "device, filed under carol): the signature names the device and its box key, so "
            "the relay cannot move a grant to another device.", granted,
            device_id=alice_device),
        "grantupload_statement_for_other_device": upload(
            "wrong_signer", "The identity key signed the upload for alice's device and box "
            "key; filed as carol's device it does not verify.", to_alice_device),
        "grantupload_admin_without_identity_key": upload(
            "wrong_signer", "alice (admin role, no identity key) signs a grant for carol: the "
            "relay refuses to store it, so she cannot overwrite carol's grant.", by_alice),
        "grantupload_other_epoch": upload(
            "wrong_signer", "A grant signed for epoch 1, uploaded as one for epoch 2 (which "
            "org-a has): the signature names the epoch.", granted, epoch=2),
        "grant_valid": valid,
        "grant_key_mismatch": case("key_mismatch", "grant_key_mismatch",
                                   "A grant signed by org-a whose secret is not the epoch key "
                                   "in the log.", forged(body)),
        "grant_wrong_recipient": case("wrong_recipient", "grant_wrong_recipient",
                                      "A grant made out to alice, sealed to carol.",
                                      forged({**body, "staff_id": "org-a/alice"})),
        "grant_wrong_signer": case("wrong_signer", "wrong_signer",
                                   "A grant signed by org-b's identity key.",
                                   forged({**body, "public_key": b64(
                                       box_public_from_secret(secret)),
                                       "secret_key": b64(secret)}, net.identity["org-b"])),
        "grant_missing_log": case("missing_log", "missing_field",
                                  "A grant without the admin's log position.",
                                  forged({k: v for k, v in body.items() if k != "log"})),
    }


def device_vectors() -> dict[str, Vector]:
    """Devices and box keys (SPEC.md sections 6.6 and 20.6) as records, messages, grants."""
    out: dict[str, Vector] = {}
    net = base_net()
    a = net.identity["org-a"]
    alice, carol = net.signing["org-a/alice"], net.signing["org-a/carol"]
    laptop = SigningKeyPair.from_seed(seed("signing/org-a/carol/laptop"))
    laptop_box = BoxKeyPair.from_seed(seed("box/org-a/carol/laptop"))
    now = net.now

    def item(record: Any, *signers: SigningKeyPair) -> bytes:
        return sign_record(record, *signers).to_bytes()

    def record(name: str, expect: str, description: str, at: Net, data: bytes) -> None:
        out[f"record_{name}"] = vector(
            expect, description, network_key=b64(at.network.public), now=at.now,
            log=at.log_texts(), record=data.decode("utf-8"))

    add_laptop = DeviceAdd("org-a/carol", laptop.public, laptop_box.public, now)
    record("device_add_valid", "success", "carol links her laptop from her first device "
           "(the keys of her staff_add).", net, item(add_laptop, carol))
    record("device_add_by_org_valid", "success", "org-a's identity key adds a device for "
           "carol (an admin replacing lost devices).", net, item(add_laptop, a))
    record("device_add_by_colleague", "wrong_signer", "alice's device may not add a device "
           "for carol.", net, item(add_laptop, alice))
    record("device_add_key_enrolled", "log_staff_exists", "A new device whose signing key is "
           "alice's.", net,
           item(DeviceAdd("org-a/carol", alice.public, laptop_box.public, now), carol))
    record("device_add_box_key_reused", "log_key_reused", "A new device whose box key is "
           "carol's first box key.", net,
           item(DeviceAdd("org-a/carol", laptop.public, net.box["org-a/carol"].public, now),
                carol))
    low = canonical_json({"v": 1, "type": "device_add", "created": now,
                          "staff_id": "org-a/carol", "signing_key": b64(laptop.public),
                          "box_key": b64(bytes(32))})
    record("device_add_low_order", "bad_field", "A device whose box key is the all-zero "
           "point (low order: every secret agrees with it).", net,
           SignedItem(low, (Signature(carol.fingerprint, carol.sign(labels.RECORD, low)),))
           .to_bytes())
    record("device_remove_last", "log_device_last", "carol removes her only device (that is "
           "a staff_remove).", net,
           item(DeviceRemove("org-a/carol", carol.fingerprint, now), carol))
    record("device_remove_unknown", "log_device_unknown", "Removing a device carol never had.",
           net, item(DeviceRemove("org-a/carol", laptop.fingerprint, now), carol))

    two = base_net()  # carol with two devices
    two.add(sign_record(DeviceAdd("org-a/carol", laptop.public, laptop_box.public, two.now),
                        carol))
    two.now += 60
    now2 = two.now
    record("device_remove_valid", "success", "carol removes her first device from her "
           "laptop (the first one was lost).", two,
           item(DeviceRemove("org-a/carol", carol.fingerprint, now2), laptop))
    record("device_remove_self_valid", "success", "carol's laptop removes itself.", two,
           item(DeviceRemove("org-a/carol", laptop.fingerprint, now2), laptop))
    record("device_remove_by_org_valid", "success", "org-a removes carol's laptop.", two,
           item(DeviceRemove("org-a/carol", laptop.fingerprint, now2), a))
    record("device_remove_by_colleague", "wrong_signer", "alice's device may not remove "
           "carol's laptop.", two,
           item(DeviceRemove("org-a/carol", laptop.fingerprint, now2), alice))
    record("staff_remove_from_second_device_valid", "success", "carol removes herself from "
           "her laptop.", two, item(StaffRemove("org-a/carol", now2), laptop))
    new_box = BoxKeyPair.from_seed(seed("box/org-a/carol/laptop/2"))
    replace = BoxKey("org-a/carol", laptop.fingerprint, new_box.public, now2)
    record("box_key_valid", "success", "carol's laptop replaces its box key.", two,
           item(replace, laptop))
    record("box_key_by_other_device", "wrong_signer", "carol's first device replaces the "
           "laptop's box key: only the device itself may.", two, item(replace, carol))
    record("box_key_by_org", "wrong_signer", "org-a replaces the laptop's box key: only the "
           "device itself may.", two, item(replace, a))
    record("box_key_reused", "log_key_reused", "The laptop goes back to a box key that was in "
           "the log before (carol's first device's).", two,
           item(BoxKey("org-a/carol", laptop.fingerprint, two.box["org-a/carol"].public, now2),
                laptop))
    low_box = canonical_json({"v": 1, "type": "box_key", "created": now2,
                              "staff_id": "org-a/carol", "device": laptop.fingerprint,
                              "box_key": b64((1).to_bytes(32, "little"))})
    record("box_key_low_order", "bad_field", "A box key that is the point of order 4 (u = "
           "1).", two,
           SignedItem(low_box, (Signature(laptop.fingerprint,
                                          laptop.sign(labels.RECORD, low_box)),)).to_bytes())
    gone = base_net()  # carol's laptop added, then removed
    gone.add(sign_record(DeviceAdd("org-a/carol", laptop.public, laptop_box.public, gone.now),
                         carol))
    gone.now += 600
    gone.add(sign_record(DeviceRemove("org-a/carol", laptop.fingerprint, gone.now), carol))
    gone.now += 60
    record("box_key_removed_device", "log_device_removed", "A removed laptop replaces its box "
           "key.", gone,
           item(BoxKey("org-a/carol", laptop.fingerprint, new_box.public, gone.now), laptop))
    record("device_remove_removed", "log_device_removed", "Removing the laptop again.", gone,
           item(DeviceRemove("org-a/carol", laptop.fingerprint, gone.now), carol))
    record("device_add_removed_device", "wrong_signer", "The removed laptop adds another "
           "device for carol.", gone,
           item(DeviceAdd("org-a/carol", SigningKeyPair.from_seed(seed("signing/x")).public,
                          new_box.public, gone.now), laptop))

    # messages signed by a device
    def message(name: str, expect: str, description: str, at: Net, signer: SigningKeyPair,
                sent: int) -> None:
        p = MessagePayload(
            id=seed(f"message-id/device/{name}")[:16], from_org="org-a",
            from_staff="org-a/carol", to=("org-b",), sent=sent, subject="Rückfrage",
            body="Gesendet vom Laptop.", thread=seed(f"thread/device/{name}")[:16],
            expires=sent + 7 * 86400, log=at.position())
        sealed = seal_message(p, signer, "org-b", 1, at.epochs[("org-b", 1)].public,
                              seed(f"ephemeral/device/{name}"))
        fields: dict[str, Any] = dict(
            network_key=b64(at.network.public), now=at.now, log=at.log_texts(),
            to_org="org-b", epoch=1, epoch_secret=b64(at.epochs[("org-b", 1)].secret),
            sealed=b64(sealed))
        if expect == "success":
            fields["payload"] = p.to_bytes().decode("utf-8")
            fields["from_staff"] = "org-a/carol"
        out[f"message_{name}"] = vector(expect, description, **fields)

    message("second_device_valid", "success", "carol writes from her laptop, signed with the "
            "laptop's own key.", two, laptop, two.now)
    removed_at = gone.now - 60  # and added 600 seconds before that
    message("removed_device", "wrong_signer", "carol's removed laptop signs a message dated "
            "after its removal.", gone, laptop, gone.now)
    message("removed_device_before_removal_valid", "success", "A message the laptop signed "
            "while it was carol's device, dated before its removal.", gone, laptop,
            removed_at - 300)

    # grants per device, to the device's current box key
    rotated = base_net()
    rotated.add(sign_record(DeviceAdd("org-a/carol", laptop.public, laptop_box.public,
                                      rotated.now), carol))
    rotated.add(sign_record(BoxKey("org-a/carol", laptop.fingerprint, new_box.public,
                                   rotated.now), laptop))
    secret = rotated.epochs[("org-a", 1)].secret

    def grant(name: str, expect: str, description: str, box_secret: bytes,
              sealed: bytes) -> None:
        fields: dict[str, Any] = dict(
            network_key=b64(rotated.network.public), now=rotated.now,
            log=rotated.log_texts(), staff_id="org-a/carol", box_secret=b64(box_secret),
            grant=b64(sealed))
        if expect == "success":
            fields["epoch_secret"] = b64(secret)
        out[f"grant_{name}"] = vector(expect, description, **fields)

    grant("second_device", "success", "org-a grants epoch 1 to carol's laptop, sealed to the "
          "laptop's current (replaced) box key.", new_box.secret,
          make_grant(a, "org-a", 1, secret, "org-a/carol", new_box.public,
                     seed("grant-ephemeral/laptop"), device_id=laptop.fingerprint,
                     log=rotated.position()))
    grant("deleted_box_key", "decrypt_failed", "A recorded grant sealed to the laptop's first "
          "box key, tried with the key the laptop holds after replacing and deleting the "
          "first: it does not open.", new_box.secret,
          make_grant(a, "org-a", 1, secret, "org-a/carol", laptop_box.public,
                     seed("grant-ephemeral/laptop-old"), device_id=laptop.fingerprint,
                     log=rotated.position()))
    return out


def auth_vectors() -> dict[str, Vector]:
    key = SigningKeyPair.from_seed(seed("signing/org-a/alice"))
    nonce = seed("auth/nonce")
    origin = "https://relay.kok.example"
    signature = sign_auth(key, origin, nonce)
    common = dict(public_key=b64(key.public), nonce=b64(nonce), signature=b64(signature))
    return {
        "auth_valid": vector("success", "A staff member's answer to the relay's challenge: "
                             "Ed25519 over signing_input(\"kok/v1/auth\", origin, nonce).",
                             origin=origin, **common),
        "auth_wrong_origin": vector("auth_bad_signature", "The same answer presented to "
                                    "another relay.", origin="https://evil.example", **common),
    }


def request_vectors() -> dict[str, Vector]:
    identity = SigningKeyPair.from_seed(seed("identity/org-n"))
    signing = SigningKeyPair.from_seed(seed("signing/org-n/dana"))
    box = BoxKeyPair.from_seed(seed("box/org-n/dana"))
    org = make_org_request(identity, "org-n", "Neue Beratungsstelle", T0)
    staff = make_staff_request(signing, box.public, "org-n/dana", "Dana", T0, role="admin")
    tampered = org.replace(b"Neue Beratungsstelle", b"Neue Beratungsstellf")
    return {
        "request_org_valid": vector("success", "An org admission request, self-signed by the "
                                    "new identity key (label kok/v1/request).",
                                    kind="org_request", file=org.decode("utf-8"),
                                    fingerprint=format_fingerprint(identity.fingerprint)),
        "request_staff_valid": vector("success", "A staff enrolment request, self-signed by "
                                      "the new signing key.", kind="staff_request",
                                      file=staff.decode("utf-8"),
                                      fingerprint=format_fingerprint(signing.fingerprint)),
        "request_tampered": vector("request_invalid", "The org request with its name changed "
                                   "after signing.", kind="org_request",
                                   file=tampered.decode("utf-8")),
    }


# --- device linking ---------------------------------------------------------------------


def _entropy(data: bytes) -> Callable[[int], bytes]:
    """SPAKE2's random source, fixed: it asks for 64 bytes once per run."""
    return lambda size: data[:size]


def link_vectors() -> dict[str, Vector]:
    network_key = SigningKeyPair.from_seed(seed("network")).public
    code = LinkCode("4711", "29508163")
    wrong = LinkCode("4711", "29508164")
    entropy_a, entropy_b = seed("link/a") + seed("link/a2"), seed("link/b") + seed("link/b2")
    signing = SigningKeyPair.from_seed(seed("signing/org-a/alice/link"))
    box = BoxKeyPair.from_seed(seed("box/org-a/alice/link"))
    profile = make_profile_offer(ProfileOffer("org-a/alice", "Alice",
                                              SigningKeyPair.from_seed(seed("relay-log")).public))

    def run(new_code: LinkCode, signer: SigningKeyPair) -> Vector:
        a = LinkPake(EXISTING, code, network_key, _entropy(entropy_a))
        b = LinkPake(NEW, new_code, network_key, _entropy(entropy_b))
        keys_a, keys_b = a.finish(b.message), b.finish(a.message)
        offer = make_device_offer(signer, box.public, keys_b)
        if signer is not signing:  # another key's signature under the offered key's name
            offer = offer.replace(b64(signer.public).encode(), b64(signing.public).encode())
        return dict(
            code=str(code), network_key=b64(network_key), existing_entropy=b64(entropy_a),
            new_entropy=b64(entropy_b), new_code=str(new_code), a0=b64(a.message),
            b0=b64(b.message),
            b1=b64(seal_link_message(keys_b, NEW, offer, seed("link/nonce-b")[:24])),
            a1=b64(seal_link_message(keys_a, EXISTING, profile, seed("link/nonce-a")[:24])),
            signing_key=b64(signing.public), box_key=b64(box.public), staff_id="org-a/alice")

    other = SigningKeyPair.from_seed(seed("signing/mallory/link"))
    return {
        "link_valid": vector(
            "success", "Both sides of a device link with the code 4711-2950-8163: SPAKE2 "
            "messages a0, b0 (from the entropy given), the new device's offer b1 and the "
            "profile offer a1, each behind its key confirmation.", **run(code, signing)),
        "link_wrong_code": vector(
            "link_wrong_code", "The new side typed 4711-2950-8164: the existing side's check "
            "of b1's confirmation fails before anything is decrypted.", **run(wrong, signing)),
        "link_forged_offer": vector(
            "link_message_invalid", "The right code, but b1's device offer names a signing key "
            "that did not sign it.", **run(code, other)),
        "link_bad_code": vector(
            "link_bad_code", "A code with eleven digits.", code="4711-2950-816",
            network_key=b64(network_key)),
    }


# --- file streams -----------------------------------------------------------------------


def stream_vectors() -> dict[str, Vector]:
    key = seed("stream/key")
    header = seed("stream/header")[:HEADER_SIZE]
    small = b"Aufenthaltserlaubnis, Seite 1.\n" * 4
    multi = hashlib.shake_256(seed("stream/multi")).digest(CHUNK_SIZE - 8 + 1)  # two chunks

    def encrypt(data: bytes) -> tuple[bytes, bytes]:
        enc = FileEncryptor(key, header, len(data))
        ciphertext = enc.update(data) + enc.finalize()
        return ciphertext, enc.ciphertext_hash

    def chunks(ciphertext: bytes) -> list[bytes]:
        body = ciphertext[HEADER_SIZE:]
        return [body[i : i + CHUNK_CIPHERTEXT] for i in range(0, len(body), CHUNK_CIPHERTEXT)]

    def crafted(data: bytes, tags: list[int], *, padding: bytes | None = None) -> bytes:
        plain = (len(data).to_bytes(8, "big") + data).ljust(padded_stream_size(len(data)), b"\0")
        if padding is not None:
            plain = plain[: len(plain) - len(padding)] + padding
        state = _state(key, header)
        pieces = [plain[i : i + CHUNK_SIZE] for i in range(0, len(plain), CHUNK_SIZE)]
        return header + b"".join(
            sodium.crypto_secretstream_xchacha20poly1305_push(state, piece, None, tag)
            for piece, tag in zip(pieces, tags, strict=True))

    out: dict[str, Vector] = {}

    def case(name: str, expect: str, description: str, ciphertext: bytes, size: int | None,
             digest: bytes | None = None, *, use_key: bytes = key,
             plaintext: bytes | None = None) -> None:
        fields: dict[str, Any] = {"key": b64(use_key), "expected_size": size,
                                  "expected_hash": None if digest is None else b64(digest),
                                  "ciphertext": b64(ciphertext)}
        if plaintext is not None:
            fields = {"key": b64(use_key), "header": b64(header), "plaintext": b64(plaintext),
                      **{k: v for k, v in fields.items() if k != "key"}}
        out[f"stream_{name}"] = vector(expect, description, **fields)

    for name, data, what in (("empty", b"", "An empty file: one chunk of 8 bytes, FINAL."),
                             ("small", small, "A small file in one padded chunk."),
                             ("two_chunks", multi, "A file of 65529 bytes: a full chunk, then "
                              "a FINAL chunk of 2048 bytes (Padmé).")):
        ciphertext, digest = encrypt(data)
        case(f"{name}_valid", "success", what + " Encrypting `plaintext` with `key` and "
             "`header` gives `ciphertext`; decrypting gives `plaintext`.", ciphertext,
             len(data), digest, plaintext=data)
    ct_small, _ = encrypt(small)
    ct_multi, _ = encrypt(multi)
    one, two = chunks(ct_multi)
    case("truncated_mid_chunk", "stream_truncated", "The small stream without its last byte.",
         ct_small[:-1], len(small))
    case("truncated_final_chunk_missing", "stream_truncated", "The two-chunk stream without "
         "its FINAL chunk: it ends cleanly at a chunk boundary.", header + one, len(multi))
    case("no_final_tag", "stream_truncated", "A stream (made with the key) whose only chunk "
         "is tagged MESSAGE instead of FINAL.", crafted(small, [TAG_MESSAGE]), len(small))
    case("no_final_tag_nonzero_padding", "stream_truncated", "A stream (made with the key) "
         "whose only chunk is tagged MESSAGE and whose padding ends in 0x01: the missing "
         "FINAL tag (SPEC 13.3 step 4) is found before the padding (step 5).",
         crafted(small, [TAG_MESSAGE], padding=b"\x01"), len(small))
    case("extended", "stream_trailing_data", "The small stream with one zero byte appended.",
         ct_small + b"\0", len(small))
    case("extended_by_a_chunk", "stream_trailing_data", "The small stream with its (only, "
         "FINAL) chunk repeated after it.", ct_small + ct_small[HEADER_SIZE:], len(small))
    case("reordered", "stream_corrupt", "The two-chunk stream with its chunks swapped.",
         header + two + one, len(multi))
    case("duplicated_chunk", "stream_corrupt", "The first chunk of the two-chunk stream sent "
         "twice.", header + one + one + two, len(multi))
    flipped = bytearray(ct_small)
    flipped[HEADER_SIZE + 10] ^= 0x04
    case("bit_flipped", "stream_corrupt", "One ciphertext bit flipped.", bytes(flipped),
         len(small))
    flipped = bytearray(ct_small)
    flipped[3] ^= 0x80
    case("header_bit_flipped", "stream_corrupt", "One header bit flipped.", bytes(flipped),
         len(small))
    case("wrong_key", "stream_corrupt", "The small stream opened with another key.", ct_small,
         len(small), use_key=seed("stream/other-key"))
    case("nonzero_padding", "stream_corrupt", "A stream (made with the key) whose Padmé "
         "padding ends in 0x01.", crafted(small, [TAG_FINAL], padding=b"\x01"), len(small))
    plain = (len(multi).to_bytes(8, "big") + multi).ljust(padded_stream_size(len(multi)), b"\0")
    state = _state(key, header)
    early = header + b"".join(
        sodium.crypto_secretstream_xchacha20poly1305_push(state, piece, None, TAG_FINAL)
        for piece in (plain[:CHUNK_SIZE], plain[CHUNK_SIZE:]))
    case("final_too_early", "stream_corrupt", "A two-chunk stream whose first chunk is "
         "already tagged FINAL.", early, len(multi))
    case("size_mismatch", "stream_size_mismatch", "The small stream, but the message signed "
         "a size one byte larger (same padded length).", ct_small, len(small) + 1)
    case("hash_mismatch", "stream_hash_mismatch", "The small stream, but the message signed "
         "another ciphertext hash.", ct_small, len(small), bytes(32))
    return out


GENERATORS: list[Callable[[], dict[str, Vector]]] = [
    keys_vectors, encoding_vectors, padding_vectors, sealedbox_vectors, record_vectors,
    keylog_vectors, message_vectors, mailbox_vectors, grant_vectors, device_vectors,
    auth_vectors, request_vectors, stream_vectors, link_vectors,
]


def all_vectors() -> dict[str, bytes]:
    """Every vector file's name and exact bytes."""
    files: dict[str, bytes] = {}
    for generate in GENERATORS:
        for name, vec in generate().items():
            if name in files:
                raise ValueError(f"two vectors named {name}")
            text = json.dumps(vec, indent=2, ensure_ascii=False) + "\n"
            files[f"{name}.json"] = text.encode("utf-8")
    return files


def _disagreements(files: dict[str, bytes]) -> list[str]:
    """Vectors whose stated expectation the reference reader (run.py) does not meet."""
    import run  # beside this file; imported late so that run.py may import the package first

    wrong = []
    for name, data in files.items():
        vec = json.loads(data)
        try:
            got = run.outcome(name.removesuffix(".json"), vec)
        except run.Mismatch as exc:
            got = f"mismatch ({exc})"
        if got != vec["expect"]:
            wrong.append(f"{name}: states {vec['expect']}, the reader says {got}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    args = parser.parse_args(argv)
    files = all_vectors()
    wrong = _disagreements(files)
    if wrong:
        print("refusing to write vectors the reference reader disagrees with:", file=sys.stderr)
        for line in wrong:
            print(f"  {line}", file=sys.stderr)
        return 1
    on_disk = {p.name: p.read_bytes() for p in HERE.glob("*.json")}
    if args.check:
        stale = sorted(n for n in files if on_disk.get(n) != files[n])
        extra = sorted(set(on_disk) - set(files))
        for name in stale:
            print(f"differs or missing: {name}", file=sys.stderr)
        for name in extra:
            print(f"not generated (stale file): {name}", file=sys.stderr)
        if stale or extra:
            print("run: python protocol/vectors/generate.py", file=sys.stderr)
            return 1
        print(f"{len(files)} vector files match")
        return 0
    for name in set(on_disk) - set(files):
        (HERE / name).unlink()
    for name, data in files.items():
        if on_disk.get(name) != data:
            (HERE / name).write_bytes(data)
    print(f"wrote {len(files)} vector files to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
