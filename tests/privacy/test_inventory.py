"""Every stored column, file, keystore entry and log field is in docs/privacy.md, and back.

The stores are read as a full exchange against a real relay left them (``exchange.py``).
A failure names what to add to (or remove from) docs/privacy.md; that is the workflow the
document's maintainer note describes.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from client.keystore import Keystore
from tests.privacy.exchange import Exchange, relay_files
from tests.privacy.inventory import inventory, unlisted, unseen
from tests.privacy.logfields import log_fields
from tests.support.relayproc import PASSPHRASE

# Listed items a finished exchange cannot show, each with the reason.
TRANSIENT = {
    "blobs/<id>.part": "exists only while an upload is unfinished",
    "state.db-journal": "exists only while a write to the local mailbox is in progress",
    "outbox/<message id>/<n>.kokdrop": "exists only while a message with attachments waits "
                                       "for the relay (tests/integration/test_outbox.py)",
    "secrets.identity/<fingerprint>": "exists only during an identity rekey",
    "meta.forgotten": "written once an epoch secret is deleted for good, a max TTL after "
                      "rotation (tests/integration/test_lifecycle.py covers that rule)",
}


def columns(database: Path) -> set[str]:
    """``table.column`` for every column of every table, read from the live file."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {f"{table}.{row[1]}" for table in tables
                for row in db.execute(f"PRAGMA table_info('{table}')")}
    finally:
        db.close()


def assert_matches(name: str, found: set[str], where: str) -> None:
    listed = inventory(name)
    missing = unlisted(found, listed)
    assert not missing, (
        f"{where} holds {sorted(missing)}, which docs/privacy.md (inventory {name!r}) does not "
        "list: add a row saying what it holds, its form, who could link it and what deletes it")
    stale = unseen(listed, found) - set(TRANSIENT)
    assert not stale, (
        f"docs/privacy.md (inventory {name!r}) lists {sorted(stale)}, which {where} no longer "
        "holds: remove the rows (or, if it is transient, say why in tests/privacy)")


def test_relay_database_columns_are_all_listed(exchange: Exchange) -> None:
    assert_matches("relay-sqlite", columns(exchange.relay.db_path), "the relay's SQLite database")


def test_relay_files_are_all_listed(exchange: Exchange) -> None:
    found = exchange.relay_files_running | relay_files(exchange.relay.dir)
    assert any(name.endswith(".blob") for name in found)  # the exchange did store a file
    assert_matches("relay-files", found, "the relay directory")


def test_device_files_are_all_listed(exchange: Exchange) -> None:
    found = {p.relative_to(folder).as_posix() for folder in exchange.profiles.values()
             for p in folder.rglob("*") if p.is_file()}
    assert_matches("client-files", found, "a profile folder")


def test_local_mailbox_columns_are_all_listed(exchange: Exchange) -> None:
    found = set().union(*(columns(folder / "state.db") for folder in exchange.profiles.values()))
    assert_matches("client-sqlite", found, "the local mailbox (state.db)")


def test_keystore_entries_are_all_listed(exchange: Exchange) -> None:
    found: set[str] = set()
    for folder in exchange.profiles.values():
        keystore = Keystore.open(folder / "keystore", PASSPHRASE)
        found |= {f"secrets.{name}" for name in keystore.secrets}
        found |= {f"meta.{name}" for name in keystore.meta}
    assert any(name.startswith("secrets.epoch/") for name in found)
    assert_matches("keystore", found, "a keystore")


def test_profile_json_fields_are_all_listed(exchange: Exchange) -> None:
    found: set[str] = set()
    for folder in exchange.profiles.values():
        found |= set(json.loads((folder / "profile.json").read_text("utf-8")))
    assert_matches("profile-json", found, "profile.json")


def test_every_field_the_relay_can_log_is_listed() -> None:
    """Read from the source, so an event the exchange never triggers is covered too."""
    listed = inventory("relay-log")
    found = {f"{event}.{field}" for event, fields in log_fields().items() for field in fields}
    found |= {event for event, fields in log_fields().items() if not fields}
    missing = unlisted(found, listed)
    assert not missing, (f"the relay can log {sorted(missing)}, which docs/privacy.md "
                         "(inventory 'relay-log') does not list")
    code = found | {f"*.{field}" for field in ("event", "level", "timestamp")}
    stale = unseen(listed, code)
    assert not stale, f"docs/privacy.md lists log fields no code writes: {sorted(stale)}"


def test_every_field_in_the_relays_real_log_is_listed(exchange: Exchange) -> None:
    """What the running relay actually wrote, including the processors' own fields."""
    listed = inventory("relay-log")
    events = exchange.relay.log_events()
    assert {"access", "started", "stopped"} <= {e["event"] for e in events}
    found = set()
    for event in events:
        for field in event:
            name = f"*.{field}" if field in ("event", "level", "timestamp") else \
                f"{event['event']}.{field}"
            found.add(name)
    missing = unlisted(found, listed)
    assert not missing, (f"the relay's log holds {sorted(missing)}, which docs/privacy.md "
                         "(inventory 'relay-log') does not list")
