"""Directory, sent messages, search, threads and attachment streams, library and CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client import KokError
from client.orgs_list import display_name
from tests.integration.kokcli import kok, ok
from tests.integration.people import close_all, new_org, new_staff, open_office, unique


@pytest.fixture
async def world(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two orgs (nord, sued), each with an admin and one staff member (anna, ben)."""
    office = await open_office(shared_relay)
    nord = await new_org(shared_relay, tmp_path, office, unique("nord"))
    sued = await new_org(shared_relay, tmp_path, office, unique("sued"))
    anna = await new_staff(shared_relay, tmp_path, nord, "anna-maria")
    ben = await new_staff(shared_relay, tmp_path, sued, "ben")
    yield {"office": office, "nord": nord, "sued": sued, "anna": anna, "ben": ben,
           "home": tmp_path, "relay": shared_relay}
    await close_all(office, nord, sued, anna, ben)


def test_display_name_spells_a_staff_id_back() -> None:
    assert display_name("beratung-nord/anna-mueller") == "Anna Mueller"
    assert display_name("x/ben") == "Ben"


async def test_orgs_lists_every_org_with_standing_and_current_staff(world: dict[str, Any]
                                                                     ) -> None:
    anna, nord, sued = world["anna"], world["nord"], world["sued"]
    orgs = {o.org_id: o for o in await anna.orgs()}
    assert orgs[nord.org_id].verification == "own"
    theirs = orgs[sued.org_id]
    assert theirs.verification == "unverified" and theirs.can_receive
    assert theirs.name == f"Beratungsstelle {sued.org_id}"
    assert theirs.fingerprint == sued.org_info(sued.org_id).fingerprint
    assert {s.staff_id for s in theirs.staff} == {f"{sued.org_id}/admin",
                                                  f"{sued.org_id}/ben"} or theirs.staff_count >= 2
    own = {s.staff_id: s for s in orgs[nord.org_id].staff}
    assert own[str(anna.staff_id)].display_name == "anna-maria"  # the profile's own name
    # after comparing the safety code, the directory says so
    code = anna.org_info(sued.org_id)
    assert code is not None
    await nord.verify(sued.org_id, (await nord.whois(sued.org_id)).safety_code or "")
    verified = {o.org_id: o for o in await nord.orgs()}[sued.org_id]
    assert verified.verification == "verified" and verified.to_json()["verified"] is True
    # a removed colleague is no longer counted
    await sued.org.remove(str(world["ben"].staff_id))
    after = {o.org_id: o for o in await anna.orgs()}[sued.org_id]
    assert str(world["ben"].staff_id) not in {s.staff_id for s in after.staff}
    assert after.staff_count == theirs.staff_count - 1


async def test_sent_search_thread_and_attachment_stream(world: dict[str, Any],
                                                        tmp_path: Path) -> None:
    anna, ben, sued, nord = world["anna"], world["ben"], world["sued"], world["nord"]
    assert await anna.sent() == []
    paper = tmp_path / "brief.txt"
    paper.write_bytes(b"Aufenthaltstitel " * 5000)
    first = await anna.send([sued.org_id], "Fall 17: Termin", "Wer kennt die Behörde?",
                            ttl=3600, attachments=[paper])
    second = await anna.send([sued.org_id], "Anderes Thema", "Nichts dazu.", ttl=3600)
    sent = await anna.sent(status=True)
    assert [s.id for s in sent] == [second, first]
    assert sent[1].to == (sued.org_id,) and sent[1].subject == "Fall 17: Termin"
    assert sent[1].state == "pending"

    await ben.sync()
    assert [m.id for m in await ben.search("behörde")] == [first]  # body, case-folded
    assert [m.id for m in await ben.search("ANNA-MARIA")] == [first, second][::-1] or \
        {m.id for m in await ben.search("anna-maria")} == {first, second}
    assert [m.id for m in await ben.search(nord.org_id)] != []
    assert await ben.search("gibt es nicht") == []
    with pytest.raises(KokError) as empty:
        await ben.search("   ")
    assert empty.value.code == "empty_search"

    stream = await ben.open_attachment(first[:8], 0)
    assert (stream.name, stream.size) == ("brief.txt", paper.stat().st_size)
    got = b"".join([piece async for piece in stream.chunks()])
    assert got == paper.read_bytes()
    with pytest.raises(KokError):
        await ben.open_attachment(first, 1)

    reply = await ben.send([nord.org_id], "Re: Fall 17: Termin", "Ja, ich.", ttl=3600,
                           reply_to=first)
    await ben.read(first)
    await anna.sync()
    thread = await anna.thread(reply[:8])
    assert [(e.id, e.direction) for e in thread] == [(first, "sent"), (reply, "received")]
    assert thread[1].body == "Ja, ich."
    assert [e.id for e in await ben.thread(first)] == [first, reply]
    # delivery state changed once ben fetched it (the org's admin has not yet)
    before = sent[1].delivery
    after = {s.id: s for s in await anna.sent(status=True)}[first].delivery
    assert before is not None and after is not None
    assert (before.acknowledged, after.acknowledged) == (0, 1)


def test_cli_orgs_sent_search_thread_and_status_of_the_latest(shared_relay: Any,
                                                              tmp_path: Path) -> None:
    import asyncio

    async def build() -> tuple[str, str, str]:
        office = await open_office(shared_relay)
        nord = await new_org(shared_relay, tmp_path, office, unique("nord"))
        sued = await new_org(shared_relay, tmp_path, office, unique("sued"))
        anna = await new_staff(shared_relay, tmp_path, nord, "anna")
        ben = await new_staff(shared_relay, tmp_path, sued, "ben")
        ids = (str(nord.org_id), str(sued.org_id), f"{nord.org_id}.anna")
        await close_all(office, nord, sued, anna, ben)
        return ids

    nord, sued, anna = asyncio.run(build())
    home = tmp_path
    orgs = ok(kok("orgs", home=home, profile=anna)).out
    assert f"Beratungsstelle {sued} (id {sued})" in orgs and "Not verified yet." in orgs
    assert f"anna ({nord}/anna), staff" in orgs  # the profile's own name for itself
    assert f"Ben ({sued}/ben), staff" in orgs  # spelt back from the id for others
    data = json.loads(ok(kok("--json", "orgs", home=home, profile=anna)).out)
    assert {o["org_id"] for o in data} >= {nord, sued}
    assert ok(kok("sent", home=home, profile=anna)).out.strip() == "Sent messages: 0"
    none = kok("status", home=home, profile=anna)
    assert none.code == 2 and "not sent any message" in none.error_line

    message = json.loads(ok(kok("--json", "send", "--to", sued, "--subject", "Fallfrage",
                                "--body", "Termin am Montag", home=home, profile=anna)).out)["id"]
    listed = ok(kok("sent", home=home, profile=anna)).out
    assert f"{message[:8]}: to {sued}" in listed and "on its way" in listed
    assert "Fallfrage" in ok(kok("status", home=home, profile=anna)).out
    ben = f"{sued}.ben"
    ok(kok("sync", home=home, profile=ben))
    found = ok(kok("search", "montag", home=home, profile=ben)).out
    assert 'containing "montag": 1' in found and message[:8] in found
    thread = ok(kok("thread", message[:8], home=home, profile=ben)).out
    assert "Termin am Montag" in thread and "wrote" in thread
    unknown = kok("send", "--to", "gibt-es-nicht", "--subject", "x", "--body", "y",
                  home=home, profile=anna)
    assert "kok orgs" in unknown.error_line


@pytest.mark.parametrize(("damage", "code"), [
    ("truncate", "stream_truncated"),
    ("extend", "stream_trailing_data"),
    ("flip_last", "stream_corrupt"),
])
async def test_a_tampered_attachment_stream_fails_before_its_end(
        world: dict[str, Any], tmp_path: Path, damage: str, code: str) -> None:
    from protocol import Attachment

    anna, ben, sued = world["anna"], world["ben"], world["sued"]
    source = tmp_path / "scan.tif"
    source.write_bytes(bytes(range(256)) * 3000)
    message_id = await anna.send([sued.org_id], "Scan", "", ttl=3600, attachments=[source])
    await ben.sync()
    message = await ben.read(message_id)
    drop = Attachment.from_json(message.attachments[0]).drop
    blob = world["relay"].dir / "blobs" / f"{drop.hex()}.blob"
    data = bytearray(blob.read_bytes())
    if damage == "truncate":
        del data[-1000:]
    elif damage == "extend":
        data += b"\0" * 100
    else:
        data[-5] ^= 0x80
    blob.write_bytes(bytes(data))
    stream = await ben.open_attachment(message_id, 0)
    got = bytearray()
    with pytest.raises(KokError) as rejected:
        async for piece in stream.chunks():
            got += piece
    assert rejected.value.code == code
    assert len(got) < source.stat().st_size  # the last piece never left the decryptor
