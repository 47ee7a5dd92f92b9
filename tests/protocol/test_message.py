"""Messages: sealing, opening, and every attack the opening checks must stop."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import OrgAdmit, labels, sign_record
from protocol.encoding import canonical_json
from protocol.errors import (
    BadField,
    BadPadding,
    BadTimestamp,
    DecryptFailed,
    EncodingError,
    MessageExpired,
    MissingField,
    NonCanonical,
    SenderInvalid,
    SignatureError,
    UnknownField,
    UnknownVersion,
    WrongRecipient,
    WrongSigner,
)
from protocol.keylog import MAX_SKEW
from protocol.keys import SigningKeyPair, key_id
from protocol.message import (
    MAX_TTL,
    RECEIPT_MARGIN,
    Attachment,
    LogPosition,
    MessagePayload,
    message_content,
    message_signing_parts,
    missed_epoch,
    open_message,
    parse_payload,
    retraction_notice,
    sender_log_lag,
    withdrawn_by,
)
from protocol.padding import pad_message, unpad_message
from protocol.sealedbox import open_sealed, seal

from .world import Org, Staff, World, seed, standard_world


def _open(world: World, org: Org, sealed: bytes, epoch: int | None = None,
          secret_epoch: int | None = None, now: int | None = None) -> Any:
    number = org.epoch if epoch is None else epoch
    secret = org.epochs[number if secret_epoch is None else secret_epoch].secret
    return open_message(sealed, to_org=org.org_id, epoch=number, epoch_secret=secret,
                        keylog=world.log, now=world.now if now is None else now)


def _craft(body: bytes, signer: SigningKeyPair, org: Org, *, signed_for: tuple[str, int] | None
           = None, padded: bytes | None = None) -> bytes:
    """A sealed envelope built by hand, for attacks the writer refuses to make."""
    to_org, epoch = signed_for or (org.org_id, org.epoch)
    sig = signer.sign(labels.MESSAGE, *message_signing_parts(body, to_org, epoch))
    content = message_content(signer.public, sig, body)
    plaintext = pad_message(content) if padded is None else padded
    return seal(org.epochs[org.epoch].public, plaintext, seed("craft"))


# --- round trips --------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=300), st.text(max_size=40), st.booleans())
def test_every_recipient_opens_the_same_payload(body: str, subject: str, both: bool) -> None:
    world, a, b, alice, _bob = standard_world()
    c = world.admit("org-c")
    to = ("org-b", "org-c") if both else ("org-b",)
    try:
        payload = replace(world.payload(alice, to, body=body), subject=subject)
        sealed = {org.org_id: world.seal(payload, alice, org) for org in (b, c) if org.org_id in to}
    except EncodingError:
        return  # non-NFC or surrogate text: the writer refuses, as a reader would
    for org_id, envelope in sealed.items():
        opened = _open(world, world.orgs[org_id], envelope)
        assert opened.payload == payload and opened.to_org == org_id
    assert a.org_id == "org-a"


def test_payload_with_attachments_and_reply_round_trips() -> None:
    world, _a, b, alice, _bob = standard_world()
    attachment = Attachment(drop=bytes(16), key=bytes(32), size=123, name="Bescheid.pdf",
                            type="application/pdf", hash=bytes(32))
    payload = replace(world.payload(alice, ("org-b",)), reply_to=bytes(range(16)),
                      attachments=(attachment,))
    assert parse_payload(payload.to_bytes()) == payload
    assert _open(world, b, world.seal(payload, alice, b)).payload == payload


def test_envelopes_are_padded() -> None:
    world, _a, b, alice, _bob = standard_world()
    sizes = {len(world.seal(world.payload(alice, ("org-b",), body="x" * n), alice, b))
             for n in range(1000, 1100)}
    assert len(sizes) <= 3  # a hundred lengths collapse into a few padded sizes


# --- the relay tampers --------------------------------------------------------------------


def test_every_flipped_bit_is_caught() -> None:
    world, _a, b, alice, _bob = standard_world()
    sealed = world.seal(world.payload(alice, ("org-b",)), alice, b)
    for index in range(len(sealed)):
        damaged = bytearray(sealed)
        damaged[index] ^= 1 << (index % 8)
        with pytest.raises(DecryptFailed):
            _open(world, b, bytes(damaged))
    for cut in (sealed[:-1], sealed + b"\x00", sealed[:47], b""):
        with pytest.raises(DecryptFailed):
            _open(world, b, cut)


def test_relabelled_epoch_does_not_open() -> None:
    world, _a, b, alice, _bob = standard_world()
    world.new_epoch(b)
    sealed = world.seal(world.payload(alice, ("org-b",)), alice, b)  # to epoch 2
    with pytest.raises(DecryptFailed):
        _open(world, b, sealed, epoch=1)


def test_unknown_epoch_label_is_refused_before_decrypting() -> None:
    world, _a, b, alice, _bob = standard_world()
    sealed = world.seal(world.payload(alice, ("org-b",)), alice, b)
    with pytest.raises(WrongRecipient):
        open_message(sealed, to_org="org-b", epoch=9, epoch_secret=b.epochs[1].secret,
                     keylog=world.log, now=world.now)


def test_envelope_delivered_to_another_org_does_not_open() -> None:
    world, _a, b, alice, _bob = standard_world()
    c = world.admit("org-c")
    sealed = world.seal(world.payload(alice, ("org-b", "org-c")), alice, b)
    with pytest.raises(DecryptFailed):
        _open(world, c, sealed)


def test_wrong_epoch_secret_does_not_open() -> None:
    world, _a, b, alice, _bob = standard_world()
    world.new_epoch(b)
    sealed = world.seal(world.payload(alice, ("org-b",)), alice, b)
    with pytest.raises(DecryptFailed):
        _open(world, b, sealed, secret_epoch=1)


# --- another member org forwards -----------------------------------------------------------


@pytest.mark.parametrize("c_was_a_recipient", [True, False])
def test_forwarded_message_is_caught(c_was_a_recipient: bool) -> None:
    world, _a, _b, alice, _bob = standard_world()
    c = world.admit("org-c")
    to = ("org-b", "org-c") if c_was_a_recipient else ("org-b",)
    payload = world.payload(alice, to)
    # org-b opens its copy and re-seals alice's signed content to org-c's key
    body = payload.to_bytes()
    sig = alice.signing.sign(labels.MESSAGE, *message_signing_parts(body, "org-b", 1))
    content = message_content(alice.signing.public, sig, body)
    forwarded = seal(c.epochs[1].public, pad_message(content), seed("fwd"))
    with pytest.raises(WrongRecipient):
        _open(world, c, forwarded)


def test_message_resealed_to_a_newer_epoch_is_caught() -> None:
    world, _a, b, alice, _bob = standard_world()
    payload = world.payload(alice, ("org-b",))
    world.new_epoch(b)
    resealed = _craft(payload.to_bytes(), alice.signing, b, signed_for=("org-b", 1))
    with pytest.raises(WrongRecipient):
        _open(world, b, resealed)


# --- who signed ---------------------------------------------------------------------------


def test_signer_must_be_the_stated_sender() -> None:
    world, a, b, alice, _bob = standard_world()
    carol = world.add_staff(a, "carol")
    body = world.payload(alice, ("org-b",)).to_bytes()  # claims alice
    with pytest.raises(WrongSigner):
        _open(world, b, _craft(body, carol.signing, b))


def test_forged_signature_by_the_right_key_fingerprint() -> None:
    world, _a, b, alice, _bob = standard_world()
    body = world.payload(alice, ("org-b",)).to_bytes()
    other = world.payload(alice, ("org-b",), body="other").to_bytes()
    sig = alice.signing.sign(labels.MESSAGE, *message_signing_parts(other, "org-b", 1))
    content = message_content(alice.signing.public, sig, body)
    sealed = seal(b.epochs[1].public, pad_message(content), seed("forge"))
    with pytest.raises(SignatureError) as info:
        _open(world, b, sealed)
    assert info.value.code == "bad_signature"


@pytest.mark.parametrize("length", [0, 20, 84])
def test_content_without_room_for_key_id_signature_and_payload_is_refused(length: int) -> None:
    world, _a, b, _alice, _bob = standard_world()
    sealed = seal(b.epochs[1].public, pad_message(bytes(length)), seed("short"))
    with pytest.raises(BadField):
        _open(world, b, sealed)


def test_the_payload_travels_as_the_signed_bytes() -> None:
    """No second encoding: the frame is key id, signature and the canonical payload bytes."""
    world, _a, b, alice, _bob = standard_world()
    payload = world.payload(alice, ("org-b",))
    sealed = world.seal(payload, alice, b)
    content = unpad_message(open_sealed(b.epochs[1].public, b.epochs[1].secret, sealed))
    assert content[:20] == key_id(alice.signing.public)
    assert content[84:] == payload.to_bytes()


def test_signer_who_is_not_staff() -> None:
    world, _a, b, _alice, _bob = standard_world()
    mallory = Staff("org-a/mallory", SigningKeyPair.from_seed(seed("mallory")), None)  # type: ignore[arg-type]
    payload = world.payload(mallory, ("org-b",))
    with pytest.raises(SenderInvalid):
        _open(world, b, world.seal(payload, mallory, b))


def test_signer_removed_before_sending() -> None:
    world, a, b, alice, _bob = standard_world()
    world.now += 100
    world.remove_staff(a, alice)
    world.now += 100
    with pytest.raises(SenderInvalid):
        _open(world, b, world.seal(world.payload(alice, ("org-b",)), alice, b))


def test_message_sent_before_removal_still_opens() -> None:
    world, a, b, alice, _bob = standard_world()
    sealed = world.seal(world.payload(alice, ("org-b",)), alice, b)
    world.now += 100
    world.remove_staff(a, alice)
    assert _open(world, b, sealed).payload.from_staff == alice.staff_id


def test_removed_signer_cannot_backdate_into_an_epoch_made_after_removal() -> None:
    world, a, _b, alice, _bob = standard_world()
    carol = world.add_staff(a, "carol")
    world.now += 1000
    removal = world.now
    world.remove_staff(a, alice)  # and org-a rotates to epoch 2
    # alice keeps her signing key and claims to have sent just before her removal,
    # within the clock skew of the new epoch's creation
    payload = world.payload(alice, ("org-a",), sent=removal - 10)
    with pytest.raises(SenderInvalid):
        _open(world, a, world.seal(payload, alice, a))
    assert carol.staff_id  # the rest of org-a is fine:
    assert _open(world, a, world.seal(world.payload(carol, ("org-a",)), carol, a))


def test_backdated_before_the_epoch_existed() -> None:
    world, _a, b, alice, _bob = standard_world()
    world.now += 10_000
    world.new_epoch(b)
    created = world.now
    payload = world.payload(alice, ("org-b",), sent=created - MAX_SKEW - 1)
    with pytest.raises(BadTimestamp):
        _open(world, b, world.seal(payload, alice, b))
    payload = world.payload(alice, ("org-b",), sent=created - MAX_SKEW)
    assert _open(world, b, world.seal(payload, alice, b))


def test_dated_in_the_future() -> None:
    world, _a, b, alice, _bob = standard_world()
    for ahead, ok in ((MAX_SKEW, True), (MAX_SKEW + 1, False)):
        sealed = world.seal(world.payload(alice, ("org-b",), sent=world.now + ahead), alice, b)
        if ok:
            assert _open(world, b, sealed)
        else:
            with pytest.raises(BadTimestamp):
                _open(world, b, sealed)


def test_expired_message_is_a_replay() -> None:
    world, _a, b, alice, _bob = standard_world()
    payload = world.payload(alice, ("org-b",), ttl=3600)
    sealed = world.seal(payload, alice, b)
    assert _open(world, b, sealed, now=payload.expires + MAX_SKEW)
    with pytest.raises(MessageExpired):
        _open(world, b, sealed, now=payload.expires + MAX_SKEW + 1)


def test_sender_org_revoked_before_sending() -> None:
    world, a, b, alice, _bob = standard_world()
    world.now += 10
    world.revoke(a)
    with pytest.raises(SenderInvalid):
        _open(world, b, world.seal(world.payload(alice, ("org-b",)), alice, b))


def test_recipient_must_be_named() -> None:
    world, _a, b, alice, _bob = standard_world()
    world.admit("org-c")
    body = world.payload(alice, ("org-c",)).to_bytes()
    with pytest.raises(WrongRecipient):  # signed for org-b, but `to` names only org-c
        _open(world, b, _craft(body, alice.signing, b))


# --- malformed payloads from a real staff key -----------------------------------------------


def _payload_json(world: World, alice: Staff) -> dict[str, Any]:
    return world.payload(alice, ("org-b",)).to_json()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda o: o.update(v=2), UnknownVersion),
        (lambda o: o.update(cc=["org-c"]), UnknownField),
        (lambda o: o.update(to=[]), BadField),
        (lambda o: o.update(to=["org-b", "org-b"]), BadField),
        (lambda o: o.update(to=[["org-b"]]), BadField),
        (lambda o: o.update(from_org="org-b"), BadField),
        (lambda o: o.update(expires=o["sent"] - 1), BadField),
        (lambda o: o.update(expires=o["sent"] + MAX_TTL + 1), BadField),
        (lambda o: o.update(id="AAAA"), BadField),
        (lambda o: o.update(subject="x" * 1025), BadField),
        (lambda o: o.update(attachments=[{"drop": "x"}]), MissingField),
        (lambda o: o.update(sent="1700000000"), BadField),
    ],
)
def test_malformed_payload_signed_by_a_real_member(change: Any, error: type[Exception]) -> None:
    world, _a, b, alice, _bob = standard_world()
    obj = _payload_json(world, alice)
    change(obj)
    body = canonical_json(obj)
    with pytest.raises(error):
        _open(world, b, _craft(body, alice.signing, b))


def test_non_canonical_payload_signed_by_a_real_member() -> None:
    world, _a, b, alice, _bob = standard_world()
    body = canonical_json(_payload_json(world, alice)).replace(b",", b", ", 1)
    with pytest.raises(NonCanonical):
        _open(world, b, _craft(body, alice.signing, b))


def test_bad_padding_inside_the_box() -> None:
    world, _a, b, alice, _bob = standard_world()
    body = world.payload(alice, ("org-b",)).to_bytes()
    sig = alice.signing.sign(labels.MESSAGE, *message_signing_parts(body, "org-b", 1))
    good = bytearray(pad_message(message_content(alice.signing.public, sig, body)))
    good[-1] = 1
    with pytest.raises(BadPadding):
        _open(world, b, _craft(body, alice.signing, b, padded=bytes(good)))


# --- the writer refuses what a reader would reject -------------------------------------------


def test_seal_refuses_a_recipient_not_in_to() -> None:
    world, _a, b, alice, _bob = standard_world()
    with pytest.raises(WrongRecipient):
        world.seal(world.payload(alice, ("org-c",)), alice, b)


@pytest.mark.parametrize(
    "change",
    [
        {"id": bytes(15)}, {"to": ()}, {"to": ("Org-B",)}, {"from_staff": "org-b/alice"},
        {"sent": -1}, {"expires": 0}, {"thread": b""}, {"reply_to": bytes(3)},
        {"attachments": ("not an attachment",)}, {"body": None}, {"subject": "e\u0301"},
    ],
)
def test_invalid_payloads_cannot_be_written(change: dict[str, Any]) -> None:
    world, _a, _b, alice, _bob = standard_world()
    payload = replace(world.payload(alice, ("org-b",)), **change)
    with pytest.raises(BadField if "subject" not in change else NonCanonical):
        MessagePayload.to_bytes(payload)


def test_message_from_an_org_revoked_since_is_no_longer_believed() -> None:
    world, a, b, alice, _bob = standard_world()
    sealed = world.seal(world.payload(alice, ("org-b",)), alice, b)
    assert _open(world, b, sealed)  # while org-a is a member
    world.now += 60
    world.revoke(a)
    with pytest.raises(SenderInvalid, match="revoked"):
        _open(world, b, sealed)


def test_removed_signer_refused_by_the_relays_receipt_time() -> None:
    """A removed member dates a message before the removal; the relay received it after."""
    world, a, b, alice, _bob = standard_world()
    world.now += 1000
    removal = world.now
    world.remove_staff(a, alice)  # org-a rotates; org-b's epoch predates the removal
    world.now += 3600
    sealed = world.seal(world.payload(alice, ("org-b",), sent=removal - 10), alice, b)
    secret = b.epochs[b.epoch].secret

    def open_received(received: int | None) -> Any:
        return open_message(sealed, to_org="org-b", epoch=b.epoch, epoch_secret=secret,
                            keylog=world.log, now=world.now, received=received)

    assert open_received(None).payload.from_staff == alice.staff_id  # no receipt time
    assert open_received(removal + RECEIPT_MARGIN - 1)  # within the clocks' margin
    with pytest.raises(SenderInvalid, match="before the relay received"):
        open_received(removal + RECEIPT_MARGIN)


def test_readmitted_org_messages_dated_before_its_revocation_stay_refused() -> None:
    """Whoever stole the revoked org's staff keys cannot send 'old' messages after re-admission."""
    world, a, b, alice, _bob = standard_world()
    world.now += 100
    sealed = world.seal(world.payload(alice, ("org-b",)), alice, b)  # dated before revocation
    assert _open(world, b, sealed)
    world.now += 100
    world.revoke(a)
    with pytest.raises(SenderInvalid):
        _open(world, b, sealed)
    world.now += 100
    identity = SigningKeyPair.from_seed(seed("identity/org-a/readmitted"))
    world.apply(sign_record(OrgAdmit("org-a", "A", identity.public, world.now), world.network))
    with pytest.raises(SenderInvalid, match="revoked after that time"):
        _open(world, b, sealed)


def test_sender_log_position_is_signed_and_compared() -> None:
    world, _a, b, alice, _bob = standard_world()
    position = LogPosition.of(world.log)
    payload = replace(world.payload(alice, ("org-b",)), log=position)
    opened = _open(world, b, world.seal(payload, alice, b))
    assert opened.payload.log == position
    assert sender_log_lag(world.log, position) == 0
    assert not missed_epoch(world.log, position, "org-b", b.epoch)
    world.now += 10
    world.new_epoch(b)  # the sender had not seen org-b's new epoch
    assert sender_log_lag(world.log, position) == 1
    assert missed_epoch(world.log, position, "org-b", b.epoch - 1)
    assert not missed_epoch(world.log, LogPosition.of(world.log), "org-b", b.epoch - 1)
    # the same size with another hash: the relay showed the sender another history
    assert sender_log_lag(world.log, LogPosition(position.size, bytes(32))) is None
    # ahead of us: sync first
    assert sender_log_lag(world.log, LogPosition(world.log.size + 2, bytes(32))) == -2


def test_a_payload_without_a_valid_log_position_is_refused() -> None:
    world, _a, _b, alice, _bob = standard_world()
    obj = world.payload(alice, ("org-b",)).to_json()
    for bad in ({"size": -1, "hash": obj["log"]["hash"]}, {"size": 0}, [], None,
                {"size": 0, "hash": "AAAA"}):
        with pytest.raises(EncodingError):
            parse_payload(canonical_json({**obj, "log": bad}))
    del obj["log"]
    with pytest.raises(MissingField):
        parse_payload(canonical_json(obj))


# --- retraction notices (SPEC 9.4) -----------------------------------------------------------


def _notice(world: World, sender: Staff, original: MessagePayload) -> MessagePayload:
    return retraction_notice(original.id, id=world.fresh("id")[:16],
                             from_staff=sender.staff_id, to=original.to, sent=world.now,
                             expires=original.expires, thread=original.thread,
                             log=LogPosition.of(world.log))


def test_a_retraction_notice_opens_like_a_message_and_names_what_it_withdraws() -> None:
    world, _a, b, alice, _bob = standard_world()
    original = world.payload(alice, ("org-b",))
    opened = _open(world, b, world.seal(_notice(world, alice, original), alice, b)).payload
    assert opened.is_retraction and opened.retracts == original.id
    assert not original.is_retraction
    assert "retracts" not in original.to_json()  # plain messages keep their exact bytes
    assert withdrawn_by(opened, {alice.staff_id}) == (alice.staff_id, original.id)
    assert withdrawn_by(opened, set()) == (alice.staff_id, original.id)  # arrives later


def test_a_notice_by_anyone_but_the_sender_withdraws_nothing() -> None:
    world, a, b, alice, _bob = standard_world()
    carol = world.add_staff(a, "carol", "admin")  # a colleague, even an admin, of the sender
    eve = world.add_staff(b, "eve")  # a colleague in the recipient org
    original = world.payload(alice, ("org-b",))
    for forger in (carol, eve):
        forged = _open(world, b, world.seal(_notice(world, forger, original), forger, b))
        with pytest.raises(WrongSigner):
            withdrawn_by(forged.payload, {alice.staff_id})


@pytest.mark.parametrize(
    "change",
    [{"subject": "x"}, {"body": "x"}, {"retracts": bytes(15)},
     {"reply_to": bytes(16)}, {"attachments": (Attachment(
         drop=bytes(16), key=bytes(32), size=1, name="a", type="b", hash=bytes(32)),)}],
)
def test_a_notice_carries_nothing_but_the_id_it_withdraws(change: dict[str, Any]) -> None:
    world, _a, _b, alice, _bob = standard_world()
    notice = replace(_notice(world, alice, world.payload(alice, ("org-b",))), **change)
    with pytest.raises(BadField):
        notice.to_bytes()


@pytest.mark.parametrize("field", ["subject", "body"])
def test_a_reader_refuses_a_notice_with_text_even_signed_by_the_sender(field: str) -> None:
    world, _a, b, alice, _bob = standard_world()
    obj = {**_notice(world, alice, world.payload(alice, ("org-b",))).to_json(), field: "x"}
    with pytest.raises(BadField):
        _open(world, b, _craft(canonical_json(obj), alice.signing, b))


def test_a_notice_cannot_withdraw_itself_nor_be_null() -> None:
    world, _a, b, alice, _bob = standard_world()
    notice = _notice(world, alice, world.payload(alice, ("org-b",)))
    with pytest.raises(BadField):
        replace(notice, retracts=notice.id).to_bytes()
    with pytest.raises(BadField):
        _open(world, b, _craft(canonical_json({**notice.to_json(), "retracts": None}),
                               alice.signing, b))
