"""Helpers for the key-lifecycle and lying-relay tests: a small network, raw relay calls.

Every identity is a real profile (keystore, mailbox) under one home folder, built through
``client.Client`` against a real relay process. ``clock`` lets a test build a network
"in the past" on a fresh relay, so that age-based rules (scheduled rotation) can be tried
without waiting and without sending the relay a record dated in the future.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import nacl.exceptions

from client import Client
from client.keystore import Keystore
from client.profile import NetworkAnchor
from protocol.errors import DecryptFailed
from protocol.sealedbox import open_sealed

PASSPHRASE = "test passphrase"  # the relay fixture's network profile uses the same
Clock = Callable[[], float]


def unique(prefix: str) -> str:
    """An org id no other test of the session uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def shifted(seconds: float) -> Clock:
    """A clock ``seconds`` ahead of (or, negative, behind) the real one."""
    return lambda: time.time() + seconds


@dataclass
class Network:
    """A network office and the orgs and staff a test made, all opened as clients."""

    relay: Any
    home: Path
    clock: Clock = time.time
    office: Client | None = None
    people: dict[str, Client] = field(default_factory=dict)

    async def open_office(self) -> Client:
        self.office = await Client.open(self.relay.home, "network", PASSPHRASE,
                                        clock=self.clock)
        return self.office

    async def org(self, prefix: str) -> Client:
        """An admitted, active organisation; returns its admin (profile = org id)."""
        office = self.office or await self.open_office()
        org_id = unique(prefix)
        anchor = NetworkAnchor.from_json(self.relay.network_anchor)
        _, request = await Client.new_org(self.home, org_id, PASSPHRASE, org_id=org_id,
                                          name=f"Beratungsstelle {prefix}", relay=self.relay.url,
                                          network=anchor)
        await office.network.admit(request)
        admin = await Client.open(self.home, org_id, PASSPHRASE, clock=self.clock)
        await admin.org.activate()
        self.people[org_id] = admin
        return admin

    async def staff(self, admin: Client, name: str) -> Client:
        """An enrolled staff member of ``admin``'s org (profile ``<org>.<name>``)."""
        org_id = str(admin.org_id)
        profile = f"{org_id}.{name}"
        anchor = NetworkAnchor.from_json(self.relay.network_anchor)
        _, request = await Client.new_staff(self.home, profile, PASSPHRASE, org_id=org_id,
                                            name=name, relay=self.relay.url, network=anchor)
        await admin.org.enrol(request)
        person = await Client.open(self.home, profile, PASSPHRASE, clock=self.clock)
        self.people[profile] = person
        return person

    async def reopen(self, client: Client, *, relay: str | None = None,
                     clock: Clock | None = None) -> Client:
        """Close ``client`` and open its profile again (through another relay, clock)."""
        home, name = client.profile.home, client.profile.name
        await client.close()
        again = await Client.open(home, name, PASSPHRASE, relay=relay, clock=clock or time.time)
        if relay is not None:
            await again.api()  # connecting stores the relay in profile.json, also for kok
        for key, value in list(self.people.items()):
            if value is client:
                self.people[key] = again
        return again

    async def close(self) -> None:
        for client in [self.office, *self.people.values()]:
            if client is not None:
                await client.close()


async def relay_call(url: str, method: str, path: str, *, token: str | None = None,
                     body: Any = None) -> tuple[int, Any]:
    """One raw request to a relay: (status, JSON body or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url + path, json=body, headers=headers) as answer:
            data = await answer.json(content_type=None) if answer.content_length != 0 else None
            return answer.status, data


def secrets_that_open(keystore_path: Path, public_key: bytes, sealed: bytes) -> list[str]:
    """Names of the secrets in a keystore file that open ``sealed`` (sealed to ``public_key``)."""
    keystore = Keystore.open(keystore_path, PASSPHRASE)
    opened = []
    for name, secret in keystore.secrets.items():
        if len(secret) != 32:
            continue
        try:
            open_sealed(public_key, secret, sealed)
        except (DecryptFailed, nacl.exceptions.CryptoError):
            continue
        opened.append(name)
    return opened
