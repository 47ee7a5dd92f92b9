"""What the library hands back: messages, delivery status, sync reports, org facts.

Plain frozen dataclasses with ``to_json`` for the CLI's ``--json`` output. Message ids are
the payload's 16 random bytes in lowercase hex, so a unique prefix can name a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """A received message that passed every check (sender, signature, recipient, time)."""

    id: str
    from_org: str
    from_staff: str
    to: tuple[str, ...]
    subject: str
    body: str
    sent: int
    expires: int
    thread: str
    reply_to: str | None
    received: int
    read: bool
    attachments: tuple[dict[str, Any], ...] = ()
    identity_changed: bool = False
    """The sender's org was verified, and its identity key has changed since."""
    sender_log_behind: bool = False
    """The sender's key log had not seen our org's newer epoch: its relay may freeze it."""
    withdrawn: bool = False
    """Its sender withdrew it (SPEC 9.4): body and attachment keys are gone from the device."""
    withdrawn_at: int | None = None
    """When the sender withdrew it (the notice's signed time)."""
    withdrawn_files: int = 0
    """How many attachments it had before it was withdrawn."""
    kept: bool = False
    """The person marked it keep: local retention does not delete it."""
    deletes_at: int | None = None
    """When local retention deletes it from this device (None: kept, or not known here)."""

    @classmethod
    def from_stored(cls, data: dict[str, Any], received: int, read_at: int | None) -> Message:
        """Rebuild from the mailbox's sealed row."""
        return cls(
            id=data["id"], from_org=data["from_org"], from_staff=data["from_staff"],
            to=tuple(data["to"]), subject=data["subject"], body=data["body"],
            sent=int(data["sent"]), expires=int(data["expires"]), thread=data["thread"],
            reply_to=data.get("reply_to"), received=received, read=read_at is not None,
            attachments=tuple(data.get("attachments") or ()),
            sender_log_behind=bool(data.get("sender_log_behind")),
            withdrawn=data.get("withdrawn") is not None,
            withdrawn_at=data.get("withdrawn"),
            withdrawn_files=int(data.get("withdrawn_files") or 0),
        )

    def to_json(self, *, body: bool = True) -> dict[str, Any]:
        """The ``--json`` shape; attachment file keys are never printed."""
        obj: dict[str, Any] = {
            "id": self.id, "from_org": self.from_org, "from_staff": self.from_staff,
            "to": list(self.to), "subject": self.subject, "sent": self.sent,
            "expires": self.expires, "thread": self.thread, "reply_to": self.reply_to,
            "received": self.received, "read": self.read,
            "attachments": [{"name": a.get("name"), "size": a.get("size"),
                             "type": a.get("type"), "drop": a.get("drop")}
                            for a in self.attachments],
            "identity_changed": self.identity_changed,
            "sender_log_behind": self.sender_log_behind,
            "withdrawn": self.withdrawn, "withdrawn_at": self.withdrawn_at,
            "kept": self.kept, "deletes_at": self.deletes_at,
        }
        if body:
            obj["body"] = self.body
        return obj


@dataclass(frozen=True)
class Withdrawal:
    """A retraction notice that arrived: ``from_staff`` withdrew their message ``id``."""

    id: str
    from_staff: str
    held: bool
    """True if the message was in the mailbox (now marked); False: it is marked on arrival."""


@dataclass(frozen=True)
class RecipientStatus:
    """Delivery of one envelope to one recipient organisation."""

    org: str
    state: str
    acknowledged: int
    """People who fetched it from at least one device (delivered)."""
    of: int
    read: int | None = None
    """People who reported it read; None if the relay did not say (an older relay)."""
    read_reports: bool = True
    """False: the recipient org's staff send no read reports (its settings in the key log)."""

    def delivery_words(self) -> tuple[str, dict[str, int]]:
        """The catalogue key and values of "delivered to k of n, read by r"."""
        return _delivery_words(self.acknowledged, self.of, self.read, self.read_reports)

    def to_json(self) -> dict[str, Any]:
        return {"org": self.org, "state": self.state, "acknowledged": self.acknowledged,
                "of": self.of, "read": self.read if self.read_reports else None,
                "read_reports": self.read_reports}


def _delivery_words(acknowledged: int, of: int, read: int | None,
                    read_reports: bool) -> tuple[str, dict[str, int]]:
    values = {"acknowledged": acknowledged, "of": of}
    if not read_reports:
        return "status.delivered_reports_off", values
    if read is None:
        return "status.delivered", values
    return "status.delivered_read", {**values, "read": read}


@dataclass(frozen=True)
class DeliveryStatus:
    """Delivery of a sent message over all its recipient organisations."""

    id: str
    subject: str
    recipients: tuple[RecipientStatus, ...]
    notified: tuple[str, ...] = ()
    """Organisations sent a retraction notice (some of their staff had fetched it)."""

    @property
    def state(self) -> str:
        """One word: the common state, ``pending`` while any is pending, else ``mixed``."""
        states = {r.state for r in self.recipients}
        if len(states) == 1:
            return states.pop()
        return "pending" if "pending" in states else "mixed"

    @property
    def acknowledged(self) -> int:
        return sum(r.acknowledged for r in self.recipients)

    @property
    def of(self) -> int:
        return sum(r.of for r in self.recipients)

    @property
    def read_reports(self) -> bool:
        """True if at least one recipient org sends read reports."""
        return any(r.read_reports for r in self.recipients)

    @property
    def read(self) -> int | None:
        """People who reported it read, over the orgs that send read reports (None: unknown)."""
        counted = [r.read for r in self.recipients if r.read_reports]
        if not counted or any(n is None for n in counted):
            return None
        return sum(n for n in counted if n is not None)

    def delivery_words(self) -> tuple[str, dict[str, int]]:
        """The catalogue key and values of "delivered to k of n, read by r" over all orgs."""
        return _delivery_words(self.acknowledged, self.of, self.read, self.read_reports)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "subject": self.subject, "state": self.state,
                "acknowledged": self.acknowledged, "of": self.of, "read": self.read,
                "recipients": [r.to_json() for r in self.recipients],
                "notified": list(self.notified)}


@dataclass(frozen=True)
class Quarantined:
    """An envelope that failed a check: never shown as a message, reported with its code."""

    relay_id: str
    code: str
    detail: str
    received: int

    def to_json(self) -> dict[str, Any]:
        return {"relay_id": self.relay_id, "code": self.code, "detail": self.detail,
                "received": self.received}


@dataclass(frozen=True)
class SyncReport:
    """What one ``sync`` brought: key-log entries, epoch keys, messages, quarantined envelopes."""

    log_entries: int = 0
    log_size: int = 0
    epoch_keys: int = 0
    messages: tuple[Message, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)
    rotated: int | None = None
    """The epoch an admin's sync published, if it rotated."""
    rotation_reason: str | None = None
    """Why: ``schedule``, ``removal`` or ``identity``."""
    retired_keys: int = 0
    """Old epoch secrets deleted for forward secrecy."""
    identity_switched: bool = False
    """The log now names our new org identity key, and the admin uses it from now on."""
    outbox_sent: tuple[str, ...] = ()
    """Ids of messages queued while the relay was away, sent by this sync."""
    outbox_expired: tuple[str, ...] = ()
    """Ids of queued messages that expired before the relay could be reached (not sent)."""
    outbox_failed: tuple[str, ...] = ()
    """Ids of queued messages whose kept file copies were damaged (not sent, dropped)."""
    withdrawn: tuple[Withdrawal, ...] = ()
    """Retraction notices this sync brought (SPEC 9.4)."""
    purged: int = 0
    """Messages local retention deleted from this device during this sync."""

    def to_json(self) -> dict[str, Any]:
        return {"outbox_sent": list(self.outbox_sent), "purged": self.purged,
                "outbox_expired": list(self.outbox_expired),
                "outbox_failed": list(self.outbox_failed),
                "log_entries": self.log_entries, "log_size": self.log_size,
                "epoch_keys": self.epoch_keys,
                "messages": [m.to_json(body=False) for m in self.messages],
                "quarantined": [q.to_json() for q in self.quarantined],
                "problems": list(self.problems), "rotated": self.rotated,
                "rotation_reason": self.rotation_reason, "retired_keys": self.retired_keys,
                "identity_switched": self.identity_switched,
                "withdrawn": [{"id": w.id, "from_staff": w.from_staff, "held": w.held}
                              for w in self.withdrawn]}


@dataclass(frozen=True)
class StaffInfo:
    """One staff member as the verified key log describes them."""

    staff_id: str
    role: str
    fingerprint: str
    added: int
    removed: int | None

    def to_json(self) -> dict[str, Any]:
        return {"staff_id": self.staff_id, "role": self.role, "fingerprint": self.fingerprint,
                "added": self.added, "removed": self.removed}


@dataclass(frozen=True)
class OrgInfo:
    """An organisation's public facts from the verified key log, and the log head."""

    org_id: str
    name: str
    fingerprint: str
    admitted: int
    revoked: int | None
    revoke_reason: str | None
    staff: tuple[StaffInfo, ...]
    epoch: int | None
    epoch_created: int | None
    epoch_fingerprint: str | None
    log_size: int
    log_hash: str
    log_code: str = ""
    """The head hash in groups of four, to read aloud (``kok whois --compare-head``)."""
    safety_code: str | None = None
    """The code of (our org, this org) for two admins to compare; None for our own."""
    verification: str | None = None
    """``own``, ``verified``, ``changed`` or ``unverified`` (this profile's record)."""
    rotate_every: int | None = None
    """``org show``: seconds between scheduled rotations."""
    next_rotation: int | None = None
    """``org show``: when the schedule renews the epoch next."""
    relay_log_fingerprint: str | None = None
    """Fingerprint of the relay's log key this profile pinned (compare with the office's)."""

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "org_id": self.org_id, "name": self.name, "fingerprint": self.fingerprint,
            "admitted": self.admitted, "revoked": self.revoked,
            "revoke_reason": self.revoke_reason, "staff": [s.to_json() for s in self.staff],
            "epoch": self.epoch, "epoch_created": self.epoch_created,
            "epoch_fingerprint": self.epoch_fingerprint,
            "log_head": {"size": self.log_size, "hash": self.log_hash, "code": self.log_code},
            "safety_code": self.safety_code, "verification": self.verification,
            "relay_log_fingerprint": self.relay_log_fingerprint,
        }
        if self.rotate_every is not None:
            obj["rotation"] = {"every": self.rotate_every, "next": self.next_rotation}
        return obj
