"""Linking a new device with a one-time code, against a real relay (SPEC.md section 6.9).

The existing device shows a code and waits; the new device types it in. The two run
SPAKE2 through the relay's mailbox, so the relay carries only a SPAKE2 message each way and
two messages encrypted under the key SPAKE2 gave both devices. Someone who knows the
nameplate (the relay itself, or anyone who saw the first four digits) gets exactly one
guess at the rest, and a wrong guess adds nothing and closes the mailbox.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import AccessError, KokError, VerificationError
from client.profile import NetworkAnchor, load_profile
from protocol.encoding import b64decode, b64encode
from protocol.keys import BoxKeyPair, SigningKeyPair
from protocol.link import (
    EXISTING,
    NEW,
    LinkCode,
    LinkPake,
    ProfileOffer,
    make_device_offer,
    make_profile_offer,
    seal_link_message,
)
from tests.integration.kokcli import TEST_PASSPHRASE, kok_env
from tests.support.lifecycle import PASSPHRASE, Network, relay_call

POLL = 0.05


def kok_argv(home: Path, profile: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "client", "--home", str(home), "--profile", profile, *args]


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path)
    yield network
    await network.close()


def anchor(net: Network) -> NetworkAnchor:
    return NetworkAnchor.from_json(net.relay.network_anchor)


async def join(net: Network, code: str, name: str) -> Any:
    return await Client.join_device(net.home, name, PASSPHRASE, code, relay=net.relay.url,
                                    network=anchor(net), poll=POLL)


async def test_link_and_join_then_the_new_device_receives_a_message(net: Network) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    anna, ben = await net.staff(nord, "anna"), await net.staff(sued, "ben")
    link = await ben.link_device(poll=POLL)
    assert LinkCode.parse(link.code).nameplate == link.code[:4]
    name = f"{ben.profile.name}.laptop"
    added, prof = await asyncio.gather(link.wait(), join(net, link.code, name))

    # the new profile belongs to ben, pinned the log key ben's device pinned, and is the
    # device the existing one added to the key log
    assert prof.info.staff_id == ben.staff_id
    assert prof.info.log_key == ben.profile.info.log_key
    laptop = await Client.open(net.home, name, PASSPHRASE)
    net.people[name] = laptop
    assert laptop.signing_key().fingerprint == added
    assert [(d.device_id, d.this_device) for d in await laptop.devices()] == [
        (ben.signing_key().fingerprint, False), (added, True)]

    await sued.sync()  # the admin renews the key so the new device gets a grant
    await anna.send([str(sued.org_id)], "nach dem Verknüpfen", "Hallo")
    assert [m.subject for m in (await laptop.sync()).messages] == ["nach dem Verknüpfen"]
    # the mailbox was deleted by the new device once it was done
    nameplate = LinkCode.parse(link.code).nameplate
    code, _ = await relay_call(net.relay.url, "GET", f"/v1/link/{nameplate}/a")
    assert code == 404


async def test_a_wrong_code_adds_nothing_and_closes_the_mailbox(net: Network) -> None:
    sued = await net.org("sued")
    ben = await net.staff(sued, "ben")
    link = await ben.link_device(poll=POLL)
    wrong = LinkCode.parse(link.code)
    wrong = LinkCode.from_number(wrong.nameplate, (int(wrong.password) + 1) % 10**8)
    before = [d.device_id for d in await ben.devices()]
    outcomes = await asyncio.gather(link.wait(), join(net, str(wrong), "laptop"),
                                    return_exceptions=True)
    assert isinstance(outcomes[0], VerificationError)
    assert outcomes[0].code == "link_wrong_code"
    assert isinstance(outcomes[1], KokError)  # the mailbox is gone before an answer came
    assert outcomes[1].code in ("link_ended", "link_wrong_code")
    assert [d.device_id for d in await ben.devices()] == before
    assert not (net.home / "laptop").exists()  # nothing written on the new device
    # the mailbox is closed: the right code no longer works either
    with pytest.raises(AccessError) as closed:
        await join(net, link.code, "laptop")
    assert closed.value.code == "link_unknown"


async def test_someone_with_the_nameplate_who_answers_first_adds_no_device(
        net: Network) -> None:
    """The relay (or anyone who saw the first four digits) plays the new device with its
    own keys and a guessed password: one guess, refused, nothing added; the real new
    device then finds the code used up."""
    sued = await net.org("sued")
    ben = await net.staff(sued, "ben")
    link = await ben.link_device(poll=POLL)
    nameplate = LinkCode.parse(link.code).nameplate
    waiting = asyncio.create_task(link.wait())

    code, body = await relay_call(net.relay.url, "GET", f"/v1/link/{nameplate}/a")
    assert code == 200 and len(body["messages"]) == 1  # the relay sees a SPAKE2 message only
    guess = LinkCode.from_number(nameplate, secrets.randbelow(10**8))
    assert str(guess) != link.code
    mallory = LinkPake(NEW, guess, anchor(net).network_key, secrets.token_bytes)
    keys = mallory.finish(b64decode(body["messages"][0]))
    offer = make_device_offer(SigningKeyPair.from_seed(secrets.token_bytes(32)),
                              BoxKeyPair.from_seed(secrets.token_bytes(32)).public, keys)
    for message in (mallory.message,
                    seal_link_message(keys, NEW, offer, secrets.token_bytes(24))):
        code, _ = await relay_call(net.relay.url, "POST", f"/v1/link/{nameplate}/b",
                                   body={"message": b64encode(message)})
        assert code == 200

    with pytest.raises(VerificationError) as refused:
        await waiting
    assert refused.value.code == "link_wrong_code"
    assert len(await ben.devices()) == 1
    with pytest.raises(AccessError) as gone:  # the real device: the code is used up
        await join(net, link.code, "laptop")
    assert gone.value.code == "link_unknown"


async def test_a_relay_playing_the_existing_device_gets_no_profile_made(net: Network) -> None:
    """A mailbox opened by someone else (here: another person, as a relay could) with its
    own SPAKE2 message: the new device's code does not match, so it writes nothing."""
    sued = await net.org("sued")
    ben, eve = await net.staff(sued, "ben"), await net.staff(sued, "eve")
    api = await eve.api()
    nameplate = str((await api.open_link())["nameplate"])
    mallory = LinkPake(EXISTING, LinkCode.from_number(nameplate, 12345678),
                       anchor(net).network_key, secrets.token_bytes)
    await api.post_link(nameplate, EXISTING, mallory.message)
    joining = asyncio.create_task(join(net, f"{nameplate}-8765-4321", "laptop"))
    for _ in range(200):  # the new device posted its SPAKE2 message and its device offer
        got = await api.read_link(nameplate, NEW, 0)
        if len(got) == 2:
            break
        await asyncio.sleep(POLL)
    keys = mallory.finish(got[0])
    reply = make_profile_offer(ProfileOffer(str(eve.staff_id), "eve", bytes(32)))
    await api.post_link(nameplate, EXISTING,
                        seal_link_message(keys, EXISTING, reply, secrets.token_bytes(24)))
    with pytest.raises(VerificationError) as refused:
        await joining
    assert refused.value.code == "link_wrong_code"
    assert not (net.home / "laptop").exists()
    assert len(await ben.devices()) == 1


async def test_a_cancelled_link_no_longer_answers_its_code(net: Network) -> None:
    sued = await net.org("sued")
    ben = await net.staff(sued, "ben")
    link = await ben.link_device(poll=POLL)
    await link.cancel()
    with pytest.raises(AccessError) as joined:
        await join(net, link.code, "laptop")
    assert joined.value.code == "link_unknown"
    with pytest.raises(AccessError) as waited:
        await link.wait()
    assert waited.value.code == "link_expired"
    assert not (net.home / "laptop").exists()


async def test_kok_device_link_prints_the_code_first_and_join_completes(net: Network) -> None:
    sued = await net.org("sued")
    ben = await net.staff(sued, "ben")
    await ben.sync()
    home, name = ben.profile.home, ben.profile.name
    linking = subprocess.Popen(kok_argv(home, name, "--json", "device", "link"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=kok_env())
    try:
        assert linking.stdout is not None
        first = json.loads(linking.stdout.readline())
        assert set(first) == {"code"}
        joined = await asyncio.to_thread(subprocess.run, kok_argv(
            home, "laptop", "--json", "device", "join", first["code"], "--relay",
            net.relay.url, "--network", str(net.relay.anchor_path)),
            capture_output=True, text=True, env=kok_env(), timeout=60)
        assert joined.returncode == 0, joined.stderr
        assert json.loads(joined.stdout) == {"profile": "laptop", "staff_id": ben.staff_id}
        out, err = linking.communicate(timeout=60)
    finally:
        if linking.poll() is None:
            linking.kill()
            linking.wait()
    assert linking.returncode == 0, err
    done = json.loads(out)
    laptop = await Client.open(home, "laptop", TEST_PASSPHRASE)
    try:
        assert done["device"] == laptop.signing_key().fingerprint
        assert load_profile(home, "laptop").info.staff_id == ben.staff_id
    finally:
        await laptop.close()
    # a mistyped code is refused before anything is asked or written
    bad = subprocess.run(kok_argv(home, "other", "device", "join", "12-34", "--relay",
                                  net.relay.url, "--network", str(net.relay.anchor_path)),
                         capture_output=True, text=True, env=kok_env(), timeout=60)
    assert bad.returncode != 0 and "twelve digits" in bad.stderr
    assert not (home / "other").exists()
