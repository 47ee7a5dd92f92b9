"""The key-log mirror against a relay that lies: rewrites, truncation, forgery, bad heads.

The "relay" here is a page source built from real signed records (no network), because
these attacks need a relay that misbehaves on purpose; the honest path is covered against
the real relay in tests/integration.
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from client.directory import Directory
from client.errors import VerificationError
from client.mailbox import MailboxStore
from protocol.encoding import SignedItem, b64encode
from protocol.keylog import KeyLog, sign_head
from protocol.keys import SigningKeyPair
from protocol.records import OrgAdmit, sign_record

NOW = 1_800_000_000


def key() -> SigningKeyPair:
    return SigningKeyPair.from_seed(secrets.token_bytes(32))


class LogPages:
    """Serves ``GET /v1/log`` pages from a list of record items, with a signed head."""

    def __init__(self, network: SigningKeyPair, log_key: SigningKeyPair) -> None:
        self.network = network
        self.log_key = log_key
        self.items: list[SignedItem] = []

    def admit(self, org_id: str, signer: SigningKeyPair | None = None) -> None:
        record = OrgAdmit(org_id=org_id, name=org_id, identity_key=key().public, created=NOW)
        self.items.append(sign_record(record, signer or self.network))

    async def log(self, after: int, limit: int = 1000) -> dict[str, Any]:
        chain = KeyLog(self.network.public)
        hashes = []
        for item in self.items:
            try:
                hashes.append(chain.apply_item(item, NOW).hash)
            except Exception:  # a forged record: a lying relay serves it anyway
                hashes.append(bytes(32))
        head_hash = hashes[-1] if hashes else bytes(32)
        head = sign_head(self.log_key, len(self.items), head_hash, NOW)
        entries = [{"index": i, "record": self.items[i].to_json(), "hash": b64encode(hashes[i])}
                   for i in range(after, min(len(self.items), after + limit))]
        return {"entries": entries, "head": {"size": head.size, "hash": b64encode(head.hash),
                                             "time": head.time,
                                             "signature": b64encode(head.signature)}}


@pytest.fixture
async def mirror(tmp_path: Path):  # type: ignore[no-untyped-def]
    network, log_key = key(), key()
    store = await MailboxStore.open(tmp_path / "state.db", secrets.token_bytes(32))
    directory = Directory(network.public, store, clock=lambda: NOW)
    yield directory, LogPages(network, log_key), store
    await store.close()


async def test_honest_log_is_mirrored_page_by_page(mirror: Any) -> None:
    directory, pages, store = mirror
    for n in range(5):
        pages.admit(f"org-{n}")
    assert await directory.sync(pages, pages.log_key.public) == 5
    pages.admit("org-5")
    assert await directory.sync(pages, pages.log_key.public) == 1
    assert directory.log.size == 6 and len(await store.log_entries()) == 6
    assert (await store.head()).size == 6
    assert directory.head_header() == f"6:{b64encode(directory.log.head_hash)}"


async def test_a_rewritten_past_entry_stops_the_sync(mirror: Any) -> None:
    directory, pages, store = mirror
    pages.admit("org-a")
    pages.admit("org-b")
    await directory.sync(pages, pages.log_key.public)
    pages.items[1] = sign_record(OrgAdmit(org_id="org-b", name="evil", identity_key=key().public,
                                          created=NOW), pages.network)
    pages.admit("org-c")
    with pytest.raises(VerificationError) as err:
        await directory.sync(pages, pages.log_key.public)
    assert err.value.code == "log_rewritten"
    assert directory.log.size == 2 and len(await store.log_entries()) == 2
    assert "org-c" not in directory.log.orgs


async def test_a_truncated_log_stops_the_sync(mirror: Any) -> None:
    directory, pages, _ = mirror
    pages.admit("org-a")
    pages.admit("org-b")
    await directory.sync(pages, pages.log_key.public)
    del pages.items[1]
    with pytest.raises(VerificationError) as err:
        await directory.sync(pages, pages.log_key.public)
    assert err.value.code == "log_rewritten"


async def test_a_record_not_signed_by_the_network_is_refused(mirror: Any) -> None:
    directory, pages, store = mirror
    pages.admit("org-a")
    pages.admit("org-x", signer=key())  # the relay invents an organisation
    with pytest.raises(VerificationError) as err:
        await directory.sync(pages, pages.log_key.public)
    assert err.value.code == "wrong_signer"
    assert directory.log.size == 0 and await store.log_entries() == []


async def test_a_head_signed_by_another_key_is_refused(mirror: Any) -> None:
    directory, pages, store = mirror
    pages.admit("org-a")
    with pytest.raises(VerificationError) as err:
        await directory.sync(pages, key().public)
    assert err.value.code == "log_head_invalid"
    assert await store.head() is None


async def test_a_tampered_local_mirror_is_caught_on_load(tmp_path: Path, mirror: Any) -> None:
    directory, pages, store = mirror
    pages.admit("org-a")
    pages.admit("org-b")
    await directory.sync(pages, pages.log_key.public)
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute("DELETE FROM log_entries WHERE idx = 1")
    db.commit()
    db.close()
    fresh = Directory(pages.network.public, store, clock=lambda: NOW)
    with pytest.raises(VerificationError) as err:
        await fresh.load()
    assert err.value.code == "log_rewritten"
