"""Retraction notices (SPEC 9.4) against a real relay: recipients that already fetched a
message see it withdrawn by its sender; nobody else can withdraw it."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import UsageError
from protocol.message import LogPosition, retraction_notice
from tests.integration.kokcli import kok, kok_env, ok
from tests.integration.people import close_all, new_staff
from tests.integration.test_drops import World, make_world, write_file
from tests.integration.test_send_failure_drops import stored_drops
from tests.support.relayproc import RelayProcess

SECRET_TEXT = "Frau K. wohnt jetzt in der Lindenstraße 4."


@pytest.fixture
async def world(shared_relay: RelayProcess, tmp_path: Path) -> AsyncIterator[World]:
    people = await make_world(shared_relay, tmp_path / "home")
    yield people
    await close_all(*people.clients.values())


async def forge_notice(client: Client, target: str, to_org: str) -> None:
    """What a modified client could send: a validly signed notice naming ``target``."""
    await client.sync_log()
    now = client.now()
    notice = retraction_notice(bytes.fromhex(target), id=secrets.token_bytes(16),
                               from_staff=str(client.staff_id), to=(to_org,), sent=now,
                               expires=now + 3600, thread=bytes(16),
                               log=LogPosition.of(client.directory.log))
    api = await client.api()
    await api.send(secrets.token_bytes(16), 3600, client.sender._seal(notice))


async def test_recipients_that_fetched_a_message_see_it_withdrawn(
        relay: RelayProcess, tmp_path: Path) -> None:
    people = await make_world(relay, tmp_path / "home")
    try:
        anna, ben, sued = people["anna"], people["ben"], people["sued"]
        scan = write_file(tmp_path / "Befund.pdf", 100_000)
        message_id = await anna.send(to=[sued.org_id], subject="Fall K.", body=SECRET_TEXT,
                                     attachments=[scan])
        await ben.sync()
        await sued.sync()  # every recipient fetched it: the relay has nothing to delete
        assert (await anna.status(message_id)).state == "delivered"

        status = await anna.retract(message_id)
        assert status.notified == (sued.org_id,)
        assert stored_drops(relay) == []  # nobody can fetch the file any more
        assert await anna.queued() == []  # the notice went out, it does not wait

        report = await ben.sync()
        assert report.messages == ()  # the notice is never shown as a message
        assert [(w.id, w.from_staff, w.held) for w in report.withdrawn] == [
            (message_id, anna.staff_id, True)]
        inbox = await ben.inbox()
        assert [(m.id, m.withdrawn, m.subject, m.body, m.attachments) for m in inbox] == [
            (message_id, True, "Fall K.", "", ())]
        shown = await ben.read(message_id)
        assert shown.withdrawn and shown.withdrawn_files == 1 and shown.withdrawn_at
        # opening what its sender withdrew owes the sender no read report (SPEC 21)
        assert await ben.store.owed_read_reports() == []
        await ben.sync()
        assert [r.read for r in (await anna.status(message_id)).recipients] == [0]
        assert await ben.search("Lindenstraße") == []  # the body is gone from the device
        with pytest.raises(UsageError) as no_files:
            await ben.save(message_id, tmp_path)
        assert no_files.value.code == "no_attachments"
        thread = await ben.thread(message_id)
        assert [e.message.withdrawn for e in thread if e.message] == [True]

        # retracting again sends no second notice
        again = await anna.retract(message_id)
        assert again.notified == (sued.org_id,)
        assert (await sued.sync()).withdrawn != ()  # the admin's device got the first one
        assert (await sued.sync()).withdrawn == ()
        assert (await ben.sync()).withdrawn == ()
    finally:
        await close_all(*people.clients.values())


async def test_a_retract_before_anyone_fetched_sends_no_notice(world: World) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    message_id = await anna.send(to=[sued.org_id], subject="Versehen", body="x")
    status = await anna.retract(message_id)
    assert [r.state for r in status.recipients] == ["retracted"] and status.notified == ()
    report = await ben.sync()
    assert report.messages == () and report.withdrawn == () and await ben.inbox() == []


async def test_a_message_arriving_after_its_notice_arrives_withdrawn(world: World) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    message_id = await anna.send(to=[sued.org_id], subject="Fall K.", body=SECRET_TEXT)
    # the org admin's device sees the envelope but is held up before taking it in
    late: list[dict[str, Any]] = (await (await sued.api()).messages(after=0))["messages"]
    await ben.sync()
    assert (await anna.retract(message_id)).notified == (sued.org_id,)
    report = await sued.sync()  # the relay deleted the original: only the notice comes
    assert [(w.id, w.held) for w in report.withdrawn] == [(message_id, False)]
    assert await sued.inbox() == []
    arrived = await sued.receiver.receive(late[0])  # now the original comes after all
    assert arrived is not None and getattr(arrived, "withdrawn", False)
    (kept,) = await sued.inbox()
    assert (kept.id, kept.withdrawn, kept.body) == (message_id, True, "")


async def test_nobody_but_the_sender_can_withdraw_a_message(world: World) -> None:
    anna, ben, sued, nord = world["anna"], world["ben"], world["sued"], world["nord"]
    carl = await new_staff(world.relay, world.home, nord, "carl")  # anna's colleague
    berta = await new_staff(world.relay, world.home, sued, "berta")  # in the recipient org
    try:
        message_id = await anna.send(to=[sued.org_id], subject="Fall K.", body=SECRET_TEXT)
        await ben.sync()
        # a colleague of the sender, the sender org's admin, a colleague of the reader
        for forger in (carl, nord, berta):
            await forge_notice(forger, message_id, sued.org_id)
        report = await ben.sync()
        assert report.withdrawn == ()
        assert [q.code for q in report.quarantined] == ["wrong_signer"] * 3
        (kept,) = await ben.inbox()
        assert (kept.withdrawn, kept.body) == (False, SECRET_TEXT)
    finally:
        await close_all(carl, berta)


async def test_kok_shows_a_withdrawn_message_as_such(world: World) -> None:
    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    message_id = await anna.send(to=[sued.org_id], subject="Fall K.", body=SECRET_TEXT)
    await ben.sync()
    home, profile = world.home, f"{sued.org_id}.ben"
    retracted = ok(kok("retract", message_id[:8], home=home,
                       profile=f"{anna.org_id}.anna")).out
    assert f"Withdrawal notice sent to {sued.org_id}" in retracted
    synced = ok(kok("sync", home=home, profile=profile)).out
    assert f"{message_id[:8]} was withdrawn by {anna.staff_id}" in synced
    inbox = ok(kok("inbox", home=home, profile=profile)).out.splitlines()
    at = next(i for i, line in enumerate(inbox) if line.startswith(message_id[:8]))
    assert inbox[at + 1].startswith(f"  Withdrawn by {anna.staff_id} on ")
    shown = ok(kok("read", message_id[:8], home=home, profile=profile)).out
    assert "Its text and attachments were removed from this device." in shown
    assert SECRET_TEXT not in shown and "Subject: Fall K." in shown
    assert "Withdrawn by" in ok(kok("search", "Fall K", home=home, profile=profile)).out
    assert "Withdrawn by" in ok(kok("thread", message_id[:8], home=home, profile=profile)).out
    german = ok(kok("read", message_id[:8], home=home, profile=profile,
                    env=kok_env(LANG="de_DE.UTF-8"))).out
    assert f"von {anna.staff_id} zurückgezogen" in german
    data = json.loads(ok(kok("--json", "inbox", home=home, profile=profile)).out)
    assert [(m["id"], m["withdrawn"]) for m in data] == [(message_id, True)]
