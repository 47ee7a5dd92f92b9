"""The key log: a pure state machine over signed records, with a hash chain.

Theory of operation
-------------------
``KeyLog.apply(record_bytes, now)`` validates one record against the state built by
every earlier record and, only if every rule holds, appends it and advances the chain::

    h_0 = 32 zero bytes
    h_i = BLAKE2b-256("kok/v1/log" || h_{i-1} || record_bytes_i)

The rules, one row per record type (who signs, and what must hold); in code each row is
one entry of ``RULES`` at the end of this module (its check, its effect on the state, and
its consequences for data kept outside the log):

    org_admit     network key                      org_id unused, or its org revoked (then
                                                   with an identity key it never had)
    org_revoke    network key                      org admitted and not revoked
    org_rekey     current org identity key AND     org admitted, not revoked; new key never
                  network key                      used by this org before
    staff_add     current org identity key         org admitted, not revoked; staff_id never
                                                   used; signing key not enrolled anywhere;
                                                   box key never in the log
    staff_remove  current org identity key, or     staff enrolled and not yet removed;
                  a current device of the member   org not revoked
    epoch         current org identity key         org admitted, not revoked; epoch > every
                                                   earlier one of the org; key never used
    device_add    current org identity key, or     member current; signing key not enrolled
                  a current device of the member   anywhere; box key never in the log; fewer
                                                   than MAX_DEVICES current devices
    device_remove current org identity key, or     member current; device current and not
                  a current device of the member   the member's last one
    box_key       the device itself                member and device current; box key never
                                                   in the log
    org_verify    current org identity key         org admitted, not revoked; subject another
                                                   admitted org; identity_key its current key
    org_settings  current org identity key         org admitted, not revoked (the newest
                                                   record of an org replaces earlier ones)

and for every record: exactly the required signatures, ``created <= now + MAX_SKEW``
and ``created >= created of the previous entry - MAX_SKEW``.

A staff member is a set of devices, each named by the fingerprint of its own signing key
and holding its own box key: ``staff_add`` enrols the first device with the member.
Messages and logins are signed by a device; grants are sealed to a device's current box
key. A removed device's keys stop counting at once, for everything.

Revoking an organisation also ends every staff membership in it (``removed_at`` = the
revocation time). A re-admitted organisation keeps its history: staff ids stay taken,
epoch numbers keep increasing, and no epoch from before the re-admission is current. It
starts from new keys: a new identity key (checked here), new staff signing keys and new
epoch keys (never reused anyway), and no member counts as valid at a time at or before the
latest revocation, so messages dated before it are not accepted again.

The relay runs this before appending; clients run it again over their mirror, with the
pinned network key, so a relay cannot add anything the rules forbid. A client also keeps
the last head it saw and calls ``require_extends`` so a rewritten history is caught.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import labels
from .encoding import (
    SignedItem,
    b64decode,
    b64encode,
    check_fields,
    get_int,
    org_of,
    signing_input,
)
from .errors import (
    BadField,
    EncodingError,
    LogDeviceLast,
    LogDeviceLimit,
    LogDeviceRemoved,
    LogDeviceUnknown,
    LogEpochOrder,
    LogHeadInvalid,
    LogKeyReused,
    LogNoEpoch,
    LogOrgExists,
    LogOrgRevoked,
    LogOrgUnknown,
    LogRewritten,
    LogStaffExists,
    LogStaffRemoved,
    LogStaffUnknown,
    LogTimestamp,
    SenderInvalid,
    SignatureError,
    WrongSigner,
)
from .keys import SigningKeyPair, fingerprint, format_fingerprint, verify
from .records import (
    BoxKey,
    DeviceAdd,
    DeviceRemove,
    Epoch,
    OrgAdmit,
    OrgRekey,
    OrgRevoke,
    OrgSettings,
    OrgVerify,
    Record,
    StaffAdd,
    StaffRemove,
    parse_record_body,
)

R = TypeVar("R", bound="Record")

MAX_SKEW = 300
"""Seconds a record's ``created`` may lie in the future or before the previous entry."""

ZERO_HASH = bytes(32)

MAX_DEVICES = 16
"""Current devices a staff member may have at once (each one costs a grant per epoch)."""


def chain_hash(previous: bytes, record_bytes: bytes) -> bytes:
    """``BLAKE2b-256("kok/v1/log" || previous || record_bytes)``."""
    return hashlib.blake2b(labels.LOG + previous + record_bytes, digest_size=32).digest()


@dataclass
class DeviceState:
    """One device of a staff member: its signing key, and its box keys over time."""

    device_id: str
    """Fingerprint of the device's signing key (what its signatures name)."""
    signing_key: bytes
    box_keys: list[tuple[bytes, int]]
    """Every box key of the device, oldest first, each with the time it took effect."""
    added_at: int
    removed_at: int | None = None

    @property
    def box_key(self) -> bytes:
        """The current box key: grants are sealed to this one."""
        return self.box_keys[-1][0]

    @property
    def current(self) -> bool:
        """Not removed (the member may be: ask ``KeyLog.devices``)."""
        return self.removed_at is None

    def valid_at(self, when: int) -> bool:
        """Added at or before ``when`` and not removed at or before it."""
        return self.added_at <= when and (self.removed_at is None or when < self.removed_at)


@dataclass
class StaffState:
    """One staff member as the log describes them: a role and one or more devices."""

    staff_id: str
    role: str
    added_at: int
    devices: dict[str, DeviceState]
    """Every device the member ever had, by device id, in the order they were added."""
    removed_at: int | None = None

    @property
    def active(self) -> bool:
        """Not removed (the org may still be revoked: ask ``KeyLog.active_staff``)."""
        return self.removed_at is None

    def current_devices(self) -> list[DeviceState]:
        """Devices not removed, in the order they were added."""
        return [d for d in self.devices.values() if d.current]

    @property
    def primary(self) -> DeviceState:
        """The member's oldest current device (the enrolment device, unless removed)."""
        current = self.current_devices()
        return current[0] if current else next(iter(self.devices.values()))

    @property
    def signing_key(self) -> bytes:
        """The primary device's signing key (shown as the member's fingerprint)."""
        return self.primary.signing_key

    @property
    def box_key(self) -> bytes:
        """The primary device's current box key."""
        return self.primary.box_key

    @property
    def signing_fingerprint(self) -> str:
        """Fingerprint of the primary device's signing key."""
        return fingerprint(self.signing_key)

    def device_signing(self, key_fingerprint: str) -> DeviceState | None:
        """The current device whose signing key has this fingerprint, if any."""
        device = self.devices.get(key_fingerprint)
        return device if device is not None and device.current else None


@dataclass
class EpochState:
    """One epoch of an organisation: its number, public key and creation time."""

    number: int
    public_key: bytes
    created: int
    index: int
    identity_index: int = 0
    """Position in ``OrgState.identity_keys`` of the identity key current at creation."""


@dataclass
class OrgState:
    """One organisation: identity keys over time, staff, epochs, revocation."""

    org_id: str
    name: str
    identity_keys: list[bytes]
    admitted_at: int
    revoked_at: int | None = None
    revoke_reason: str | None = None
    last_revoked_at: int | None = None
    """The latest revocation, kept after a re-admission: nothing the org's keys signed for a
    time at or before it is trusted again."""
    staff: dict[str, StaffState] = field(default_factory=dict)
    epochs: list[EpochState] = field(default_factory=list)
    admitted_index: int = 0
    """Log index of the latest ``org_admit``; epochs before it belong to a past admission."""
    verified: dict[str, bytes] = field(default_factory=dict)
    """Other orgs this org verified (``org_verify``), each with the identity key it checked;
    the verification holds only while that key is still the other org's current one."""
    settings: OrgSettings | None = None
    """The org's newest ``org_settings`` record of its current admission (None: defaults)."""

    @property
    def identity_key(self) -> bytes:
        """The current identity key."""
        return self.identity_keys[-1]

    @property
    def revoked(self) -> bool:
        """Revoked (and not re-admitted since)."""
        return self.revoked_at is not None

    @property
    def current_epoch(self) -> EpochState | None:
        """The newest epoch of the current admission, if any."""
        if self.epochs and self.epochs[-1].index > self.admitted_index:
            return self.epochs[-1]
        return None

    def active_staff(self) -> list[StaffState]:
        """Staff not removed, in enrolment order."""
        return [s for s in self.staff.values() if s.active]


@dataclass(frozen=True)
class LogEntry:
    """An applied record: its index, parsed form, exact bytes and chain hash."""

    index: int
    record: Record
    item: SignedItem
    record_bytes: bytes
    hash: bytes


@dataclass(frozen=True)
class Head:
    """The relay's signed statement of the log's size and head hash at a time."""

    size: int
    hash: bytes
    time: int
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The exact bytes the log key signs."""
        return head_signing_parts(self.size, self.hash, self.time)

    def to_json(self) -> dict[str, Any]:
        """``{"size", "hash": b64, "time", "signature": b64}`` as in the HTTP API."""
        return {
            "size": self.size,
            "hash": b64encode(self.hash),
            "time": self.time,
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_json(cls, obj: Any) -> Head:
        """Parse a head (its signature is checked by ``verify_head``)."""
        if not isinstance(obj, dict):
            raise BadField("a log head must be a JSON object")
        check_fields(obj, ["size", "hash", "time", "signature"])
        return cls(
            size=get_int(obj, "size"),
            hash=b64decode(obj["hash"], size=32, field="hash"),
            time=get_int(obj, "time"),
            signature=b64decode(obj["signature"], size=64, field="signature"),
        )


def _head_parts(size: int, head_hash: bytes, time: int) -> tuple[bytes, bytes, bytes]:
    if not 0 <= size < 2**64 or not 0 <= time < 2**64 or len(head_hash) != 32:
        raise BadField("a log head is a size, a 32-byte hash and a time, each non-negative")
    return size.to_bytes(8, "big"), head_hash, time.to_bytes(8, "big")


def head_signing_parts(size: int, head_hash: bytes, time: int) -> bytes:
    """``signing_input("kok/v1/head", u64(size), hash, u64(time))``: what the log key signs."""
    return signing_input(labels.HEAD, *_head_parts(size, head_hash, time))


def sign_head(log_key: SigningKeyPair, size: int, head_hash: bytes, time: int) -> Head:
    """The relay's signature over ``(size, head hash, time)``."""
    sig = log_key.sign(labels.HEAD, *_head_parts(size, head_hash, time))
    return Head(size=size, hash=head_hash, time=time, signature=sig)


def verify_head(log_public_key: bytes, head: Head) -> None:
    """Raise ``LogHeadInvalid`` unless the relay's log key signed this head."""
    try:
        parts = _head_parts(head.size, head.hash, head.time)
        verify(log_public_key, head.signature, labels.HEAD, *parts)
    except (SignatureError, EncodingError) as exc:
        raise LogHeadInvalid() from exc


class KeyLog:
    """Validated state of the key log, built one record at a time."""

    def __init__(self, network_key: bytes) -> None:
        if len(network_key) != 32:
            raise BadField("the network key must be a 32-byte Ed25519 public key")
        self.network_key = network_key
        self.entries: list[LogEntry] = []
        self.orgs: dict[str, OrgState] = {}
        self.enrolled_keys: set[bytes] = set()
        """Every device signing key ever enrolled (a key is never enrolled twice)."""
        self.box_keys: set[bytes] = set()
        """Every box key ever in the log (a box key is never published twice)."""

    # --- the chain -------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of entries applied."""
        return len(self.entries)

    @property
    def head_hash(self) -> bytes:
        """Chain hash after the last entry (32 zero bytes for the empty log)."""
        return self.entries[-1].hash if self.entries else ZERO_HASH

    def hash_at(self, size: int) -> bytes:
        """The head hash the log had when it held ``size`` entries."""
        if not 0 <= size <= self.size:
            raise BadField(f"the log has no head at size {size}")
        if size == 0:
            return ZERO_HASH
        return self.entries[size - 1].hash

    def require_extends(self, size: int, head_hash: bytes) -> None:
        """Raise ``LogRewritten`` unless this log extends the head ``(size, head_hash)``."""
        if size < 0:
            raise BadField("a log size is never negative")
        if size > self.size:
            raise LogRewritten(
                f"the relay's key log has {self.size} entries, fewer than the {size} seen before"
            )
        if self.hash_at(size) != head_hash:
            raise LogRewritten()

    # --- applying records ------------------------------------------------------------

    def apply(self, record_bytes: bytes, now: int) -> LogEntry:
        """Validate one record (its exact bytes) and append it; on error nothing changes."""
        item, record = self._validate(record_bytes, now)
        entry = LogEntry(
            index=self.size,
            record=record,
            item=item,
            record_bytes=record_bytes,
            hash=chain_hash(self.head_hash, record_bytes),
        )
        self._mutate(record)
        self.entries.append(entry)
        return entry

    def apply_item(self, item: SignedItem, now: int) -> LogEntry:
        """``apply`` for an item in memory."""
        return self.apply(item.to_bytes(), now)

    def check(self, record_bytes: bytes, now: int) -> Record:
        """Validate without appending (the relay's dry run before it writes)."""
        return self._validate(record_bytes, now)[1]

    def _validate(self, record_bytes: bytes, now: int) -> tuple[SignedItem, Record]:
        # shape first (cheap, and no signature work for junk), then time, then the rules
        # of the record's type, which include checking exactly the required signatures
        item = SignedItem.from_bytes(record_bytes)
        record = parse_record_body(item.body)
        self._check_time(record, now)
        self._check(record, item)
        return item, record

    def _check_time(self, record: Record, now: int) -> None:
        if record.created > now + MAX_SKEW:
            raise LogTimestamp("the record is dated in the future")
        if self.entries and record.created < self.entries[-1].record.created - MAX_SKEW:
            raise LogTimestamp("the record is dated before the log's last entry")

    def _live_org(self, org_id: str) -> OrgState:
        org = self.orgs.get(org_id)
        if org is None:
            raise LogOrgUnknown(f"organisation {org_id!r} is not admitted")
        if org.revoked:
            raise LogOrgRevoked(f"organisation {org_id!r} has been revoked")
        return org

    def _check(self, record: Record, item: SignedItem) -> None:
        RULES[record.type].check(self, record, item)

    def _mutate(self, record: Record) -> None:
        RULES[record.type].effect(self, record)

    def consequences(self, record: Record) -> Consequences:
        """What appending ``record`` ends or starts, for whoever keeps data keyed by it."""
        return RULES[record.type].consequences(record)

    # --- questions -------------------------------------------------------------------

    def org(self, org_id: str) -> OrgState:
        """The organisation, revoked or not; ``LogOrgUnknown`` if never admitted."""
        org = self.orgs.get(org_id)
        if org is None:
            raise LogOrgUnknown(f"organisation {org_id!r} is not part of the network")
        return org

    def live_org(self, org_id: str) -> OrgState:
        """The organisation if it is admitted and not revoked."""
        return self._live_org(org_id)

    def staff(self, staff_id: str) -> StaffState:
        """The staff member's record; ``LogStaffUnknown`` if never enrolled."""
        org = self.orgs.get(org_of(staff_id))
        staff = org.staff.get(staff_id) if org else None
        if staff is None:
            raise LogStaffUnknown(f"staff member {staff_id!r} is not enrolled")
        return staff

    def active_staff(self, staff_id: str) -> StaffState:
        """The staff member if enrolled, not removed, and their org not revoked."""
        self._live_org(org_of(staff_id))
        staff = self.staff(staff_id)
        if not staff.active:
            raise LogStaffRemoved(f"staff member {staff_id!r} has been removed")
        return staff

    def staff_valid_at(self, staff_id: str, when: int) -> bool:
        """Was ``staff_id`` enrolled, not removed, in a non-revoked org, at time ``when``?"""
        try:
            self._staff_valid_at(staff_id, when)
        except SenderInvalid:
            return False
        return True

    def signing_keys_at(self, staff_id: str, when: int) -> dict[str, bytes]:
        """Signing keys of the member's devices valid at ``when``, by device id.

        ``SenderInvalid`` if the member was not valid staff at ``when``.
        """
        staff = self._staff_valid_at(staff_id, when)
        return {d.device_id: d.signing_key for d in staff.devices.values() if d.valid_at(when)}

    def devices(self, staff_id: str) -> list[DeviceState]:
        """The current devices of a current staff member (grants go to each of them)."""
        return self.active_staff(staff_id).current_devices()

    def device(self, staff_id: str, device_id: str) -> DeviceState:
        """A device of a staff member, removed or not; ``LogDeviceUnknown`` if never added."""
        device = self.staff(staff_id).devices.get(device_id)
        if device is None:
            raise LogDeviceUnknown(f"{staff_id!r} has no device {device_id}")
        return device

    def _staff_valid_at(self, staff_id: str, when: int) -> StaffState:
        org = self.orgs.get(org_of(staff_id))
        staff = org.staff.get(staff_id) if org else None
        if org is None or staff is None:
            raise SenderInvalid(f"{staff_id!r} is not an enrolled staff member")
        if when < staff.added_at:
            raise SenderInvalid(f"{staff_id!r} was not yet enrolled at that time")
        if staff.removed_at is not None and when >= staff.removed_at:
            raise SenderInvalid(f"{staff_id!r} had been removed at that time")
        if org.revoked_at is not None and when >= org.revoked_at:
            raise SenderInvalid(f"organisation {org.org_id!r} had been revoked at that time")
        if org.revoked_at is None and org.last_revoked_at is not None \
                and when <= org.last_revoked_at:
            # re-admitted since: what its old keys signed stays distrusted
            raise SenderInvalid(f"organisation {org.org_id!r} was revoked after that time")
        return staff

    def current_epoch(self, org_id: str) -> EpochState:
        """The newest epoch of a live organisation (``LogNoEpoch`` if it has none)."""
        org = self._live_org(org_id)
        if org.current_epoch is None:
            raise LogNoEpoch(f"organisation {org_id!r} has no epoch key yet")
        return org.current_epoch

    def epoch(self, org_id: str, number: int) -> EpochState | None:
        """Epoch ``number`` of ``org_id`` if the log has it."""
        org = self.orgs.get(org_id)
        if org is None:
            return None
        for state in org.epochs:
            if state.number == number:
                return state
        return None


# --- the rules, one entry per record type ------------------------------------------------
#
# Theory of operation: ``KeyLog.apply`` looks up the record's type in ``RULES`` and runs
# the entry's ``check`` (state and signatures; raises, changes nothing), then its
# ``effect`` (changes the state; never raises). ``consequences`` tells a holder of data
# keyed by the log (the relay's store: sessions, queued sends, grants) what the record
# ends, so the relay needs no rules of its own. Adding a record type means a dataclass
# and parser in ``records.py`` and one entry here; nothing else dispatches on the type.


@dataclass(frozen=True)
class Consequences:
    """What an appended record ends or starts beyond the log itself."""

    staff_removed: str | None = None
    """A staff member whose membership ends (their sessions end, sends skip them)."""
    org_revoked: str | None = None
    """An organisation that leaves the network (nothing more may reach it)."""
    org_admitted: str | None = None
    """An organisation admitted or re-admitted (a revocation of it no longer holds)."""
    epoch: tuple[str, int] | None = None
    """``(org_id, number)`` of a new epoch (grants of older epochs may retire)."""
    device_removed: tuple[str, str] | None = None
    """``(staff_id, device_id)`` of a device that leaves (its sessions end at once)."""


@dataclass(frozen=True)
class Rule(Generic[R]):
    """How one record type is checked against the log and what it changes."""

    check: Callable[[KeyLog, R, SignedItem], None]
    effect: Callable[[KeyLog, R], None]
    consequences: Callable[[R], Consequences]


def _require_signatures(item: SignedItem, required: list[bytes]) -> None:
    """Exactly the ``required`` signatures, in that order, each valid over the record.

    The order is fixed so that one record has one encoding, hence one chain hash: a rekey
    signed by the old identity key and the network key could otherwise be logged either way.
    """
    if len(item.sigs) != len(required):
        raise WrongSigner(f"expected {len(required)} signature(s), got {len(item.sigs)}")
    for position, key in enumerate(required):
        if item.sigs[position].key != fingerprint(key):
            if any(sig.key == fingerprint(key) for sig in item.sigs):
                raise WrongSigner("the record's signatures are not in the required order")
            raise WrongSigner(f"not signed by the expected key "
                              f"{format_fingerprint(fingerprint(key))}")
        verify(key, item.sigs[position].sig, labels.RECORD, item.body)


def _check_org_admit(log: KeyLog, record: OrgAdmit, item: SignedItem) -> None:
    existing = log.orgs.get(record.org_id)
    if existing is not None and not existing.revoked:
        raise LogOrgExists(f"organisation {record.org_id!r} is already admitted")
    if existing is not None and record.identity_key in existing.identity_keys:
        # a revoked org's keys may be stolen: re-admission starts from a new identity key
        raise LogKeyReused("a re-admitted organisation needs a new identity key")
    _require_signatures(item, [log.network_key])


def _admit_org(log: KeyLog, record: OrgAdmit) -> None:
    previous = log.orgs.get(record.org_id)
    if previous is None:
        log.orgs[record.org_id] = OrgState(
            org_id=record.org_id,
            name=record.name,
            identity_keys=[record.identity_key],
            admitted_at=record.created,
            admitted_index=log.size,
        )
        return
    # re-admission after revocation: history stays, so ids and epochs stay unique
    previous.name = record.name
    previous.identity_keys.append(record.identity_key)
    previous.admitted_at = record.created
    previous.admitted_index = log.size
    previous.revoked_at = None
    previous.revoke_reason = None
    # settings signed by a key from before the revocation may come from whoever stole it
    previous.settings = None


def _check_org_revoke(log: KeyLog, record: OrgRevoke, item: SignedItem) -> None:
    log.live_org(record.org_id)
    _require_signatures(item, [log.network_key])


def _revoke_org(log: KeyLog, record: OrgRevoke) -> None:
    org = log.orgs[record.org_id]
    org.revoked_at = record.created
    org.revoke_reason = record.reason
    org.last_revoked_at = record.created
    for staff in org.active_staff():
        staff.removed_at = record.created


def _check_org_rekey(log: KeyLog, record: OrgRekey, item: SignedItem) -> None:
    org = log.live_org(record.org_id)
    if record.identity_key in org.identity_keys:
        raise LogKeyReused("the new identity key was used before by this organisation")
    _require_signatures(item, [org.identity_key, log.network_key])


def _rekey_org(log: KeyLog, record: OrgRekey) -> None:
    log.orgs[record.org_id].identity_keys.append(record.identity_key)


def _check_new_keys(log: KeyLog, signing_key: bytes, box_key: bytes) -> None:
    if signing_key in log.enrolled_keys:
        raise LogStaffExists("this signing key is already enrolled for a device")
    if box_key in log.box_keys:
        raise LogKeyReused("this box key was published before")


def _check_staff_add(log: KeyLog, record: StaffAdd, item: SignedItem) -> None:
    org = log.live_org(org_of(record.staff_id))
    if record.staff_id in org.staff:
        raise LogStaffExists(f"staff id {record.staff_id!r} is already in use")
    _check_new_keys(log, record.signing_key, record.box_key)
    _require_signatures(item, [org.identity_key])


def _new_device(log: KeyLog, signing_key: bytes, box_key: bytes, created: int) -> DeviceState:
    log.enrolled_keys.add(signing_key)
    log.box_keys.add(box_key)
    return DeviceState(device_id=fingerprint(signing_key), signing_key=signing_key,
                       box_keys=[(box_key, created)], added_at=created)


def _add_staff(log: KeyLog, record: StaffAdd) -> None:
    # the enrolment keys are the member's first device (SPEC.md section 6.6)
    device = _new_device(log, record.signing_key, record.box_key, record.created)
    log.orgs[org_of(record.staff_id)].staff[record.staff_id] = StaffState(
        staff_id=record.staff_id,
        role=record.role,
        added_at=record.created,
        devices={device.device_id: device},
    )


def _current_member(log: KeyLog, staff_id: str) -> tuple[OrgState, StaffState]:
    org = log.live_org(org_of(staff_id))
    staff = org.staff.get(staff_id)
    if staff is None:
        raise LogStaffUnknown(f"staff member {staff_id!r} is not enrolled")
    if not staff.active:
        raise LogStaffRemoved(f"staff member {staff_id!r} was already removed")
    return org, staff


def _require_member_or_org(org: OrgState, staff: StaffState, item: SignedItem) -> None:
    """One signature: by a current device of the member if it names one, else by the org."""
    if len(item.sigs) != 1:
        raise WrongSigner("this record carries exactly one signature")
    device = staff.device_signing(item.sigs[0].key)
    _require_signatures(item, [device.signing_key if device else org.identity_key])


def _check_staff_remove(log: KeyLog, record: StaffRemove, item: SignedItem) -> None:
    org, staff = _current_member(log, record.staff_id)
    # the org removes a member, or the member removes themselves from any device
    _require_member_or_org(org, staff, item)


def _remove_staff(log: KeyLog, record: StaffRemove) -> None:
    log.orgs[org_of(record.staff_id)].staff[record.staff_id].removed_at = record.created


def _check_epoch(log: KeyLog, record: Epoch, item: SignedItem) -> None:
    org = log.live_org(record.org_id)
    last = org.epochs[-1] if org.epochs else None  # also of a past admission
    if last is not None and record.epoch <= last.number:
        raise LogEpochOrder(f"epoch {record.epoch} is not after the latest epoch {last.number}")
    if any(e.public_key == record.public_key for e in org.epochs):
        raise LogKeyReused("this epoch key was published before by this organisation")
    _require_signatures(item, [org.identity_key])


def _add_epoch(log: KeyLog, record: Epoch) -> None:
    org = log.orgs[record.org_id]
    org.epochs.append(
        EpochState(
            number=record.epoch,
            public_key=record.public_key,
            created=record.created,
            index=log.size,
            identity_index=len(org.identity_keys) - 1,
        )
    )


def _check_device_add(log: KeyLog, record: DeviceAdd, item: SignedItem) -> None:
    org, staff = _current_member(log, record.staff_id)
    _check_new_keys(log, record.signing_key, record.box_key)
    if len(staff.current_devices()) >= MAX_DEVICES:
        raise LogDeviceLimit(f"{record.staff_id!r} has {MAX_DEVICES} devices already")
    _require_member_or_org(org, staff, item)


def _add_device(log: KeyLog, record: DeviceAdd) -> None:
    device = _new_device(log, record.signing_key, record.box_key, record.created)
    log.orgs[org_of(record.staff_id)].staff[record.staff_id].devices[device.device_id] = device


def _current_device(staff: StaffState, device_id: str) -> DeviceState:
    device = staff.devices.get(device_id)
    if device is None:
        raise LogDeviceUnknown(f"{staff.staff_id!r} has no device {device_id}")
    if not device.current:
        raise LogDeviceRemoved(f"device {device_id} of {staff.staff_id!r} was removed")
    return device


def _check_device_remove(log: KeyLog, record: DeviceRemove, item: SignedItem) -> None:
    org, staff = _current_member(log, record.staff_id)
    _current_device(staff, record.device)
    if len(staff.current_devices()) == 1:
        # a member without a device could receive nothing: that is a staff_remove
        raise LogDeviceLast(f"device {record.device} is the last device of {record.staff_id!r}")
    _require_member_or_org(org, staff, item)


def _remove_device(log: KeyLog, record: DeviceRemove) -> None:
    staff = log.orgs[org_of(record.staff_id)].staff[record.staff_id]
    staff.devices[record.device].removed_at = record.created


def _check_box_key(log: KeyLog, record: BoxKey, item: SignedItem) -> None:
    _, staff = _current_member(log, record.staff_id)
    device = _current_device(staff, record.device)
    if record.box_key in log.box_keys:
        raise LogKeyReused("this box key was published before")
    # only the device itself: nobody else may choose the key its grants are sealed to
    _require_signatures(item, [device.signing_key])


def _replace_box_key(log: KeyLog, record: BoxKey) -> None:
    log.box_keys.add(record.box_key)
    staff = log.orgs[org_of(record.staff_id)].staff[record.staff_id]
    staff.devices[record.device].box_keys.append((record.box_key, record.created))


def _check_org_verify(log: KeyLog, record: OrgVerify, item: SignedItem) -> None:
    org = log.live_org(record.org_id)
    if record.subject == record.org_id:
        raise BadField("an organisation does not verify itself")
    subject = log.live_org(record.subject)
    if record.identity_key != subject.identity_key:
        # a statement about an old key must not vouch for whatever key follows it
        raise BadField(f"identity_key is not the current identity key of {record.subject!r}")
    _require_signatures(item, [org.identity_key])


def _org_verified(log: KeyLog, record: OrgVerify) -> None:
    log.orgs[record.org_id].verified[record.subject] = record.identity_key


def _check_org_settings(log: KeyLog, record: OrgSettings, item: SignedItem) -> None:
    org = log.live_org(record.org_id)
    # only the identity key: a member's device (or the relay) must not change what every
    # colleague's client does, e.g. keep mail longer or report reading
    _require_signatures(item, [org.identity_key])


def _set_org_settings(log: KeyLog, record: OrgSettings) -> None:
    log.orgs[record.org_id].settings = record


def _no_consequences(record: Record) -> Consequences:
    return Consequences()


RULES: dict[str, Rule[Any]] = {
    OrgAdmit.type: Rule[OrgAdmit](
        _check_org_admit, _admit_org, lambda r: Consequences(org_admitted=r.org_id)
    ),
    OrgRevoke.type: Rule[OrgRevoke](
        _check_org_revoke, _revoke_org, lambda r: Consequences(org_revoked=r.org_id)
    ),
    OrgRekey.type: Rule[OrgRekey](_check_org_rekey, _rekey_org, _no_consequences),
    StaffAdd.type: Rule[StaffAdd](_check_staff_add, _add_staff, _no_consequences),
    StaffRemove.type: Rule[StaffRemove](
        _check_staff_remove, _remove_staff, lambda r: Consequences(staff_removed=r.staff_id)
    ),
    Epoch.type: Rule[Epoch](
        _check_epoch, _add_epoch, lambda r: Consequences(epoch=(r.org_id, r.epoch))
    ),
    DeviceAdd.type: Rule[DeviceAdd](_check_device_add, _add_device, _no_consequences),
    DeviceRemove.type: Rule[DeviceRemove](
        _check_device_remove, _remove_device,
        lambda r: Consequences(device_removed=(r.staff_id, r.device)),
    ),
    BoxKey.type: Rule[BoxKey](_check_box_key, _replace_box_key, _no_consequences),
    OrgVerify.type: Rule[OrgVerify](_check_org_verify, _org_verified, _no_consequences),
    OrgSettings.type: Rule[OrgSettings](
        _check_org_settings, _set_org_settings, _no_consequences
    ),
}
"""Every record type's rule, keyed by the record's ``type``."""
