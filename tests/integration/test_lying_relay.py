"""Attacks by a lying relay (and by a member org), each caught by the client with its code.

The lying relay is a proxy process in front of the real relay (``tests.support.lyingrelay``)
that holds the relay's log key, so every head it serves is validly signed, as a hostile
operator's would be. Victims connect through it; everyone else talks to the real relay.
Every test says which client check it exercises: without that check it fails, because
the forged data would be accepted or shown as genuine.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.errors import VerificationError
from client.identity import current_identity
from protocol import BoxKeyPair, b64decode, b64encode, make_grant
from protocol.message import LogPosition
from protocol.padding import pad_message, unpad_message
from protocol.sealedbox import open_sealed, seal
from tests.app.appproc import AppProcess
from tests.app.test_security import login, page
from tests.integration.kokcli import kok, kok_env, ok
from tests.integration.people import PASSPHRASE
from tests.support.lifecycle import Network, shifted
from tests.support.lyingrelay import LyingRelay
from tests.support.relayproc import RelayProcess, free_port

PROXY_PORTS = (free_port(), free_port())


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    """The real relay behind the lying ones; its operator lets logins via the proxies in."""
    process = RelayProcess.start(
        tmp_path_factory.mktemp("lying-upstream"), network_profile=True,
        also_urls=tuple(f"http://127.0.0.1:{port}" for port in PROXY_PORTS))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def lie(upstream: Any) -> Iterator[LyingRelay]:
    proxy = LyingRelay.start(upstream, PROXY_PORTS[0])
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
async def net(upstream: Any, lie: LyingRelay, tmp_path: Path):  # type: ignore[no-untyped-def]
    await lie.configure()  # honest until a test says otherwise
    network = Network(upstream, tmp_path)
    yield network
    await lie.configure()
    await network.close()


def relay_key() -> str:
    """A public key the lying relay holds the secret of."""
    return b64encode(BoxKeyPair.from_seed(secrets.token_bytes(32)).public)


@pytest.mark.parametrize(("record", "field"), [("epoch", "public_key"),
                                               ("staff_add", "signing_key")])
async def test_a_substituted_key_in_the_log_is_refused(net: Network, lie: LyingRelay,
                                                       record: str, field: str) -> None:
    """Checks the record signatures every client re-verifies (``KeyLog.apply``).

    The relay swaps the key in sued's newest epoch record (so nord would seal to the
    relay's key) or in a new colleague's enrolment (so the relay could sign as her). The
    head is re-signed, so only the org's signature over the record shows the change.
    """
    nord, sued = await net.org("nord"), await net.org("sued")
    anna = await net.reopen(await net.staff(nord, "anna"), relay=lie.url)
    await anna.sync()
    if record == "epoch":
        await sued.org.rotate()
    else:
        await net.staff(sued, "carla")
    index = sued.directory.log.size - 1
    assert sued.directory.log.entries[index].record.type == record
    await lie.configure(tamper=[{"index": index, "set": {field: relay_key()}}])
    size, seen = anna.directory.log.size, len(await lie.seen())

    with pytest.raises(VerificationError) as refused:
        await anna.send(to=[str(sued.org_id)], subject="Fallfrage", body="vertraulich")
    assert refused.value.code == "bad_signature"
    assert anna.directory.log.size == size  # nothing of the forged log was kept
    assert len(await lie.seen()) == seen  # nothing was sealed, to any key

    await lie.configure()
    await anna.send(to=[str(sued.org_id)], subject="Fallfrage", body="vertraulich")


async def test_a_grant_for_a_key_that_is_not_the_epochs_is_refused(net: Network,
                                                                   lie: LyingRelay) -> None:
    """Checks ``open_grant``: the granted secret must match the epoch key in the log.

    The relay hands ben a grant, validly signed by the org, for a secret of the relay's
    choosing (as if it had got the identity key to sign one). Ben refuses it, keeps no key,
    and a message sealed to the real epoch waits unread until the real grant comes.
    """
    nord, sued = await net.org("nord"), await net.org("sued")
    anna = await net.staff(nord, "anna")
    ben = await net.reopen(await net.staff(sued, "ben"), relay=lie.url)
    org_id = str(sued.org_id)
    assert await sued.org.rotate() == 2
    identity = current_identity(sued)
    assert identity is not None
    box = ben.box_key()
    forged = make_grant(identity, org_id, 2, secrets.token_bytes(32), str(ben.staff_id),
                        box.public, secrets.token_bytes(32),
                        device_id=ben.signing_key().fingerprint,
                        log=LogPosition.of(sued.directory.log))
    await lie.configure(grants=[{"org_id": org_id, "epoch": 2, "grant": b64encode(forged)}])
    message_id = await anna.send(to=[org_id], subject="an Epoche 2", body="...")

    report = await ben.sync()
    assert "grant_key_mismatch" in report.problems
    assert f"epoch/{org_id}/2" not in ben.keystore.secrets
    assert report.messages == () and [q.code for q in report.quarantined] == [
        "epoch_key_missing"]
    assert await ben.inbox() == []

    await lie.configure()
    assert [m.id for m in (await ben.sync()).messages] == [message_id]


async def test_a_rewritten_past_entry_is_caught(net: Network, lie: LyingRelay) -> None:
    """Checks ``Directory.sync``: the signed head must equal the client's own chain.

    The relay rewrites an entry ben already holds (sued's admission) and re-signs a head
    over the new chain. Ben never fetches that entry again; his chain no longer matches
    the head, so he stops.
    """
    sued = await net.org("sued")
    ben = await net.reopen(await net.staff(sued, "ben"), relay=lie.url)
    await ben.sync()
    admitted = next(e.index for e in ben.directory.log.entries
                    if e.record.type == "org_admit" and e.record.org_id == sued.org_id)
    await lie.configure(tamper=[{"index": admitted, "set": {"name": "Beratungsstelle Böse"}}])
    for action in (ben.sync(), ben.whois(str(sued.org_id))):
        with pytest.raises(VerificationError) as refused:
            await action
        assert refused.value.code == "log_rewritten"


async def test_a_forked_log_is_caught_when_heads_are_compared(net: Network, lie: LyingRelay,
                                                              upstream: Any,
                                                              tmp_path: Path) -> None:
    """Checks ``kok whois --compare-head`` (``verification.compare_head``).

    A second lying relay shows sued two fresh admissions in the opposite order: a valid
    log, of the same size as nord's, with another history. Nothing is wrong locally; it
    shows when sued's admin compares the head nord's admin reads out.
    """
    fork = LyingRelay.start(upstream, PROXY_PORTS[1])
    try:
        nord, sued = await net.org("nord"), await net.org("sued")
        n, s = str(nord.org_id), str(sued.org_id)
        await net.reopen(nord, relay=lie.url)  # honest
        await net.reopen(sued, relay=fork.url)
        x = await net.org("x")
        await net.org("y")
        assert net.office is not None
        await net.office.sync_log()
        size = net.office.directory.log.size
        assert [e.record.type for e in net.office.directory.log.entries[size - 6:]] == [
            "org_admit", "staff_add", "epoch"] * 2
        await fork.configure(swap=[[size - 6, size - 3], [size - 5, size - 2],
                                   [size - 4, size - 1]])

        theirs = json.loads(ok(kok("--json", "whois", str(x.org_id), home=tmp_path,
                                   profile=n)).out)["log_head"]
        assert theirs["size"] == size
        head = f"{size}:{theirs['code']}"
        assert "matches" in ok(kok("whois", n, "--compare-head", head, home=tmp_path,
                                   profile=n)).out
        forked = kok("--json", "whois", n, "--compare-head", head, home=tmp_path, profile=s)
        assert forked.code == 1
        assert json.loads(forked.error_line)["error"]["code"] == "log_forked"
        mine = json.loads(ok(kok("--json", "whois", n, home=tmp_path, profile=s)).out)
        assert mine["log_head"]["size"] == size and mine["log_head"]["code"] != theirs["code"]
    finally:
        fork.stop()


async def test_an_old_envelope_replayed_by_the_relay_is_refused(net: Network,
                                                                lie: LyingRelay) -> None:
    """Checks duplicate ids (the mailbox keeps accepted ids) and ``message_expired``.

    The relay serves ben an envelope he already received under a new relay id: refused as
    ``replayed``. Served again after the message's expiry (ben's clock two hours on),
    it is refused as ``message_expired`` before anything else is looked at.
    """
    nord, sued = await net.org("nord"), await net.org("sued")
    anna = await net.staff(nord, "anna")
    ben = await net.reopen(await net.staff(sued, "ben"), relay=lie.url)
    message_id = await anna.send(to=[str(sued.org_id)], subject="einmal", body="...", ttl=60)
    assert [m.id for m in (await ben.sync()).messages] == [message_id]
    captured = [e for e in await lie.seen() if e["to_org"] == sued.org_id][-1]

    await lie.configure(inject=[captured])
    report = await ben.sync()
    assert report.messages == () and [q.code for q in report.quarantined] == ["replayed"]
    ben = await net.reopen(ben, relay=lie.url, clock=shifted(7200))
    await lie.configure(inject=[captured])
    report = await ben.sync()
    assert report.messages == () and [q.code for q in report.quarantined] == [
        "message_expired"]
    assert [m.id for m in await ben.inbox()] == [message_id]


async def test_an_envelope_moved_to_another_orgs_mailbox_is_refused(net: Network,
                                                                    lie: LyingRelay) -> None:
    """Checks the envelope's recipient: sealed to the addressee's epoch key, and ``to_org``.

    The relay copies an envelope for sued into nord's mailbox, once relabelled as nord's
    (it is sealed to sued's key: ``decrypt_failed``) and once as it is (``wrong_recipient``).
    """
    nord, sued = await net.org("nord"), await net.org("sued")
    anna = await net.reopen(await net.staff(nord, "anna"), relay=lie.url)
    await anna.send(to=[str(sued.org_id)], subject="für Süd", body="nur für Süd")
    captured = [e for e in await lie.seen() if e["to_org"] == sued.org_id][-1]
    ours = anna.directory.log.current_epoch(str(nord.org_id)).number
    relabelled = {**captured, "to_org": nord.org_id, "epoch": ours}
    await lie.configure(inject=[relabelled, captured])
    report = await anna.sync()
    assert report.messages == ()
    assert sorted(q.code for q in report.quarantined) == ["decrypt_failed", "wrong_recipient"]
    assert await anna.inbox() == []


async def test_a_message_re_sealed_by_another_org_is_refused(net: Network) -> None:
    """Checks that the sender's signature covers the recipient org and epoch.

    sued's admin (an insider of a member org) opens anna's message to sued and seals the
    very same signed bytes to west's key. west can open it, and anna's signature is
    genuine, but it names sued: refused as moved or forwarded, never shown as anna's
    message to west. (Without the signature's binding, the later ``to`` check would
    still refuse it, with another detail: the detail is asserted.)
    """
    nord, sued, west = await net.org("nord"), await net.org("sued"), await net.org("west")
    anna = await net.staff(nord, "anna")
    await anna.send(to=[str(sued.org_id)], subject="Fall 17", body="nur für Süd")
    await sued.sync_log()
    stored = (await (await sued.api()).messages(after=0))["messages"][-1]
    epoch = sued.directory.log.epoch(str(sued.org_id), stored["epoch"])
    assert epoch is not None
    secret = sued.keystore.secrets[f"epoch/{sued.org_id}/{epoch.number}"]
    signed = unpad_message(open_sealed(epoch.public_key, secret, b64decode(stored["sealed"])))
    target = sued.directory.log.current_epoch(str(west.org_id))
    forwarded = seal(target.public_key, pad_message(signed), secrets.token_bytes(32))
    await (await sued.api()).send(secrets.token_bytes(16), 3600, [
        {"to_org": west.org_id, "epoch": target.number, "sealed": b64encode(forwarded)}])

    report = await west.sync()
    assert report.messages == () and await west.inbox() == []
    assert [(q.code, "moved or forwarded" in q.detail) for q in report.quarantined] == [
        ("wrong_recipient", True)]



async def test_a_relay_showing_the_sender_another_history_is_caught_by_the_message(
        net: Network, upstream: Any) -> None:
    """Checks the signed log position of a message (``receiving``, SPEC 9.3).

    A second lying relay shows nord two fresh admissions in the opposite order: a valid
    log of the same size as everyone else's, with another history. Nobody compares heads by
    hand; the message nord sends carries nord's head, signed, and sued (on the honest relay)
    quarantines it as ``log_forked``. A message from the honest side is accepted, unflagged.
    """
    fork = LyingRelay.start(upstream, PROXY_PORTS[1])
    try:
        nord, sued = await net.org("nord"), await net.org("sued")
        anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
        s = str(sued.org_id)
        await ben.sync()
        anna = await net.reopen(anna, relay=fork.url)
        await net.org("x")
        await net.org("y")
        assert net.office is not None
        await net.office.sync_log()
        size = net.office.directory.log.size
        assert [e.record.type for e in net.office.directory.log.entries[size - 6:]] == [
            "org_admit", "staff_add", "epoch"] * 2
        await fork.configure(swap=[[size - 6, size - 3], [size - 5, size - 2],
                                   [size - 4, size - 1]])

        await anna.send(to=[s], subject="über das gespaltene Log", body="Hallo")
        assert anna.directory.log.size == size  # anna's log is valid, only another history
        report = await ben.sync()
        assert list(report.messages) == []
        assert [q.code for q in report.quarantined] == ["log_forked"]
        assert ben.directory.log.size == size

        await ben.send(to=[s], subject="intern", body="Hallo")
        got = await ben.sync()
        assert [m.subject for m in got.messages] == ["intern"]
        assert [m.sender_log_behind for m in got.messages] == [False]
    finally:
        fork.stop()


async def test_a_sender_frozen_before_a_removal_is_flagged_and_cannot_be_frozen_again(
        net: Network, lie: LyingRelay, upstream: Any) -> None:
    """Checks the signed log position against a freeze (SPEC 9.3), and the saved head.

    The relay colludes with carl, whom sued removes: it freezes anna's view of the log
    before the removal, so anna keeps sealing to sued's old epoch (which carl can open),
    and it accepts that envelope although the epoch is stale. ben, who sees the real log,
    gets the message flagged: anna's signed position lies before sued's new epoch. Once
    anna has seen a newer head, the relay cannot take her back to the frozen one.
    """
    freezer = LyingRelay.start(upstream, PROXY_PORTS[1])
    try:
        nord, sued = await net.org("nord"), await net.org("sued")
        anna = await net.staff(nord, "anna")
        ben, carl = await net.staff(sued, "ben"), await net.staff(sued, "carl")
        s = str(sued.org_id)
        await ben.sync()
        anna = await net.reopen(anna, relay=freezer.url)
        ben = await net.reopen(ben, relay=lie.url)
        await anna.sync_log()
        frozen = anna.directory.log.size
        await freezer.configure(freeze=frozen, accept_stale=True)

        assert await sued.org.remove(str(carl.staff_id)) == 2
        await anna.send(to=[s], subject="eingefroren", body="Carl könnte mitlesen")
        assert anna.directory.log.size == frozen  # she never saw the removal
        [sealed] = [e for e in await freezer.seen() if e["to_org"] == s]
        assert sealed["epoch"] == 1  # the epoch carl can still open

        await lie.configure(inject=[sealed])
        report = await ben.sync()
        assert [m.subject for m in report.messages] == ["eingefroren"]
        assert [m.sender_log_behind for m in report.messages] == [True]
        assert [m.sender_log_behind for m in await ben.inbox()] == [True]
        [flagged] = report.messages
        _warning_is_shown(net.home, ben.profile.name, flagged.id)

        await freezer.configure()  # anna meets the real log once...
        await anna.sync_log()
        assert anna.directory.log.size > frozen
        await freezer.configure(freeze=frozen, accept_stale=True)  # ...and is frozen again
        for _ in range(2):
            with pytest.raises(VerificationError) as refused:
                await anna.sync_log()
            assert refused.value.code == "log_rewritten"
            anna = await net.reopen(anna, relay=freezer.url)  # the saved head stays
    finally:
        freezer.stop()


async def test_a_grant_made_in_another_history_is_not_taken(net: Network, upstream: Any) -> None:
    """Checks the signed log position inside a grant (``Receiver.sync_grants``, SPEC 10).

    A second lying relay shows sued's admin two fresh admissions in the opposite order
    (a valid log, another history). The admin rotates: the new epoch's grants carry the
    admin's position, and ben, on the honest relay, refuses the key as ``log_forked``.
    """
    fork = LyingRelay.start(upstream, PROXY_PORTS[1])
    try:
        sued = await net.org("sued")
        ben = await net.staff(sued, "ben")
        s = str(sued.org_id)
        await ben.sync()
        sued = await net.reopen(sued, relay=fork.url)
        await net.org("x")
        await net.org("y")
        assert net.office is not None
        await net.office.sync_log()
        size = net.office.directory.log.size
        assert [e.record.type for e in net.office.directory.log.entries[size - 6:]] == [
            "org_admit", "staff_add", "epoch"] * 2
        await fork.configure(swap=[[size - 6, size - 3], [size - 5, size - 2],
                                   [size - 4, size - 1]])
        assert await sued.org.rotate() == 2

        report = await ben.sync()
        assert "log_forked" in report.problems
        assert f"epoch/{s}/2" not in ben.keystore.secrets
    finally:
        fork.stop()


def _warning_is_shown(home: Path, profile: str, message_id: str) -> None:
    """The warning reaches people: ``kok inbox``, ``kok read`` (English and German) and the
    staff app's inbox and message pages."""
    for lang, words in (("en", "sender's key log"), ("de", "Schlüsselverzeichnis des Absenders")):
        env = kok_env(LANG=f"{lang}_DE.UTF-8" if lang == "de" else "en_GB.UTF-8")
        shown = ok(kok("inbox", home=home, profile=profile, env=env)).out
        assert words in shown, shown
        assert words in ok(kok("read", message_id, home=home, profile=profile, env=env)).out
    app = AppProcess.start(home, profile, passphrase=PASSPHRASE)
    try:
        cookie = login(app)
        assert "sender&#39;s key log was behind" in page(app, "/inbox", cookie)
        assert "sender&#39;s view of the key log was behind" in page(
            app, f"/message/{message_id}", cookie)
    finally:
        app.stop()
