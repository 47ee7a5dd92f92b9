"""Protocol-level actors for relay tests: a network office, orgs, staff, and a thin HTTP API.

Built with ``protocol`` directly (not ``client/``), so relay tests do not depend on the
client library: records are made with ``sign_record``, grants with ``make_grant``,
envelopes with ``seal_message``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from protocol import (
    BoxKeyPair,
    Epoch,
    MessagePayload,
    OrgAdmit,
    OrgRevoke,
    SigningKeyPair,
    StaffAdd,
    StaffRemove,
    b64decode,
    b64encode,
    make_grant,
    seal_message,
    sign_auth,
    sign_record,
)
from protocol.encoding import SignedItem
from protocol.message import EMPTY_LOG, LogPosition

UNREAD_LOG: LogPosition = EMPTY_LOG
"""The log position these grants and messages state: the relay can neither read nor check it
(the client compares it with its log, ``tests/integration``)."""


def now() -> int:
    return int(time.time())


def rand(n: int = 32) -> bytes:
    return os.urandom(n)


@dataclass
class Staff:
    """One staff member's keys."""

    staff_id: str
    signing: SigningKeyPair
    box: BoxKeyPair
    role: str = "staff"

    @property
    def org_id(self) -> str:
        return self.staff_id.split("/", 1)[0]


@dataclass
class Org:
    """One organisation's identity key, staff and epoch secrets."""

    org_id: str
    identity: SigningKeyPair
    staff: dict[str, Staff] = field(default_factory=dict)
    epochs: dict[int, BoxKeyPair] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return max(self.epochs) if self.epochs else 0

    def new_staff(self, name: str, role: str = "staff") -> tuple[Staff, SignedItem]:
        person = Staff(f"{self.org_id}/{name}", SigningKeyPair.from_seed(rand()),
                       BoxKeyPair.from_seed(rand()), role)
        self.staff[person.staff_id] = person
        record = StaffAdd(person.staff_id, person.signing.public, person.box.public, role, now())
        return person, sign_record(record, self.identity)

    def remove(self, staff_id: str) -> SignedItem:
        return sign_record(StaffRemove(staff_id, now()), self.identity)

    def new_epoch(self) -> SignedItem:
        number = self.epoch + 1
        self.epochs[number] = BoxKeyPair.from_seed(rand())
        return sign_record(Epoch(self.org_id, number, self.epochs[number].public, now()),
                           self.identity)

    def grants(self, epoch: int | None = None) -> list[dict[str, str]]:
        epoch = epoch or self.epoch
        secret = self.epochs[epoch].secret
        return [{"staff_id": s.staff_id, "device": s.signing.fingerprint,
                 "grant": b64encode(make_grant(self.identity, self.org_id, epoch, secret,
                                               s.staff_id, s.box.public, rand(),
                                               device_id=s.signing.fingerprint,
                                               log=UNREAD_LOG))}
                for s in self.staff.values()]


def admit(network_key: SigningKeyPair, org_id: str) -> tuple[Org, SignedItem]:
    org = Org(org_id, SigningKeyPair.from_seed(rand()))
    return org, sign_record(OrgAdmit(org_id, org_id.title(), org.identity.public, now()),
                            network_key)


def revoke(network_key: SigningKeyPair, org_id: str) -> SignedItem:
    return sign_record(OrgRevoke(org_id, "test", now()), network_key)


def envelope(sender: Staff, recipient: Org, body: str = "hello", *, epoch: int | None = None,
             to: tuple[str, ...] | None = None) -> dict[str, Any]:
    """One sealed envelope from ``sender`` to ``recipient``'s current epoch."""
    epoch = epoch or recipient.epoch
    sent = now()
    payload = MessagePayload(id=rand(16), from_org=sender.org_id, from_staff=sender.staff_id,
                             to=to or (recipient.org_id,), sent=sent, subject="s", body=body,
                             thread=rand(16), expires=sent + 3600, log=UNREAD_LOG)
    sealed = seal_message(payload, sender.signing, recipient.org_id, epoch,
                          recipient.epochs[epoch].public, rand())
    return {"to_org": recipient.org_id, "epoch": epoch, "sealed": b64encode(sealed)}


class Api:
    """A thin HTTP helper over aiohttp: JSON in, (status, JSON or text) out."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http
        self.origin = url

    async def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                   raw: bytes | None = None, headers: dict[str, str] | None = None
                   ) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"headers": hdrs}
        if raw is not None:
            kwargs["data"] = raw
        elif body is not None:
            kwargs["json"] = body
        async with self.http.request(method, self.url + path, **kwargs) as answer:
            text = await answer.text()
            kind = answer.headers.get("Content-Type", "")
            if "json" in kind:
                import json

                return answer.status, json.loads(text)
            return answer.status, text

    async def ok(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                 expect: int = 200) -> Any:
        status, answer = await self.call(method, path, body, token=token)
        assert status == expect, (status, answer)
        return answer

    async def append(self, item: SignedItem) -> Any:
        return await self.ok("POST", "/v1/log", {"record": item.to_json()}, expect=201)

    async def login(self, staff: Staff) -> str:
        challenge = await self.ok("POST", "/v1/auth/challenge", {"staff_id": staff.staff_id})
        nonce = b64decode(challenge["nonce"])
        info = await self.ok("GET", "/v1/info")
        signature = sign_auth(staff.signing, info["origin"], nonce)
        answer = await self.ok("POST", "/v1/auth/session", {
            "staff_id": staff.staff_id, "nonce": challenge["nonce"],
            "signature": b64encode(signature)})
        return str(answer["token"])

    async def setup_org(self, network_key: SigningKeyPair, org_id: str,
                        names: tuple[str, ...] = ("admin", "alice")) -> Org:
        """Admit an org, enrol ``names`` (the first as admin), publish epoch 1 and grants."""
        org, item = admit(network_key, org_id)
        await self.append(item)
        for i, name in enumerate(names):
            _, record = org.new_staff(name, "admin" if i == 0 else "staff")
            await self.append(record)
        await self.append(org.new_epoch())
        admin = next(iter(org.staff.values()))
        token = await self.login(admin)
        await self.ok("PUT", f"/v1/grants/{org_id}/{org.epoch}", {"grants": org.grants()},
                      token=token, expect=201)
        return org

    async def send(self, token: str, envelopes: list[dict[str, Any]], *, ttl: int = 3600,
                   key: bytes | None = None, expect: int = 201) -> Any:
        body = {"idempotency_key": b64encode(key or rand(16)), "ttl": ttl, "envelopes": envelopes}
        return await self.ok("POST", "/v1/messages", body, token=token, expect=expect)
