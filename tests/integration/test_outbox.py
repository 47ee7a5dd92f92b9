"""The offline outbox: a send while the relay is away is kept, encrypted, and sent once.

Against a real relay process that is stopped and started again: the message waits in the
mailbox (no plaintext on disk), goes with the next sync under the same idempotency key (a
second flush of the same entry stores nothing twice), and one whose keeping time passed
is reported and not sent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from client import Client, KokError
from client.errors import RelayUnreachable
from protocol import b64encode
from tests.integration.kokcli import kok, ok
from tests.integration.people import PASSPHRASE, close_all, new_org, new_staff, open_office


@pytest.fixture
async def pair(relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    office = await open_office(relay)
    nord = await new_org(relay, tmp_path, office, "nord")
    sued = await new_org(relay, tmp_path, office, "sued")
    anna = await new_staff(relay, tmp_path, nord, "anna")
    ben = await new_staff(relay, tmp_path, sued, "ben")
    yield {"relay": relay, "anna": anna, "ben": ben, "sued": sued, "home": tmp_path}
    await close_all(office, nord, sued, anna, ben)


async def test_a_send_while_the_relay_is_away_is_kept_and_sent_once_by_the_next_sync(
        pair: dict[str, Any]) -> None:
    relay, anna, ben = pair["relay"], pair["anna"], pair["ben"]
    await ben.sync()
    await anna.sync()
    relay.stop()
    message_id = await anna.send(to=["sued"], subject="Notfallplan Frau K.", body="Bitte rasch")
    assert await anna.queued() == [message_id]
    on_disk = b"".join(p.read_bytes() for p in anna.profile.state_path.parent.glob("state.db*"))
    assert b"Notfallplan" not in on_disk  # encrypted at rest, like the mailbox
    [(_, _, _, kept)] = await anna.store.outbox()

    relay._spawn()  # the relay is back (same directory and port)
    report = await anna.sync()
    assert report.outbox_sent == (message_id,) and await anna.queued() == []
    assert (await anna.status(message_id)).recipients[0].org == "sued"
    # the same entry flushed once more (as if the first answer had been lost): stored once
    await anna.store.add_outbox(message_id, anna.now(), anna.now() + 3600, kept)
    assert (await anna.sync()).outbox_sent == (message_id,)
    got = (await ben.sync()).messages
    assert [m.id for m in got] == [message_id]
    assert (await ben.sync()).messages == ()


async def test_a_message_queued_before_the_recipients_rotated_is_sealed_anew_and_read(
        pair: dict[str, Any]) -> None:
    relay, anna, ben, sued, home = (pair["relay"], pair["anna"], pair["ben"], pair["sued"],
                                    pair["home"])
    await ben.sync()
    await anna.sync()
    relay.stop()
    profile = anna.profile.name
    await anna.close()
    # queued ten minutes before the recipients' new key exists (more than the clock margin)
    early = await Client.open(home, profile, PASSPHRASE, clock=lambda: time.time() - 600)
    try:
        message_id = await early.send(to=["sued"], subject="vor der Rotation", body="b")
        assert await early.queued() == [message_id]
    finally:
        await early.close()
    relay._spawn()
    assert await sued.org.rotate() == 2
    await ben.sync()  # ben takes the new key
    back = await Client.open(home, profile, PASSPHRASE)
    try:
        assert (await back.sync()).outbox_sent == (message_id,)
    finally:
        await back.close()
    report = await ben.sync()
    # Sealed to epoch 2 with a log position that holds it, and dated when it left: before,
    # the envelope was sealed again with the queued payload (old position, old date) and
    # ben refused it.
    assert [m.id for m in report.messages] == [message_id]
    assert report.quarantined == ()


async def test_a_queued_message_past_its_keeping_time_is_reported_not_sent(
        pair: dict[str, Any]) -> None:
    relay, anna, ben, home = pair["relay"], pair["anna"], pair["ben"], pair["home"]
    await ben.sync()
    await anna.sync()
    relay.stop()
    message_id = await anna.send(to=["sued"], subject="kurz", body="b", ttl=60)
    profile = anna.profile.name
    await anna.close()
    relay._spawn()
    later = await Client.open(home, profile, PASSPHRASE, clock=lambda: time.time() + 120)
    try:
        report = await later.sync()
        assert report.outbox_expired == (message_id,) and report.outbox_sent == ()
        assert await later.queued() == []
    finally:
        await later.close()
    assert (await ben.sync()).messages == ()


async def test_a_send_with_files_while_the_relay_is_away_waits_with_a_copy_of_them(
        pair: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    relay, anna, ben = pair["relay"], pair["anna"], pair["ben"]
    await ben.sync()
    await anna.sync()
    original = b"Aussage Frau K., Seite 1\n" * 5000
    scan = tmp_path / "Aussage.txt"
    scan.write_bytes(original)
    relay.stop()
    message_id = await anna.send(to=["sued"], subject="Aussage", body="Anbei.",
                                 attachments=[scan])
    assert await anna.queued() == [message_id]
    kept = anna.profile.dir / "outbox" / message_id
    (snapshot,) = kept.iterdir()
    assert kept.stat().st_mode & 0o777 == 0o700 and snapshot.stat().st_mode & 0o777 == 0o600
    assert b"Aussage Frau K." not in snapshot.read_bytes()  # encrypted at rest
    [(_, _, _, entry)] = await anna.store.outbox()
    scan.write_bytes(b"changed afterwards")  # and then deleted: what was sent stays sent
    scan.unlink()

    relay._spawn()
    api = await anna.api()
    real_send, keys = api.send, []

    async def answer_lost(key: bytes, ttl: int, envelopes: list[dict[str, Any]]) -> Any:
        keys.append(key)
        answer = await real_send(key, ttl, envelopes)
        if len(keys) == 1:  # the relay stored it, but its answer never arrives
            raise RelayUnreachable(api.base_url)
        return answer

    monkeypatch.setattr(api, "send", answer_lost)
    first = await anna.sync()
    assert first.outbox_sent == () and await anna.queued() == [message_id]
    assert not kept.exists()  # the files are complete on the relay: the copies are gone
    second = await anna.sync()
    assert second.outbox_sent == (message_id,) and await anna.queued() == []
    assert [b64encode(k) for k in keys] == [entry["key"]] * 2  # the key it was queued with
    got = (await ben.sync()).messages
    assert [(m.id, [a["name"] for a in m.attachments]) for m in got] == [
        (message_id, ["Aussage.txt"])]
    (saved,) = await ben.save(message_id, tmp_path / "saved", mkdir=True)
    assert saved.path.read_bytes() == original
    assert (await ben.sync()).messages == ()  # stored once


async def test_a_queued_message_whose_file_copy_was_damaged_is_reported_not_sent(
        pair: dict[str, Any], tmp_path: Path) -> None:
    relay, anna, ben = pair["relay"], pair["anna"], pair["ben"]
    await ben.sync()
    await anna.sync()
    (tmp_path / "brief.pdf").write_bytes(b"%PDF" + bytes(70_000))
    relay.stop()
    message_id = await anna.send(to=["sued"], subject="Brief", body="Anbei.",
                                 attachments=[tmp_path / "brief.pdf"])
    (snapshot,) = (anna.profile.dir / "outbox" / message_id).iterdir()
    damaged = bytearray(snapshot.read_bytes())
    damaged[1000] ^= 1
    snapshot.write_bytes(bytes(damaged))
    relay._spawn()
    report = await anna.sync()
    assert report.outbox_failed == (message_id,) and report.outbox_sent == ()
    assert await anna.queued() == [] and not snapshot.parent.exists()
    assert (await ben.sync()).messages == ()


async def test_kok_send_with_a_file_while_the_relay_is_away_says_it_is_kept(
        pair: dict[str, Any], tmp_path: Path) -> None:
    relay, home = pair["relay"], pair["home"]
    await pair["ben"].sync()
    await pair["anna"].sync()
    (tmp_path / "plan.txt").write_text("Notfallplan")
    relay.stop()
    queued = ok(kok("send", "--to", "sued", "--subject", "Plan", "--body", "Anbei.",
                    "--attach", str(tmp_path / "plan.txt"), home=home, profile="nord.anna"))
    assert "The relay cannot be reached" in queued.out and "is kept (encrypted)" in queued.out
    relay._spawn()
    assert "Sent now (it waited for the relay)" in ok(kok("sync", home=home,
                                                          profile="nord.anna")).out


async def test_a_file_that_cannot_be_kept_for_later_is_refused_and_nothing_is_queued(
        pair: dict[str, Any], tmp_path: Path) -> None:
    relay, anna = pair["relay"], pair["anna"]
    await anna.sync()
    (tmp_path / "brief.pdf").write_bytes(b"%PDF" + bytes(1000))
    (anna.profile.dir / "outbox").write_bytes(b"")  # the folder for the copies cannot be made
    relay.stop()
    with pytest.raises(KokError) as refused:
        await anna.send(to=["sued"], subject="Brief", body="Anbei.",
                        attachments=[tmp_path / "brief.pdf"])
    assert refused.value.code == "snapshot_unwritable"
    assert "brief.pdf" in str(refused.value) and await anna.queued() == []
