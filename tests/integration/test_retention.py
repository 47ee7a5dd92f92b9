"""Local retention on a staff device, keep, and export, through a real relay.

A message is deleted from the device ``retention_days`` (the own org's ``org_settings``,
SPEC.md section 6.8) after it was opened there, an unopened one after three times as long,
a kept one never; the row's sealed bytes are gone from ``state.db`` (``secure_delete``),
and only a content-free tombstone stops the relay from bringing it back. Time moves by
opening the profile with a clock days ahead: every opening purges what is due.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import RelayRefused, UsageError
from protocol.records import OrgSettings, sign_record
from tests.integration.kokcli import kok, ok
from tests.support.lifecycle import Network, shifted

DAY = 86400


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


def sealed_row(client: Client, message_id: str) -> bytes:
    """The message's sealed ``box`` bytes as they lie in ``state.db``."""
    with sqlite3.connect(client.profile.state_path) as db:
        row = db.execute("SELECT box FROM messages WHERE id = ?", (message_id,)).fetchone()
    assert row is not None
    return bytes(row[0])


def file_bytes(client: Client) -> bytes:
    return Path(client.profile.state_path).read_bytes()


async def test_read_messages_go_after_the_orgs_retention_kept_and_unread_ones_stay(
        net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    s = str(sued.org_id)
    read_id = await anna.send(to=[s], subject="Fall 17", body="MARKER-READ Termin am Montag")
    kept_id = await anna.send(to=[s], subject="Fall 18", body="MARKER-KEPT Vollmacht")
    unread_id = await anna.send(to=[s], subject="Fall 19", body="MARKER-UNREAD Rückruf")
    await sued.set_org_settings(retention_days=1)
    await ben.sync()
    opened = await ben.read(read_id)
    assert opened.deletes_at is not None and not opened.kept
    assert opened.deletes_at - ben.now() in range(DAY - 5, DAY + 1)
    await ben.read(kept_id)
    assert (await ben.keep(kept_id[:8])).kept
    read_box, kept_box = sealed_row(ben, read_id), sealed_row(ben, kept_id)
    assert read_box in file_bytes(ben)

    # two days later: the read message is gone, the kept and the unread one stay
    ben = await net.reopen(ben, clock=shifted(2 * DAY))
    ids = {m.id for m in await ben.inbox()}
    assert read_id not in ids and {kept_id, unread_id} <= ids
    assert await ben.search("MARKER-READ") == []
    assert [m.id for m in await ben.search("MARKER-KEPT")] == [kept_id]
    with pytest.raises(UsageError) as gone:
        await ben.read(read_id)
    assert gone.value.code == "unknown_message"
    with pytest.raises(UsageError):
        await ben.thread(read_id)
    data = file_bytes(ben)
    assert read_box not in data and read_box[:32] not in data  # overwritten, not just unlinked
    assert kept_box in data
    assert not Path(f"{ben.profile.state_path}-journal").exists()
    # the tombstone keeps no content, only what refuses the same message sent again
    with sqlite3.connect(ben.profile.state_path) as db:
        tombstones = db.execute("SELECT replay_key, relay_id, until FROM purged").fetchall()
    assert len(tombstones) == 1 and b"MARKER" not in repr(tombstones).encode()
    relay_id = tombstones[0][1]
    assert await ben.store.seen_relay_id(relay_id)

    # the unread one goes after three times the retention since it arrived
    ben = await net.reopen(ben, clock=shifted(4 * DAY))
    ids = {m.id for m in await ben.inbox()}
    assert unread_id not in ids and kept_id in ids
    # taking the keep mark away lets retention have it
    await ben.keep(kept_id, keep=False)
    assert (await ben.purge()).messages == 1
    assert await ben.inbox() == []
    assert kept_box not in file_bytes(ben)


async def test_settings_from_a_forged_record_are_ignored(net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    s = str(sued.org_id)
    message_id = await anna.send(to=[s], subject="Fall 20", body="bleibt 30 Tage")
    await ben.sync()
    await ben.read(message_id)
    forged = OrgSettings(org_id=s, read_reports=True, retention_days=1, created=ben.now())
    with pytest.raises(RelayRefused) as refused:
        await (await ben.api()).append(sign_record(forged, ben.signing_key()))
    assert refused.value.code == "wrong_signer"
    await ben.sync()
    ben = await net.reopen(ben, clock=shifted(2 * DAY))
    assert (await ben.org_settings(refresh=False)).retention_days == 30
    assert [m.id for m in await ben.inbox()] == [message_id]
    ben = await net.reopen(ben, clock=shifted(31 * DAY))  # the default holds
    assert await ben.inbox() == []


async def test_export_writes_the_text_and_the_attachment(net: Network, tmp_path: Path) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    source = tmp_path / "bescheid.pdf"
    source.write_bytes(b"%PDF-1.4 Bescheid " * 5000)
    message_id = await anna.send(to=[str(sued.org_id)], subject="Bescheid Fall 21",
                                 body="Anbei der Bescheid.\nGrüße", attachments=[source])
    await ben.sync()
    done = await ben.export(message_id[:8], tmp_path / "akte" / "2026-21")
    text = done.text_file.read_text("utf-8")
    assert "Subject: Bescheid Fall 21" in text and text.endswith("Anbei der Bescheid.\nGrüße\n")
    assert message_id in text and "bescheid.pdf" in text
    assert [f.name for f in done.files] == ["bescheid.pdf"] and done.attachments_missing is None
    assert (done.folder / "bescheid.pdf").read_bytes() == source.read_bytes()
    assert oct(done.text_file.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(UsageError) as again:
        await ben.export(message_id, done.folder, attachments=False)
    assert again.value.code == "export_exists"
    # the export is outside retention: the message goes, the file stays
    ben = await net.reopen(ben, clock=shifted(91 * DAY))
    assert await ben.inbox() == []
    assert done.text_file.exists()


async def test_kok_keep_and_export(net: Network, tmp_path: Path) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    message_id = await anna.send(to=[str(sued.org_id)], subject="Fall 22", body="Notiz")
    await ben.sync()
    profile = ben.profile.name
    await ben.close()
    kept = json.loads(ok(kok("--json", "keep", message_id[:8], home=tmp_path,
                             profile=profile)).out)
    assert kept["kept"] is True and kept["deletes_at"] is None
    shown = ok(kok("read", message_id[:8], home=tmp_path, profile=profile)).out
    assert "Kept on this device" in shown
    undone = ok(kok("keep", "--undo", message_id[:8], home=tmp_path, profile=profile)).out
    assert "Deleted from this device on" in undone
    out = tmp_path / "export"
    done = ok(kok("export", message_id[:8], "--out", str(out), home=tmp_path,
                  profile=profile))
    assert "plaintext outside kok" in done.err
    assert "Notiz" in (out / f"message-{message_id[:8]}.txt").read_text("utf-8")
    refused = kok("export", message_id[:8], "--out", str(out), home=tmp_path, profile=profile)
    assert refused.code != 0 and "exists already" in refused.err
