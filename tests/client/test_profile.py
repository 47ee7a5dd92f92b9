"""Profiles and keystores: creation, the passphrase, tampered anchors, file modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.errors import ProfileError, UsageError
from client.keystore import Keystore, KeystoreChanged, WrongPassphrase
from client.onboarding import init_network, org_profile, slug
from client.profile import NetworkAnchor, default_home, load_profile
from protocol.encoding import b64encode

STRONG = "Ostsee Wanderweg Lampe"  # a new profile's passphrase must be hard to guess
OLD = "alter Leuchtturm Nebel"


def test_network_profile_holds_the_key_encrypted_and_private(tmp_path: Path) -> None:
    prof, anchor = init_network(tmp_path, "office", "correct horse", "Netzwerk KOK")
    assert prof.info.kind == "network" and anchor.name == "Netzwerk KOK"
    keystore_file = tmp_path / "office" / "keystore"
    assert keystore_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "office").stat().st_mode & 0o777 == 0o700
    store = Keystore.open(keystore_file, "correct horse")
    seed = store.secrets["network"]
    assert seed not in keystore_file.read_bytes()
    assert b64encode(seed).encode() not in keystore_file.read_bytes()  # as stored inside
    assert store.params.m == 1024  # the test suite's cheap Argon2 setting was honoured
    loaded = load_profile(tmp_path, "office")
    assert loaded.info.network == anchor


def test_wrong_passphrase_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    prof, _ = init_network(tmp_path, "office", "correct horse", "N")
    before = prof.keystore_path.read_bytes()
    with pytest.raises(ProfileError) as err:
        prof.open_keystore("wrong horse")
    assert err.value.code == "wrong_passphrase"
    assert "passphrase is wrong" in err.value.message
    assert prof.keystore_path.read_bytes() == before


def test_changed_passphrase_opens_only_with_the_new_one(tmp_path: Path) -> None:
    prof, _ = init_network(tmp_path, "office", OLD, "N")
    prof.open_keystore(OLD).change_passphrase("new one")
    assert prof.open_keystore("new one").secrets["network"]
    with pytest.raises(ProfileError):
        prof.open_keystore(OLD)


def test_a_profile_is_never_overwritten(tmp_path: Path) -> None:
    prof, _ = init_network(tmp_path, "office", STRONG, "N")
    before = prof.keystore_path.read_bytes()
    with pytest.raises(ProfileError) as err:
        init_network(tmp_path, "office", STRONG, "Other")
    assert err.value.code == "profile_exists"
    assert prof.keystore_path.read_bytes() == before


def test_missing_profile_and_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as missing:
        load_profile(tmp_path, "nobody")
    assert missing.value.code == "profile_missing"
    with pytest.raises(UsageError) as bad:
        load_profile(tmp_path, "../escape")
    assert bad.value.code == "bad_profile_name"


def test_a_tampered_network_anchor_is_refused(tmp_path: Path) -> None:
    _, anchor = init_network(tmp_path, "office", STRONG, "N")
    _, other = init_network(tmp_path, "evil", STRONG, "N")
    obj = anchor.to_json()
    obj["network_key"] = other.to_json()["network_key"]  # key swapped, fingerprint kept
    path = tmp_path / "network.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(UsageError) as err:
        NetworkAnchor.load(path)
    assert err.value.code == "bad_network_file"
    path.write_text(json.dumps(anchor.to_json()))
    assert NetworkAnchor.load(path) == anchor


def test_home_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KOK_HOME", str(tmp_path / "k"))
    assert default_home() == tmp_path / "k"
    monkeypatch.delenv("KOK_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "kok"


@pytest.mark.parametrize(("name", "expected"), [
    ("Anna Müller", "anna-mueller"), ("  Jo  ", "jo"), ("Ólafur Þór", "olafur-or"),
    ("x" * 40, "x" * 32),
])
def test_staff_names_become_ids(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_two_open_copies_of_a_keystore_do_not_lose_or_revive_keys(tmp_path: Path) -> None:
    path = tmp_path / "keystore"
    Keystore.create(path, "pw", {"signing": b"s" * 32, "epoch/o/1": b"1" * 32})
    listener, admin = Keystore.open(path, "pw"), Keystore.open(path, "pw")
    admin.secrets["epoch/o/2"] = b"2" * 32  # e.g. kok org rotate in another terminal
    admin.forget("epoch/o/1")  # the old epoch key is retired
    admin.save()
    listener.secrets["epoch/x/7"] = b"7" * 32  # meanwhile kok listen took in another key
    listener.save()
    final = Keystore.open(path, "pw").secrets
    assert final.keys() == {"signing", "epoch/o/2", "epoch/x/7"}
    assert "epoch/o/1" not in listener.secrets


def test_a_stale_copy_never_brings_an_old_passphrase_back(tmp_path: Path) -> None:
    path = tmp_path / "keystore"
    Keystore.create(path, "pw", {"signing": b"s" * 32})
    first, second = Keystore.open(path, "pw"), Keystore.open(path, "pw")
    first.change_passphrase("new")
    second.secrets["extra"] = b"e" * 32
    with pytest.raises(KeystoreChanged):
        second.save()
    assert Keystore.open(path, "new").secrets.keys() == {"signing"}
    with pytest.raises(WrongPassphrase):
        Keystore.open(path, "pw")


@pytest.mark.parametrize(("field", "value"), [("t", 0), ("p", 0), ("m", 1), ("m", 2**40),
                                              ("t", 10**9), ("p", "4")])
def test_a_keystore_with_impossible_kdf_costs_is_corrupt_not_a_crash(
        tmp_path: Path, field: str, value: object) -> None:
    """A damaged header must not reach Argon2 (a crash, or terabytes of memory asked for)."""
    prof, _ = init_network(tmp_path, "office", "correct horse", "N")
    header = json.loads(prof.keystore_path.read_bytes())
    header[field] = value
    prof.keystore_path.write_text(json.dumps(header))
    before = prof.keystore_path.read_bytes()
    with pytest.raises(ProfileError) as err:
        prof.open_keystore("correct horse")
    assert err.value.code == "keystore_corrupt"
    assert prof.keystore_path.read_bytes() == before


@pytest.mark.parametrize("bad", ["west\n", "West", "w", "-west", "west/x", "a" * 33])
def test_an_id_with_a_trailing_newline_or_other_flaw_is_refused(tmp_path: Path,
                                                                bad: str) -> None:
    """The org-id rule is protocol.encoding.ID_RE, matched whole (``$`` let "west\\n" in)."""
    anchor = NetworkAnchor(name="N", network_key=b"\x01" * 32)
    with pytest.raises(UsageError) as refused:
        org_profile(tmp_path, "west", STRONG, org_id=bad, name="West",
                    relay="http://127.0.0.1:9", network=anchor)
    assert refused.value.code == "bad_id"
    assert not (tmp_path / "west").exists()  # nothing was created


@pytest.mark.parametrize(("name", "expected"), [
    ("Anna Müller", "anna-mueller"), ("Jürgen Groß", "juergen-gross"),
    ("Özlem Äbi", "oezlem-aebi"), ("Zoë Brontë", "zoe-bronte"),
    ("Anna Mu\u0308ller", "anna-mueller"),  # decomposed, as some systems type it
])
def test_staff_ids_from_names_follow_german_transliteration(name: str, expected: str) -> None:
    assert slug(name) == expected


async def test_the_library_refuses_a_passphrase_kok_refuses_and_changes_nothing(
        tmp_path: Path) -> None:
    from client import Client
    from client.i18n import t
    from client.passphrase_strength import weakness
    from client.profile import save_keystore

    weak = "passwort123"
    with pytest.raises(ProfileError) as refused:
        await Client.new_org(tmp_path, "west", weak, org_id="west", name="West",
                             relay="http://127.0.0.1:9", network=None)
    assert refused.value.code == "weak_passphrase"
    # the same sentence kok prints for it, with the same reason
    assert refused.value.message == t("error.weak_passphrase",
                                      reason=weakness(weak, ["west"]))
    assert not (tmp_path / "west").exists()
    with pytest.raises(ProfileError) as named:
        init_network(tmp_path, "rathaus-kiel", "rathaus-kiel", "N")  # the profile's name
    assert named.value.code == "weak_passphrase" and not (tmp_path / "rathaus-kiel").exists()

    prof, _ = init_network(tmp_path, "office", STRONG, "N")
    before = prof.keystore_path.read_bytes()
    for new in ("office2024", "qwertzuiop", ""):
        with pytest.raises(ProfileError) as again:
            save_keystore(prof.open_keystore(STRONG), new)
        assert again.value.code == ("empty_passphrase" if not new else "weak_passphrase")
    assert prof.keystore_path.read_bytes() == before
    assert prof.open_keystore(STRONG).secrets["network"]
