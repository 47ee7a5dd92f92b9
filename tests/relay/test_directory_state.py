"""The relay directory's removal bookkeeping, which sends queued behind a removal consult."""

from __future__ import annotations

import time
from pathlib import Path

from protocol import SigningKeyPair, sign_record
from protocol.records import OrgAdmit, OrgRevoke
from relay.service.directory import Directory
from relay.store import SqliteStore
from tests.support.actors import rand


async def test_revocation_and_readmission_are_tracked_and_survive_a_restart(
        tmp_path: Path) -> None:
    network = SigningKeyPair.from_seed(rand(32))
    log_key = SigningKeyPair.from_seed(rand(32))
    now = int(time.time())

    def record(rec: OrgAdmit | OrgRevoke) -> dict[str, object]:
        return sign_record(rec, network).to_json()

    store = SqliteStore(tmp_path / "relay.db")
    await store.open()
    try:
        directory = Directory(store, network.public, log_key, max_ttl=60, status_grace=60)
        await directory.load(now)
        await directory.append(record(OrgAdmit("org-x", "X", rand(32), now)), now)
        assert directory.revoked_orgs == set()
        await directory.append(record(OrgRevoke("org-x", "left", now)), now)
        assert directory.revoked_orgs == {"org-x"}
        again = Directory(store, network.public, log_key, max_ttl=60, status_grace=60)
        await again.load(now)
        assert again.revoked_orgs == {"org-x"}
        await directory.append(record(OrgAdmit("org-x", "X again", rand(32), now)), now)
        assert directory.revoked_orgs == set()
    finally:
        await store.close()
