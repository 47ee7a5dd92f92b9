"""Damaged profile files, anchors and keystores: a specific error each, nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.errors import ProfileError, UsageError
from client.onboarding import init_network
from client.profile import NetworkAnchor, ProfileInfo, create_profile, load_profile

STRONG = "Ostsee Wanderweg Lampe"  # a new profile's passphrase must be hard to guess


def _office(tmp_path: Path) -> Path:
    prof, _ = init_network(tmp_path, "office", STRONG, "Netzwerk")
    return prof.dir


@pytest.mark.parametrize("damage", [
    "{not json",
    json.dumps({"v": 2, "kind": "staff", "name": "x"}),
    json.dumps({"v": 1, "kind": "robot", "name": "x"}),
    json.dumps({"v": 1, "kind": "staff", "name": "x"}),  # no network anchor
])
def test_a_damaged_profile_json_is_profile_corrupt(tmp_path: Path, damage: str) -> None:
    folder = _office(tmp_path)
    (folder / "profile.json").write_text(damage, "utf-8")
    keystore = (folder / "keystore").read_bytes()
    with pytest.raises(ProfileError) as err:
        load_profile(tmp_path, "office")
    assert err.value.code == "profile_corrupt"
    assert (folder / "keystore").read_bytes() == keystore


def test_a_profile_json_with_a_bad_pinned_log_key_is_corrupt(tmp_path: Path) -> None:
    folder = _office(tmp_path)
    obj = json.loads((folder / "profile.json").read_text("utf-8"))
    obj["log_key"] = "AAAA"  # not 32 bytes
    (folder / "profile.json").write_text(json.dumps(obj), "utf-8")
    with pytest.raises(ProfileError) as err:
        load_profile(tmp_path, "office")
    assert err.value.code == "profile_corrupt"


@pytest.mark.parametrize("content", [
    None,  # no file at all
    "{not json",
    json.dumps({"v": 1, "name": "N"}),  # no key
    json.dumps([1, 2]),
])
def test_a_missing_or_damaged_network_file_is_refused(tmp_path: Path, content: str | None
                                                      ) -> None:
    path = tmp_path / "network.json"
    if content is not None:
        path.write_text(content, "utf-8")
    with pytest.raises(UsageError) as err:
        NetworkAnchor.load(path)
    assert err.value.code == ("file_missing" if content is None else "bad_network_file")


def test_an_empty_passphrase_creates_nothing(tmp_path: Path) -> None:
    _office(tmp_path)
    info = ProfileInfo(kind="staff", name="anna", relay=None,
                       network=load_profile(tmp_path, "office").info.network)
    with pytest.raises(ProfileError) as err:
        create_profile(tmp_path, "anna", info, "", {})
    assert err.value.code == "empty_passphrase"
    assert not (tmp_path / "anna").exists()


@pytest.mark.parametrize(("damage", "code"), [
    (None, "keystore_missing"),
    (b"{not json", "keystore_corrupt"),
    (json.dumps({"v": 1, "kdf": "scrypt"}).encode(), "keystore_corrupt"),
])
def test_a_missing_or_damaged_keystore_has_its_own_code(tmp_path: Path, damage: bytes | None,
                                                       code: str) -> None:
    folder = _office(tmp_path)
    keystore = folder / "keystore"
    if damage is None:
        keystore.unlink()
    else:
        keystore.write_bytes(damage)
    with pytest.raises(ProfileError) as err:
        load_profile(tmp_path, "office").open_keystore(STRONG)
    assert err.value.code == code
