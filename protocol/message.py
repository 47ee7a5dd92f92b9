"""Message payloads, their signature, padding and sealing to an epoch key.

Theory of operation
-------------------
Sending, once per recipient org R with current epoch E (public key P)::

    body     = canonical JSON of the payload (made once, the same for every recipient)
    sig      = Ed25519(staff key, signing_input("kok/v1/message", body, R, u64(E)))
    content  = key_id(staff key) || sig || body      (20 + 64 bytes, then the body)
    sealed   = sealed_box(P, pad_message(content))

The body travels as the exact bytes that were signed, with no second encoding around it.

The relay sees only ``(R, E, sealed, ttl)``. ``open_message`` reverses each step and then
runs the checks of SPEC.md section 9.3 in their fixed order, so each failure has one code.
Two of them stop a removed staff member who still holds their signing key from
backdating ``sent`` (the relay refuses their session, but the relay is not trusted): the
sender must have been valid staff at ``max(sent, creation of the epoch sealed to)``, and
``sent`` must not lie before that creation (minus ``MAX_SKEW``).
"""

from __future__ import annotations

from collections.abc import Collection, Container
from dataclasses import dataclass, field
from typing import Any

from . import labels
from .encoding import (
    MAX_SAFE_INT,
    b64encode,
    canonical_json_of_checked,
    check_fields,
    check_org_id,
    check_staff_id,
    get_bytes,
    org_of,
    parse_canonical,
)
from .errors import (
    BadField,
    BadTimestamp,
    MessageExpired,
    Replayed,
    SenderInvalid,
    SignatureError,
    WrongRecipient,
    WrongSigner,
)
from .keylog import MAX_SKEW, ZERO_HASH, EpochState, KeyLog
from .keys import FINGERPRINT_SIZE, SIG_SIZE, SigningKeyPair, key_id, verify
from .padding import pad_message, unpad_message
from .sealedbox import open_sealed, seal
from .stream import MAX_FILE_SIZE

ID_SIZE = 16
MAX_SUBJECT = 1024
MAX_RECIPIENTS = 64
MAX_ATTACHMENTS = 32
MAX_FILE_NAME = 255
MAX_MEDIA_TYPE = 127
MAX_TTL = 30 * 24 * 3600
"""A payload's ``expires`` is at most this many seconds after its ``sent``."""
MOVED_SEARCH_EPOCHS = 4
MAX_READ_REPORT = 100
"""Message ids in one read report (SPEC 21.1); a client sends more in several."""
RECEIPT_MARGIN = MAX_SKEW
"""Seconds by which a relay's receipt time may run ahead of the clock that dated a removal.

A reader refuses a message whose signer was removed at or before the relay's ``received``
minus this margin (SPEC 9.3 step 6): it reached the relay after the removal, whatever
``sent`` claims."""
"""Epochs per recipient org tried when telling a moved envelope from a forged one."""

KEY_ID_SIZE = FINGERPRINT_SIZE
"""Bytes of the signer's key id at the start of a message frame's content."""
CONTENT_HEADER = KEY_ID_SIZE + SIG_SIZE
"""Bytes before the payload in a message frame's content: key id, then signature."""

ATTACHMENT_FIELDS = ("drop", "key", "size", "name", "type", "hash")
PAYLOAD_FIELDS = ("v", "id", "from_org", "from_staff", "to", "sent", "subject", "body",
                  "thread", "reply_to", "attachments", "expires", "log")
OPTIONAL_PAYLOAD_FIELDS = ("retracts",)
"""Present only in a retraction notice (SPEC 9.4): the id of the message it withdraws."""
LOG_POSITION_FIELDS = ("size", "hash")


_SEQUENCES = (tuple, list)  # a tuple of types: ``tuple | list`` builds a union per call


def _check_bytes(value: Any, name: str, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise BadField(f"{name} must be {size} bytes")


def _check_text(value: Any, name: str, max_len: int) -> None:
    if not isinstance(value, str) or len(value) > max_len:
        raise BadField(f"{name} must be a string of at most {max_len} characters")


def _check_int(value: Any, name: str, maximum: int = MAX_SAFE_INT) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise BadField(f"{name} must be an integer from 0 to {maximum}")


@dataclass(frozen=True)
class Attachment:
    """A file drop referenced from a message: everything needed to fetch and verify it."""

    drop: bytes
    key: bytes
    size: int
    name: str
    type: str
    hash: bytes

    def check(self) -> Attachment:
        """Raise ``BadField`` unless every field meets the protocol's rules."""
        _check_bytes(self.drop, "drop", ID_SIZE)
        _check_bytes(self.key, "key", 32)
        _check_int(self.size, "size", MAX_FILE_SIZE)
        _check_text(self.name, "name", MAX_FILE_NAME)
        _check_text(self.type, "type", MAX_MEDIA_TYPE)
        _check_bytes(self.hash, "hash", 32)
        return self

    def to_json(self) -> dict[str, Any]:
        """The attachment object of the payload."""
        return {
            "drop": b64encode(self.drop),
            "key": b64encode(self.key),
            "size": self.size,
            "name": self.name,
            "type": self.type,
            "hash": b64encode(self.hash),
        }

    @classmethod
    def from_json(cls, obj: Any) -> Attachment:
        """Parse and validate an attachment object."""
        if not isinstance(obj, dict):
            raise BadField("an attachment must be an object")
        check_fields(obj, ATTACHMENT_FIELDS)
        return cls(
            drop=get_bytes(obj, "drop"),
            key=get_bytes(obj, "key"),
            size=obj["size"],
            name=obj["name"],
            type=obj["type"],
            hash=get_bytes(obj, "hash"),
        ).check()


@dataclass(frozen=True)
class LogPosition:
    """The sender's verified key-log head when it sealed: ``(size, hash)`` (SPEC 6.4, 9.1).

    Signed into the message so a recipient can compare it with its own log: a relay that
    shows sender and recipient different histories, or freezes one of them, shows up.
    """

    size: int
    hash: bytes

    def check(self) -> LogPosition:
        _check_int(self.size, "log.size")
        _check_bytes(self.hash, "log.hash", 32)
        return self

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "hash": b64encode(self.hash)}

    @classmethod
    def from_json(cls, obj: Any) -> LogPosition:
        if not isinstance(obj, dict):
            raise BadField("log must be an object")
        check_fields(obj, LOG_POSITION_FIELDS)
        return cls(size=obj["size"], hash=get_bytes(obj, "hash")).check()

    @classmethod
    def of(cls, keylog: KeyLog) -> LogPosition:
        """The head of ``keylog``."""
        return cls(keylog.size, keylog.head_hash)


EMPTY_LOG = LogPosition(0, ZERO_HASH)


def sender_log_lag(keylog: KeyLog, position: LogPosition) -> int | None:
    """Entries our log holds beyond the sender's position; None if the histories differ.

    Negative: the sender saw more than we hold (sync and compare again; still ahead after a
    sync means the relay withholds entries from us). None: at the sender's size our chain
    hash differs, so the relay showed the two sides different histories (``log_forked``).
    """
    if position.size > keylog.size:
        return keylog.size - position.size
    if keylog.hash_at(position.size) != position.hash:
        return None
    return keylog.size - position.size


def sealed_log_lag(keylog: KeyLog, position: LogPosition, org_id: str,
                   epoch: int) -> int | None:
    """``sender_log_lag`` for a message sealed to, or a grant of, epoch ``epoch`` of
    ``org_id``: None also when the position does not hold that epoch's record.

    An honest signer seals only to an epoch its verified log holds, so its position lies
    beyond that record; a position before it (the zero position of a signer that claims no
    log at all, for one) cannot come from a client that saw the reader's history.
    """
    state = keylog.epoch(org_id, epoch)
    if state is not None and position.size <= state.index:
        return None
    return sender_log_lag(keylog, position)


def missed_epoch(keylog: KeyLog, position: LogPosition, to_org: str, epoch: int) -> bool:
    """True if ``to_org`` has a newer epoch than ``epoch`` that lies beyond the sender's log.

    The sign of a frozen sender: it sealed to an epoch that was replaced (for example after
    a removal) in a part of the log the relay had not shown it.
    """
    org = keylog.orgs.get(to_org)
    current = org.current_epoch if org is not None else None
    return current is not None and current.number > epoch and current.index >= position.size


@dataclass(frozen=True)
class MessagePayload:
    """What a staff member sends (SPEC section 9.1); signed, padded and sealed per recipient."""

    id: bytes
    from_org: str
    from_staff: str
    to: tuple[str, ...]
    sent: int
    subject: str
    body: str
    thread: bytes
    expires: int
    reply_to: bytes | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)
    log: LogPosition = field(kw_only=True)
    """The sender's verified log head when it sealed. Required: a position an honest sender
    states always holds the record of the epoch it seals to (``sealed_log_lag``)."""
    retracts: bytes | None = None
    """Set only in a retraction notice: the id of the sender's message it withdraws."""

    @property
    def is_retraction(self) -> bool:
        """True for a retraction notice (SPEC 9.4), which a client never shows as a message."""
        return self.retracts is not None

    def check(self) -> MessagePayload:
        """Raise ``BadField`` unless every field meets the protocol's rules.

        The one list of payload rules, run by writers before encoding and by readers after
        decoding, so the two can never disagree.
        """
        _check_bytes(self.id, "id", ID_SIZE)
        from_org = check_org_id(self.from_org)
        if org_of(check_staff_id(self.from_staff)) != from_org:
            raise BadField("from_staff is not a member of from_org")
        if not isinstance(self.to, _SEQUENCES) or not 1 <= len(self.to) <= MAX_RECIPIENTS:
            raise BadField(f"to must list 1 to {MAX_RECIPIENTS} organisations")
        for org_id in self.to:
            check_org_id(org_id)
        if len(set(self.to)) != len(self.to):
            raise BadField("to names an organisation twice")
        _check_int(self.sent, "sent")
        _check_int(self.expires, "expires")
        if not self.sent <= self.expires <= self.sent + MAX_TTL:
            raise BadField("expires must lie between sent and 30 days after it")
        _check_text(self.subject, "subject", MAX_SUBJECT)
        if not isinstance(self.body, str):
            raise BadField("body must be a string")
        _check_bytes(self.thread, "thread", ID_SIZE)
        if self.reply_to is not None:
            _check_bytes(self.reply_to, "reply_to", ID_SIZE)
        attachments = self.attachments
        if not isinstance(attachments, _SEQUENCES) or len(attachments) > MAX_ATTACHMENTS:
            raise BadField(f"attachments must be a list of at most {MAX_ATTACHMENTS}")
        for attachment in self.attachments:
            if not isinstance(attachment, Attachment):
                raise BadField("attachments must be Attachment objects")
            attachment.check()
        if not isinstance(self.log, LogPosition):
            raise BadField("log must be a LogPosition")
        self.log.check()
        if self.retracts is not None:
            _check_notice(self)
        return self

    def to_json(self) -> dict[str, Any]:
        """The payload object (before canonical encoding)."""
        return {
            "v": 1,
            "id": b64encode(self.id),
            "from_org": self.from_org,
            "from_staff": self.from_staff,
            "to": list(self.to),
            "sent": self.sent,
            "subject": self.subject,
            "body": self.body,
            "thread": b64encode(self.thread),
            "reply_to": b64encode(self.reply_to) if self.reply_to is not None else None,
            "attachments": [a.to_json() for a in self.attachments],
            "expires": self.expires,
            "log": self.log.to_json(),
            **({} if self.retracts is None else {"retracts": b64encode(self.retracts)}),
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON of the payload, checked as a reader would check it.

        Made once per payload: a sender validates it first and then signs the same bytes
        for every recipient organisation. (A frozen instance with tuples cannot change;
        ``replace`` makes a new one.)
        """
        encoded: bytes | None = self.__dict__.get("_canonical")
        if encoded is None:
            encoded = canonical_json_of_checked(self.check().to_json())
            if type(self.to) is tuple and type(self.attachments) is tuple:  # nothing mutable
                object.__setattr__(self, "_canonical", encoded)
        return encoded


def parse_payload(body: bytes) -> MessagePayload:
    """Parse and validate a payload's canonical JSON."""
    return payload_from_json(parse_canonical(body))


def payload_from_json(obj: dict[str, Any]) -> MessagePayload:
    """Validate a payload object (as parsed from canonical JSON)."""
    check_fields(obj, PAYLOAD_FIELDS, OPTIONAL_PAYLOAD_FIELDS)
    to, attachments, reply_to = obj["to"], obj["attachments"], obj["reply_to"]
    if not isinstance(to, list):
        raise BadField("to must be a list")
    if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS:
        raise BadField(f"attachments must be a list of at most {MAX_ATTACHMENTS}")
    return MessagePayload(
        id=get_bytes(obj, "id"),
        from_org=obj["from_org"],
        from_staff=obj["from_staff"],
        to=tuple(to),
        sent=obj["sent"],
        subject=obj["subject"],
        body=obj["body"],
        thread=get_bytes(obj, "thread"),
        reply_to=None if reply_to is None else get_bytes(obj, "reply_to"),
        attachments=tuple(Attachment.from_json(a) for a in attachments),
        expires=obj["expires"],
        log=LogPosition.from_json(obj["log"]),
        retracts=get_bytes(obj, "retracts") if "retracts" in obj else None,
    ).check()


def _check_notice(payload: MessagePayload) -> None:
    """A retraction notice carries nothing but the id it withdraws (SPEC 9.4)."""
    _check_bytes(payload.retracts, "retracts", ID_SIZE)
    if payload.retracts == payload.id:
        raise BadField("a retraction notice cannot withdraw itself")
    if payload.subject or payload.body or payload.attachments or payload.reply_to is not None:
        raise BadField("a retraction notice has no subject, body, attachments or reply_to")


def retraction_notice(retracts: bytes, *, id: bytes, from_staff: str, to: tuple[str, ...],
                      sent: int, expires: int, thread: bytes,
                      log: LogPosition) -> MessagePayload:
    """The notice by which ``from_staff`` withdraws their message ``retracts`` (SPEC 9.4).

    ``thread`` is the withdrawn message's thread; ``to`` the recipient orgs that may hold it.
    """
    return MessagePayload(id=id, from_org=org_of(check_staff_id(from_staff)),
                          from_staff=from_staff, to=to, sent=sent, subject="", body="",
                          thread=thread, expires=expires, log=log, retracts=retracts).check()



def message_signing_parts(body: bytes, to_org: str, epoch: int) -> tuple[bytes, bytes, bytes]:
    """``(body, utf8(to_org), u64(epoch))``: what the label ``kok/v1/message`` precedes."""
    if not 1 <= epoch < 2**64:
        raise BadField("an epoch number is a positive 64-bit integer")
    return body, check_org_id(to_org).encode("ascii"), epoch.to_bytes(8, "big")


def seal_message(
    payload: MessagePayload,
    sender: SigningKeyPair,
    to_org: str,
    epoch: int,
    epoch_public_key: bytes,
    ephemeral_seed: bytes,
) -> bytes:
    """Sign ``payload`` for ``(to_org, epoch)``, pad it and seal it to the epoch key.

    ``ephemeral_seed`` MUST be 32 fresh random bytes for every call (it makes the sealed
    box's ephemeral key); the caller draws it, so this module never reads the OS.
    """
    if to_org not in payload.to:
        raise WrongRecipient(f"{to_org!r} is not among the payload's recipients")
    body = payload.to_bytes()
    sig = sender.sign(labels.MESSAGE, *message_signing_parts(body, to_org, epoch))
    return seal(epoch_public_key, pad_message(message_content(sender.public, sig, body)),
                ephemeral_seed)


def message_content(signer_public: bytes, signature: bytes, body: bytes) -> bytes:
    """``key_id(signer) || signature || body``: what a message frame holds (SPEC 9.2)."""
    if len(signature) != SIG_SIZE:
        raise BadField("a signature is 64 bytes")
    return key_id(signer_public) + signature + body


ReplayKey = tuple[str, bytes]
"""``(from_staff, id)``: what identifies one message for replay detection."""


def replay_key(payload: MessagePayload) -> ReplayKey:
    """The sender and id by which a reader remembers an accepted message (SPEC 9.3).

    Keyed by the sender as well as the id: a co-recipient org that learns an id (and a
    relay that delays the genuine envelope) cannot get the genuine message refused by
    sending its own message under that id first.
    """
    return payload.from_staff, payload.id


def require_new(payload: MessagePayload, accepted: Container[ReplayKey]) -> ReplayKey:
    """Raise ``Replayed`` if ``payload``'s replay key is among ``accepted``; else return it."""
    key = replay_key(payload)
    if key in accepted:
        raise Replayed(f"message {payload.id.hex()} from {payload.from_staff} was delivered "
                       "before")
    return key


def withdrawn_by(notice: MessagePayload, senders_of_id: Collection[str]) -> ReplayKey:
    """The replay key of the one message ``notice`` may withdraw: its signer's, by that id.

    ``senders_of_id`` holds the senders of the messages the reader accepted under the id
    the notice names. A notice withdraws only a message of the staff member who signed it
    (SPEC 9.4): naming an id the reader holds from others, and not from the signer, raises
    ``WrongSigner`` (a colleague, or anyone, forging a withdrawal). An id the reader does
    not hold yet is fine: the message may still arrive, and must then arrive withdrawn.
    """
    if notice.retracts is None:
        raise BadField("not a retraction notice")
    if senders_of_id and notice.from_staff not in senders_of_id:
        raise WrongSigner("a retraction notice may only withdraw a message of its own signer")
    return notice.from_staff, notice.retracts


@dataclass(frozen=True)
class OpenedMessage:
    """A message that passed every check: the payload and the envelope it came in."""

    payload: MessagePayload
    to_org: str
    epoch: int


def _signed_for_elsewhere(
    body: bytes, sig: bytes, key: bytes, payload: MessagePayload, keylog: KeyLog,
    here: EpochState,
) -> bool:
    """True if the signature is genuine but for another (org, epoch): a moved envelope.

    A sender seals to the epoch current when it sends, so only the few newest epochs of
    each recipient org created by ``sent`` (plus skew) are tried; that bounds the work a
    forged envelope can cause.
    """
    for org_id in payload.to:
        org = keylog.orgs.get(org_id)
        if org is None:
            continue
        candidates = [e for e in org.epochs if e.created <= payload.sent + MAX_SKEW]
        for state in candidates[-MOVED_SEARCH_EPOCHS:]:
            if state is here:
                continue
            try:
                parts = message_signing_parts(body, org_id, state.number)
                verify(key, sig, labels.MESSAGE, *parts)
            except SignatureError:
                continue
            return True
    return False


def _require_not_removed_before(keylog: KeyLog, staff_id: str, received: int | None) -> None:
    """Refuse a signer removed before the relay received the envelope (plus margin).

    A removed member still holds their signing key and can date ``sent`` before their
    removal and post through a colleague's session; an honest relay's receipt time shows
    the envelope arrived after the removal.
    """
    if received is None:
        return
    removed_at = keylog.staff(staff_id).removed_at
    if removed_at is not None and removed_at <= received - RECEIPT_MARGIN:
        raise SenderInvalid(f"{staff_id!r} had been removed before the relay received the "
                            "message")


def _require_device_not_removed_before(keylog: KeyLog, staff_id: str, device: str,
                                       received: int | None) -> None:
    """As ``_require_not_removed_before``, for the one device that signed (SPEC 6.6)."""
    if received is None:
        return
    removed_at = keylog.device(staff_id, device).removed_at
    if removed_at is not None and removed_at <= received - RECEIPT_MARGIN:
        raise WrongSigner("the device that signed had been removed before the relay received "
                          "the message")


def open_message(
    sealed: bytes,
    *,
    to_org: str,
    epoch: int,
    epoch_secret: bytes,
    keylog: KeyLog,
    now: int,
    received: int | None = None,
) -> OpenedMessage:
    """Open an envelope addressed to ``(to_org, epoch)`` and run every check of SPEC.md.

    The checks run in the order SPEC.md section 9.3 lists; the first that fails raises.
    Replay detection is the caller's: it keeps the ``replay_key`` (sender and id) of every
    message it accepted until their ``expires`` (plus ``MAX_SKEW``) has passed, and asks
    ``require_new``. ``received`` is the relay's receipt time of the envelope, if the relay
    gave one: a signer removed before it (minus ``RECEIPT_MARGIN``) is refused.
    """
    here = keylog.epoch(to_org, epoch)
    if here is None:
        raise WrongRecipient(f"epoch {epoch} of {to_org!r} is not in the key log")
    # the log's public key, not one derived from the secret: a secret that does not
    # belong to this epoch then simply fails to open the box
    padded = open_sealed(here.public_key, epoch_secret, sealed)
    content = unpad_message(padded)
    if len(content) <= CONTENT_HEADER:
        raise BadField("a message holds a 20-byte key id, a 64-byte signature and a payload")
    signer = content[:KEY_ID_SIZE]
    sig = content[KEY_ID_SIZE:CONTENT_HEADER]
    body = content[CONTENT_HEADER:]
    payload = parse_payload(body)
    devices = keylog.signing_keys_at(payload.from_staff, max(payload.sent, here.created))
    _require_not_removed_before(keylog, payload.from_staff, received)
    if keylog.orgs[payload.from_org].revoked:
        # Revocation distrusts an org as a whole, from the moment the reader's log shows it:
        # whoever holds its keys could date a message before the revocation.
        raise SenderInvalid(f"organisation {payload.from_org!r} has been revoked")
    # any device of the sender that was current at that time signs for them
    device = next((d for d, k in devices.items() if key_id(k) == signer), None)
    if device is None:
        raise WrongSigner("the message was not signed by a device of its stated sender")
    key = devices[device]
    _require_device_not_removed_before(keylog, payload.from_staff, device, received)
    try:
        verify(key, sig, labels.MESSAGE, *message_signing_parts(body, to_org, epoch))
    except SignatureError:
        if _signed_for_elsewhere(body, sig, key, payload, keylog, here):
            raise WrongRecipient(
                "the message was signed for another organisation or epoch: "
                "it was moved or forwarded"
            ) from None
        raise
    if to_org not in payload.to:
        raise WrongRecipient("the message does not name our organisation as a recipient")
    if payload.sent > now + MAX_SKEW:
        raise BadTimestamp("the message is dated in the future")
    if payload.sent < here.created - MAX_SKEW:
        raise BadTimestamp("the message claims a time before the key it is sealed to existed")
    if now > payload.expires + MAX_SKEW:
        raise MessageExpired()
    return OpenedMessage(payload=payload, to_org=to_org, epoch=epoch)
