"""A small deterministic network for protocol tests: keys from names, records applied in order.

Everything is derived from fixed names, so a failing test shows the same bytes every run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from protocol import (
    BoxKeyPair,
    Epoch,
    KeyLog,
    MessagePayload,
    OrgAdmit,
    OrgRekey,
    OrgRevoke,
    SignedItem,
    SigningKeyPair,
    StaffAdd,
    StaffRemove,
    seal_message,
    sign_record,
)
from protocol.grants import make_grant
from protocol.message import LogPosition
from protocol.records import countersign

T0 = 1_700_000_000


def seed(name: str) -> bytes:
    """32 bytes derived from ``name`` (test keys, nonces, ephemeral seeds)."""
    return hashlib.blake2b(f"kok-test/{name}".encode(), digest_size=32).digest()


@dataclass
class Staff:
    """A staff member's keys."""

    staff_id: str
    signing: SigningKeyPair
    box: BoxKeyPair


@dataclass
class Org:
    """An organisation's keys as its admins hold them."""

    org_id: str
    identity: SigningKeyPair
    staff: dict[str, Staff] = field(default_factory=dict)
    epochs: dict[int, BoxKeyPair] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        """The newest epoch number this org made."""
        return max(self.epochs)


class World:
    """A network office, its key log, and helpers that append records at ``now``."""

    def __init__(self) -> None:
        self.network = SigningKeyPair.from_seed(seed("network"))
        self.log = KeyLog(self.network.public)
        self.now = T0
        self.orgs: dict[str, Org] = {}
        self._counter = 0

    def fresh(self, purpose: str) -> bytes:
        """A new deterministic 32-byte value (never the same twice in one world)."""
        self._counter += 1
        return seed(f"{purpose}/{self._counter}")

    def apply(self, item: SignedItem) -> None:
        self.log.apply_item(item, self.now)

    def admit(self, org_id: str, *, with_epoch: bool = True) -> Org:
        org = Org(org_id, SigningKeyPair.from_seed(seed(f"identity/{org_id}")))
        self.orgs[org_id] = org
        self.apply(sign_record(OrgAdmit(org_id, org_id.upper(), org.identity.public, self.now),
                               self.network))
        if with_epoch:
            self.new_epoch(org)
        return org

    def add_staff(self, org: Org, name: str, role: str = "staff") -> Staff:
        staff_id = f"{org.org_id}/{name}"
        staff = Staff(staff_id, SigningKeyPair.from_seed(seed(f"signing/{staff_id}")),
                      BoxKeyPair.from_seed(seed(f"box/{staff_id}")))
        org.staff[name] = staff
        self.apply(sign_record(StaffAdd(staff_id, staff.signing.public, staff.box.public, role,
                                        self.now), org.identity))
        return staff

    def new_epoch(self, org: Org) -> int:
        number = (max(org.epochs) + 1) if org.epochs else 1
        pair = BoxKeyPair.from_seed(seed(f"epoch/{org.org_id}/{number}/{self.now}"))
        org.epochs[number] = pair
        self.apply(sign_record(Epoch(org.org_id, number, pair.public, self.now), org.identity))
        return number

    def remove_staff(self, org: Org, staff: Staff, *, rotate: bool = True) -> None:
        self.apply(sign_record(StaffRemove(staff.staff_id, self.now), org.identity))
        if rotate:
            self.new_epoch(org)

    def revoke(self, org: Org) -> None:
        self.apply(sign_record(OrgRevoke(org.org_id, "test", self.now), self.network))

    def rekey(self, org: Org, name: str) -> None:
        new = SigningKeyPair.from_seed(seed(f"identity/{org.org_id}/{name}"))
        item = countersign(sign_record(OrgRekey(org.org_id, new.public, self.now), org.identity),
                           self.network)
        self.apply(item)
        org.identity = new

    def payload(self, sender: Staff, to: tuple[str, ...], *, body: str = "Hallo",
                sent: int | None = None, ttl: int = 7 * 86400) -> MessagePayload:
        sent = self.now if sent is None else sent
        return MessagePayload(
            id=self.fresh("id")[:16], from_org=sender.staff_id.split("/")[0],
            from_staff=sender.staff_id, to=to, sent=sent, subject="Anfrage", body=body,
            thread=self.fresh("thread")[:16], expires=sent + ttl, log=LogPosition.of(self.log),
        )

    def seal(self, payload: MessagePayload, sender: Staff, to: Org,
             epoch: int | None = None) -> bytes:
        number = to.epoch if epoch is None else epoch
        return seal_message(payload, sender.signing, to.org_id, number,
                            to.epochs[number].public, self.fresh("ephemeral"))

    def grant(self, org: Org, staff: Staff, epoch: int | None = None) -> bytes:
        number = org.epoch if epoch is None else epoch
        return make_grant(org.identity, org.org_id, number, org.epochs[number].secret,
                          staff.staff_id, staff.box.public, self.fresh("grant"),
                          device_id=staff.signing.fingerprint, log=LogPosition.of(self.log))


def standard_world() -> tuple[World, Org, Org, Staff, Staff]:
    """Two orgs with an epoch each; alice in org-a, bob in org-b."""
    world = World()
    a, b = world.admit("org-a"), world.admit("org-b")
    alice, bob = world.add_staff(a, "alice"), world.add_staff(b, "bob")
    world.now += 60
    return world, a, b, alice, bob
