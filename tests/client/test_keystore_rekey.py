"""The keystore's key is derived anew on every save; cheap Argon2 costs only in a test run."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.exceptions
import nacl.secret
import pytest

from client.keystore import KdfParams, Keystore, KeystoreWeak, derive_key
from protocol import b64decode


def header(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_bytes()))


def test_every_save_has_a_fresh_salt_and_an_old_copy_shares_no_key(tmp_path: Path) -> None:
    path = tmp_path / "keystore"
    store = Keystore.create(path, "pw", {"signing": b"s" * 32})
    backup = path.read_bytes()  # a copy in yesterday's backup
    store.secrets["epoch/o/2"] = b"2" * 32
    store.save()
    first = header(path)
    store.save()
    second = header(path)
    old = json.loads(backup)
    assert len({old["salt"], first["salt"], second["salt"]}) == 3
    # the key that opens the old copy does not open the current file
    params = KdfParams(t=int(old["t"]), m=int(old["m"]), p=int(old["p"]))
    old_key = derive_key("pw", b64decode(str(old["salt"])), params)
    with pytest.raises(nacl.exceptions.CryptoError):
        nacl.secret.SecretBox(old_key).decrypt(b64decode(str(second["box"])),
                                               b64decode(str(second["nonce"])))
    assert Keystore.open(path, "pw").secrets["epoch/o/2"] == b"2" * 32


def test_two_processes_still_merge_with_a_salt_per_save(tmp_path: Path) -> None:
    path = tmp_path / "keystore"
    Keystore.create(path, "pw", {"signing": b"s" * 32})
    one, two = Keystore.open(path, "pw"), Keystore.open(path, "pw")
    one.secrets["a"] = b"a" * 32
    one.save()
    two.secrets["b"] = b"b" * 32
    two.save()  # the file's salt changed under it: it reads it with the passphrase
    assert Keystore.open(path, "pw").secrets.keys() == {"signing", "a", "b"}


def test_the_test_knobs_are_refused_outside_a_test_run(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keystore"
    Keystore.create(path, "pw", {"signing": b"s" * 32})  # cheap: this is a test run
    monkeypatch.delenv("KOK_TEST_WEAK_KDF", raising=False)
    with pytest.raises(KeystoreWeak):
        Keystore.create(tmp_path / "other", "pw", {})  # KOK_ARGON2_* still set
    assert not (tmp_path / "other").exists()
    with pytest.raises(KeystoreWeak):
        Keystore.open(path, "pw")  # a file with cheap costs (planted, or from a test)
    monkeypatch.setenv("KOK_ARGON2_TIME", "5")  # stronger than the default is fine
    monkeypatch.setenv("KOK_ARGON2_MEMORY_KIB", str(KdfParams.m))
    assert KdfParams.from_env().t == 5
