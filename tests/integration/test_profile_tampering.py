"""Someone who can write to the profile folder, but lacks the passphrase, changes what it trusts.

The network key of the anchor and the relay's log key are pinned inside the keystore; the
newest relay-signed head and the verified-orgs list are sealed under its storage key
(``client.pinning``). Each swap below is refused at open (or at first use) with
``profile_tampered``, never silently accepted. A profile written before the pins existed
is adopted once, then checked like any other.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import KokError
from client.keystore import PINNED, Keystore
from client.profile import NetworkAnchor
from protocol.encoding import b64encode
from protocol.keys import SigningKeyPair, fingerprint
from tests.support.lifecycle import PASSPHRASE, Network


@pytest.fixture
async def net(shared_relay: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    network = Network(shared_relay, tmp_path / "home")
    yield network
    await network.close()


def _edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    obj = json.loads(path.read_text("utf-8"))
    change(obj)
    path.write_text(json.dumps(obj), "utf-8")


def _other_anchor(obj: dict[str, Any]) -> None:
    key = SigningKeyPair.from_seed(secrets.token_bytes(32)).public
    obj["network"] = NetworkAnchor(name=obj["network"]["name"], network_key=key).to_json()
    assert obj["network"]["fingerprint"] == fingerprint(key)  # a well-formed anchor


def _other_log_key(obj: dict[str, Any]) -> None:
    obj["log_key"] = b64encode(SigningKeyPair.from_seed(secrets.token_bytes(32)).public)


def _sql(db: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    with sqlite3.connect(db) as conn:
        for sql, args in statements:
            conn.execute(sql, args)


async def _refused(home: Path, name: str, what: str) -> None:
    with pytest.raises(KokError) as refused:
        client = await Client.open(home, name, PASSPHRASE)
        try:
            await client.orgs()  # reads the verified list
        finally:
            await client.close()
    assert refused.value.code == "profile_tampered", refused.value
    assert refused.value.params["what"] == what
    assert "changed outside kok" in refused.value.message


async def test_swapping_what_the_profile_trusts_is_refused(net: Network, tmp_path: Path) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    s = str(sued.org_id)
    await nord.verify(s, (await nord.whois(s)).safety_code or "")
    name = nord.profile.name
    state = nord.profile.state_path
    with sqlite3.connect(state) as conn:
        old_head = conn.execute("SELECT size, hash, time, signature FROM log_head").fetchone()
    await net.staff(nord, "anna")  # the log grows: the stored head moves on
    await nord.sync()
    await nord.close()
    pristine = tmp_path / "pristine"
    shutil.copytree(nord.profile.home, pristine)

    attacks: dict[str, Callable[[Path], None]] = {
        "anchor": lambda d: _edit_json(d / "profile.json", _other_anchor),
        "log_key": lambda d: _edit_json(d / "profile.json", _other_log_key),
        # an older head signed by the relay, with the log cut back to it: a frozen view
        "head": lambda d: _sql(
            d / "state.db",
            ("DELETE FROM log_entries WHERE idx >= ?", (old_head[0],)),
            ("UPDATE log_head SET size = ?, hash = ?, time = ?, signature = ?", old_head)),
        # an unsealed list of an older kok planted beside the sealed one
        "verified": lambda d: _sql(
            d / "state.db", ("INSERT OR REPLACE INTO client_state (key, value) VALUES (?, ?)",
                             ("verified", json.dumps({"org-x": b64encode(bytes(32))})))),
    }
    for what, attack in attacks.items():
        home = tmp_path / f"attack-{what}"
        shutil.copytree(pristine, home)
        attack(home / name)
        await _refused(home, name, what)

    # the sealed verified list itself, edited: it no longer opens
    home = tmp_path / "attack-sealed-list"
    shutil.copytree(pristine, home)
    _sql(home / name / "state.db", ("UPDATE client_state SET value = ? WHERE key = ?",
                                    (b64encode(bytes(80)), "sealed/verified")))
    await _refused(home, name, "verified")

    # the untouched copy opens, and still knows sued as verified
    again = await Client.open(pristine, name, PASSPHRASE)
    try:
        assert (await again.whois(s)).verification == "verified"
    finally:
        await again.close()


async def test_a_profile_of_an_older_kok_is_adopted_once_then_checked(
        net: Network, tmp_path: Path) -> None:
    nord, sued = await net.org("nord"), await net.org("sued")
    s = str(sued.org_id)
    await nord.verify(s, (await nord.whois(s)).safety_code or "")
    home, name = nord.profile.home, nord.profile.name
    await nord.close()
    # what an older kok left: no pins in the keystore, the head and the list unsealed
    keystore = Keystore.open(home / name / "keystore", PASSPHRASE)
    del keystore.meta[PINNED]
    keystore._write()
    with sqlite3.connect(home / name / "state.db") as conn:
        sealed = conn.execute("SELECT value FROM client_state WHERE key = 'sealed/verified'")
        assert sealed.fetchone() is not None
        conn.execute("DELETE FROM client_state WHERE key LIKE 'sealed/%'")
        conn.execute("INSERT INTO client_state (key, value) VALUES ('verified', ?)",
                     (json.dumps({s: b64encode(sued.directory.log.orgs[s].identity_key)}),))

    adopted = await Client.open(home, name, PASSPHRASE)
    try:
        assert (await adopted.whois(s)).verification == "verified"
        await adopted.sync()
    finally:
        await adopted.close()
    assert Keystore.open(home / name / "keystore", PASSPHRASE).meta[PINNED]["log_key"]
    _edit_json(home / name / "profile.json", _other_log_key)
    await _refused(home, name, "log_key")
