#!/usr/bin/env python3
"""Run the test vectors in this directory against the reference implementation.

    python protocol/vectors/run.py [file.json ...]

``outcome(vector)`` reads one vector the way SPEC.md says a reader must, and returns
``"success"`` or the error code the reader failed with; outputs a success vector states
(plaintexts, hashes, answers) are compared too, and a difference raises ``Mismatch``.
Another implementation can follow this file as a guide to each vector's inputs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE.parents[1]))

from protocol import errors, labels  # noqa: E402
from protocol.auth import verify_auth  # noqa: E402
from protocol.encoding import (  # noqa: E402
    b64decode,
    b64encode,
    canonical_json,
    parse_canonical,
    signing_input,
)
from protocol.grants import open_grant, verify_grant_upload  # noqa: E402
from protocol.keylog import Head, KeyLog, verify_head  # noqa: E402
from protocol.keys import (  # noqa: E402
    BoxKeyPair,
    SigningKeyPair,
    fingerprint,
    format_fingerprint,
    safety_code,
)
from protocol.link import (  # noqa: E402
    EXISTING,
    NEW,
    LinkCode,
    LinkPake,
    open_device_offer,
    open_link_message,
    open_profile_offer,
)
from protocol.message import open_message, require_new, withdrawn_by  # noqa: E402
from protocol.padding import pad_message, padme, unpad_message  # noqa: E402
from protocol.requests import open_org_request, open_staff_request  # noqa: E402
from protocol.sealedbox import open_sealed, seal  # noqa: E402
from protocol.stream import FileDecryptor, FileEncryptor  # noqa: E402

Vector = dict[str, Any]


class Mismatch(AssertionError):
    """A vector's stated output differs from what the reader produced."""


def _b(text: str) -> bytes:
    return b64decode(text)


def _same(what: str, got: object, want: object) -> None:
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, expected {want!r}")


def _keylog(vec: Vector) -> KeyLog:
    log = KeyLog(_b(vec["network_key"]))
    for text in vec.get("log", []):
        log.apply(text.encode("utf-8"), vec["now"])
    return log


def run_keys(vec: Vector) -> None:
    for entry in vec.get("keys", []):
        if entry["kind"] == "ed25519":
            public = SigningKeyPair.from_seed(_b(entry["seed"])).public
        else:
            public = BoxKeyPair.from_seed(_b(entry["secret"])).public
        _same("public key", b64encode(public), entry["public"])
        _same("fingerprint", fingerprint(public), entry["fingerprint"])
        _same("formatted", format_fingerprint(entry["fingerprint"]), entry["formatted"])
    if "code" in vec:
        a, b = _b(vec["identity_a"]), _b(vec["identity_b"])
        _same("safety code", safety_code(a, b), vec["code"])
        _same("safety code (b, a)", safety_code(b, a), vec["code"])


def run_encoding(vec: Vector) -> None:
    if "input" in vec:
        parse_canonical(_b(vec["input"]))
    for case in vec.get("cases", []):
        if "value" in case:
            _same("parsed", parse_canonical(_b(case["input"])), case["value"])
            _same("encoded", b64encode(canonical_json(case["value"])), case["input"])
        else:
            _same("decoded", b64decode(case["text"]), _b(case["bytes"]))
    if "text" in vec:
        b64decode(vec["text"])
    if "output" in vec:
        parts = [_b(p) for p in vec["parts"]]
        _same("signing input", b64encode(signing_input(vec["label"].encode(), *parts)),
              vec["output"])
    if "labels" in vec:
        ours = {k: v.decode() for k, v in vars(labels).items() if isinstance(v, bytes)}
        _same("labels", ours, vec["labels"])


def run_padding(vec: Vector) -> None:
    for length, padded in vec.get("sizes", []):
        _same(f"padme({length})", padme(length), padded)
    for case in vec.get("cases", []):
        _same("frame", b64encode(pad_message(_b(case["data"]))), case["padded"])
        _same("unframed", unpad_message(_b(case["padded"])), _b(case["data"]))
    if "padded" in vec:
        unpad_message(_b(vec["padded"]))


def run_sealedbox(vec: Vector) -> None:
    public, secret = _b(vec["recipient_public"]), _b(vec["recipient_secret"])
    plaintext = open_sealed(public, secret, _b(vec["sealed"]))
    if "plaintext" in vec:
        _same("plaintext", plaintext, _b(vec["plaintext"]))
        _same("sealed", b64encode(seal(public, plaintext, _b(vec["ephemeral_seed"]))),
              vec["sealed"])


def run_record(vec: Vector) -> None:
    _keylog(vec).apply(vec["record"].encode("utf-8"), vec["now"])


def run_keylog(vec: Vector) -> None:
    if "entries" in vec:
        log = KeyLog(_b(vec["network_key"]))
        for entry in vec["entries"]:
            applied = log.apply(entry["record"].encode("utf-8"), vec["now"])
            _same("chain hash", b64encode(applied.hash), entry["hash"])
        head = Head.from_json(vec["head"])
        verify_head(_b(vec["log_key"]), head)
        log.require_extends(head.size, head.hash)
        for org_id, number in vec["questions"]["current_epoch"].items():
            _same(f"current epoch of {org_id}", log.current_epoch(org_id).number, number)
        for ask in vec["questions"]["staff_valid_at"]:
            _same(f"{ask['staff_id']} at {ask['time']}",
                  log.staff_valid_at(ask["staff_id"], ask["time"]), ask["valid"])
    elif "seen" in vec:
        _keylog(vec).require_extends(vec["seen"]["size"], _b(vec["seen"]["hash"]))
    else:
        verify_head(_b(vec["log_key"]), Head.from_json(vec["head"]))


def run_message(vec: Vector) -> None:
    opened = open_message(_b(vec["sealed"]), to_org=vec["to_org"], epoch=vec["epoch"],
                          epoch_secret=_b(vec["epoch_secret"]), keylog=_keylog(vec),
                          now=vec["now"], received=vec.get("received"))
    if "payload" in vec:
        _same("payload", opened.payload.to_bytes().decode("utf-8"), vec["payload"])
        _same("sender", opened.payload.from_staff, vec["from_staff"])


def run_mailbox(vec: Vector) -> None:
    """Open each envelope in order; remember (sender, id) of each accepted one (SPEC 9.3)."""
    log, accepted = _keylog(vec), set[tuple[str, bytes]]()
    withdrawn: set[tuple[str, bytes]] = set()
    for envelope in vec["envelopes"]:
        opened = open_message(_b(envelope["sealed"]), to_org=vec["to_org"],
                              epoch=vec["epoch"], epoch_secret=_b(vec["epoch_secret"]),
                              keylog=log, now=vec["now"])
        payload = opened.payload
        key = require_new(payload, accepted)
        if payload.retracts is not None:  # a retraction notice (SPEC 9.4)
            withdrawn.add(withdrawn_by(payload, {s for s, i in accepted if i == payload.retracts}))
        accepted.add(key)
    if "withdrawn" in vec:
        held = {k for k in withdrawn if k in accepted}
        _same("withdrawn", sorted([s, b64encode(i)] for s, i in held),
              sorted(vec["withdrawn"]))


def run_grant(vec: Vector) -> None:
    box = BoxKeyPair.from_seed(_b(vec["box_secret"]))
    grant = open_grant(_b(vec["grant"]), vec["staff_id"], box, _keylog(vec))
    if "epoch_secret" in vec:
        _same("epoch secret", b64encode(grant.secret_key), vec["epoch_secret"])


def run_grantupload(vec: Vector) -> None:
    """What the relay checks before it stores a grant (SPEC 10)."""
    verify_grant_upload(_b(vec["grant"]), vec["org_id"], vec["epoch"], vec["staff_id"],
                        vec["device_id"], _keylog(vec))


def run_auth(vec: Vector) -> None:
    verify_auth(_b(vec["public_key"]), vec["origin"], _b(vec["nonce"]), _b(vec["signature"]))


def run_request(vec: Vector) -> None:
    data = vec["file"].encode("utf-8")
    request = open_org_request(data) if vec["kind"] == "org_request" else open_staff_request(data)
    if "fingerprint" in vec:
        key = getattr(request, "identity_key", None) or request.signing_key  # type: ignore[union-attr]
        _same("fingerprint", format_fingerprint(fingerprint(key)), vec["fingerprint"])


def run_link(vec: Vector) -> None:
    code = LinkCode.parse(vec["code"])
    network_key = _b(vec["network_key"])
    entropy_a, entropy_b = _b(vec["existing_entropy"]), _b(vec["new_entropy"])
    existing = LinkPake(EXISTING, code, network_key, lambda size: entropy_a[:size])
    new = LinkPake(NEW, LinkCode.parse(vec["new_code"]), network_key,
                   lambda size: entropy_b[:size])
    _same("a0", existing.message, _b(vec["a0"]))
    _same("b0", new.message, _b(vec["b0"]))
    keys = existing.finish(_b(vec["b0"]))  # the existing side checks b1 first
    offer = open_device_offer(open_link_message(keys, NEW, _b(vec["b1"])), keys)
    _same("signing_key", offer.signing_key, _b(vec["signing_key"]))
    _same("box_key", offer.box_key, _b(vec["box_key"]))
    profile = open_profile_offer(open_link_message(new.finish(_b(vec["a0"])), EXISTING,
                                                   _b(vec["a1"])))
    _same("staff_id", profile.staff_id, vec["staff_id"])


def run_stream(vec: Vector) -> None:
    key, ciphertext = _b(vec["key"]), _b(vec["ciphertext"])
    expected_hash = None if vec["expected_hash"] is None else _b(vec["expected_hash"])
    # fed in uneven pieces, as a download arrives
    dec = FileDecryptor(key, expected_size=vec["expected_size"], expected_hash=expected_hash)
    out = bytearray()
    for start in range(0, len(ciphertext), 4099):
        out += dec.update(ciphertext[start : start + 4099])
    out += dec.finalize()
    if "plaintext" in vec:
        plaintext = _b(vec["plaintext"])
        _same("plaintext", bytes(out), plaintext)
        enc = FileEncryptor(key, _b(vec["header"]), len(plaintext))
        _same("ciphertext", enc.update(plaintext) + enc.finalize(), ciphertext)


RUNNERS: dict[str, Callable[[Vector], None]] = {
    "keys": run_keys, "encoding": run_encoding, "padding": run_padding,
    "sealedbox": run_sealedbox, "record": run_record, "keylog": run_keylog,
    "message": run_message, "mailbox": run_mailbox, "grant": run_grant,
    "grantupload": run_grantupload, "auth": run_auth, "request": run_request,
    "stream": run_stream, "link": run_link,
}


def outcome(name: str, vec: Vector) -> str:
    """``"success"`` or the code of the protocol error reading the vector ``name`` raised."""
    runner = RUNNERS[name.split("_", 1)[0]]
    try:
        runner(vec)
    except errors.ProtocolError as exc:
        return exc.code
    return "success"


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(HERE.glob("*.json"))
    failed = 0
    for path in paths:
        vec = json.loads(path.read_text(encoding="utf-8"))
        try:
            got = outcome(path.stem, vec)
        except Mismatch as exc:
            got = f"mismatch ({exc})"
        if got != vec["expect"]:
            failed += 1
            print(f"FAIL {path.name}: expected {vec['expect']}, got {got}")
    print(f"{len(paths) - failed} of {len(paths)} vectors behave as stated")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
