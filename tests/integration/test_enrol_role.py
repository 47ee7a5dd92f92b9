"""Attack: a person writes ``"role": "admin"`` into their own enrolment request.

The request is self-signed by the requester, so the role in it is the requester's wish,
not the org admin's decision. The admin compares a fingerprint, not the role; an admin
role lets its holder replace the org's epoch grants at the relay. Enrolling such a request
must need the admin's explicit consent (``enrol(..., admin=True)``, ``kok org enrol
--admin``); without it nothing is appended to the key log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import UsageError
from tests.integration.people import (
    PASSPHRASE,
    anchor_of,
    close_all,
    new_org,
    open_office,
    unique,
)


async def test_a_self_granted_admin_role_is_not_enrolled_silently(
        shared_relay: Any, tmp_path: Path) -> None:
    office = await open_office(shared_relay)
    org = await new_org(shared_relay, tmp_path, office, unique("rolle"))
    try:
        org_id = str(org.org_id)
        _, request = await Client.new_staff(tmp_path, "mallory", PASSPHRASE, org_id=org_id,
                                            name="Mallory", relay=shared_relay.url,
                                            network=anchor_of(shared_relay), role="admin")
        size = org.directory.log.size

        with pytest.raises(UsageError) as refused:
            await org.org.enrol(request)
        assert refused.value.code == "request_asks_admin"
        assert "admin" in refused.value.message
        await org.sync_log()
        assert org.directory.log.size == size  # nothing appended
        assert f"{org_id}/mallory" not in org.directory.log.orgs[org_id].staff

        await org.org.enrol(request, admin=True)  # the admin's own decision
        assert org.directory.log.orgs[org_id].staff[f"{org_id}/mallory"].role == "admin"
    finally:
        await close_all(office, org)


async def test_the_admin_decides_the_role_not_the_request(
        shared_relay: Any, tmp_path: Path) -> None:
    office = await open_office(shared_relay)
    org = await new_org(shared_relay, tmp_path, office, unique("rolle"))
    try:
        org_id = str(org.org_id)
        _, request = await Client.new_staff(tmp_path, "pia", PASSPHRASE, org_id=org_id,
                                            name="Pia", relay=shared_relay.url,
                                            network=anchor_of(shared_relay))
        await org.org.enrol(request, admin=True)
        assert org.directory.log.orgs[org_id].staff[f"{org_id}/pia"].role == "admin"
    finally:
        await close_all(office, org)
