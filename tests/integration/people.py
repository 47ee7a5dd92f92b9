"""Building a small network through the client library: office, orgs, staff.

Every identity is a real profile (keystore + mailbox) under one home folder, and every
step goes through ``client.Client`` against the real relay, as a person's ``kok`` would.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from client import Client
from client.profile import NetworkAnchor

PASSPHRASE = "test passphrase"  # the relay fixture's network profile uses the same


def unique(prefix: str) -> str:
    """An org id no other test in this session uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def anchor_of(relay: Any) -> NetworkAnchor:
    return NetworkAnchor.from_json(relay.network_anchor)


async def open_office(relay: Any) -> Client:
    """The network office profile the relay fixture created."""
    return await Client.open(relay.home, "network", PASSPHRASE)


async def new_org(relay: Any, home: Path, office: Client, org_id: str) -> Client:
    """An admitted, active organisation; returns its admin's opened client."""
    _, request = await Client.new_org(home, org_id, PASSPHRASE, org_id=org_id,
                                      name=f"Beratungsstelle {org_id}", relay=relay.url,
                                      network=anchor_of(relay))
    await office.network.admit(request)
    admin = await Client.open(home, org_id, PASSPHRASE)
    await admin.org.activate()
    return admin


async def new_staff(relay: Any, home: Path, admin: Client, name: str) -> Client:
    """An enrolled staff member of the admin's org; returns their opened client."""
    org_id = str(admin.org_id)
    profile = f"{org_id}.{name}"
    _, request = await Client.new_staff(home, profile, PASSPHRASE, org_id=org_id, name=name,
                                        relay=relay.url, network=anchor_of(relay))
    await admin.org.enrol(request)
    return await Client.open(home, profile, PASSPHRASE)


async def close_all(*clients: Client) -> None:
    for client in clients:
        await client.close()
