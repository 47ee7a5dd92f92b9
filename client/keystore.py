"""The keystore: every secret key of one identity, encrypted under the passphrase.

File format (one canonical JSON object, file mode 0600, replaced atomically)::

    {"v": 1, "kdf": "argon2id", "t": 3, "m": 65536, "p": 4,
     "salt": b64(16), "nonce": b64(24), "box": b64(XSalsa20-Poly1305(key, plaintext))}

    key       = Argon2id(passphrase, salt, t, m KiB, p) -> 32 bytes
    plaintext = canonical JSON {"secrets": {name: b64}, "meta": {...}}

Every save draws a fresh salt and derives a new key, so an older copy of the file (in a
backup) never shares a key with the current one. The KDF parameters live in the header so they
can be raised later without breaking old files; costs below the defaults open only in a test
run (``KOK_TEST_WEAK_KDF=1``). A changed header yields a different key, so tampering shows
as a failed open.
"""

from __future__ import annotations

import fcntl
import os
import secrets as _secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
from argon2.low_level import Type, hash_secret_raw

from kokshared.private_files import make_private_dir, write_private_file
from protocol.encoding import b64decode, b64encode, canonical_json, parse_json
from protocol.errors import EncodingError

FORGOTTEN = "forgotten"
"""``meta`` key listing secret names deleted for good (e.g. retired epoch keys)."""

PINNED = "pinned"
"""``meta`` key holding the keys the profile trusts (``client.pinning``): pins another
process added are kept on save, like secrets."""


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (``flock``) on a small lock file beside the keystore."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class KeystoreError(Exception):
    """A keystore could not be used; the message says what the person can do."""

    code = "keystore_error"


class WrongPassphrase(KeystoreError):
    code = "wrong_passphrase"

    def __init__(self) -> None:
        super().__init__("The passphrase is wrong (or the keystore file was altered).")


class KeystoreChanged(KeystoreError):
    code = "keystore_changed"

    def __init__(self) -> None:
        super().__init__("The keystore was re-encrypted by another kok program (a new "
                         "passphrase); nothing was saved. Run the command again.")


class KeystoreWeak(KeystoreError):
    code = "keystore_weak"


class KeystoreMissing(KeystoreError):
    code = "keystore_missing"


class KeystoreCorrupt(KeystoreError):
    code = "keystore_corrupt"


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost: ``t`` passes, ``m`` KiB of memory, ``p`` lanes."""

    t: int = 3
    m: int = 64 * 1024
    p: int = 4

    @classmethod
    def from_env(cls) -> KdfParams:
        """Defaults, with ``KOK_ARGON2_MEMORY_KIB``/``KOK_ARGON2_TIME`` for test suites only.

        Costs below the defaults are refused unless ``KOK_TEST_WEAK_KDF=1`` says this is a
        test run: a variable left in a shell must not make a real keystore cheap to guess.
        """
        try:
            params = cls(t=int(os.environ.get("KOK_ARGON2_TIME", cls.t)),
                         m=int(os.environ.get("KOK_ARGON2_MEMORY_KIB", cls.m)), p=cls.p)
        except ValueError:
            raise KeystoreWeak("KOK_ARGON2_TIME and KOK_ARGON2_MEMORY_KIB must be whole "
                               "numbers.") from None
        params.require_strong()
        return params

    @property
    def weak(self) -> bool:
        """Cheaper to guess through than the defaults."""
        return self.t < KdfParams.t or self.m < KdfParams.m

    def require_strong(self) -> None:
        """``KeystoreWeak`` for costs below the defaults outside a test run."""
        if self.weak and os.environ.get(WEAK_KDF_VAR) != "1":
            raise KeystoreWeak(
                f"Argon2 costs below t={KdfParams.t}, m={KdfParams.m} KiB are for the test "
                f"suite only (unset KOK_ARGON2_TIME and KOK_ARGON2_MEMORY_KIB).")


WEAK_KDF_VAR = "KOK_TEST_WEAK_KDF"


MAX_T = 100
MAX_M = 4 * 1024 * 1024  # KiB: 4 GiB
MAX_P = 64


def _header_params(header: dict[str, Any]) -> KdfParams:
    """The header's Argon2 costs, if Argon2 can run them."""
    # a damaged header must neither crash Argon2 nor make it ask for terabytes of memory
    t, m, p = header["t"], header["m"], header["p"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (t, m, p)):
        raise ValueError("KDF costs must be integers")
    if not (1 <= t <= MAX_T and 1 <= p <= MAX_P and 8 * p <= m <= MAX_M):
        raise ValueError("KDF costs out of range")
    return KdfParams(t=t, m=m, p=p)


def derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(
        passphrase.encode("utf-8"), salt, time_cost=params.t, memory_cost=params.m,
        parallelism=params.p, hash_len=32, type=Type.ID,
    )


@dataclass
class Keystore:
    """Secrets of one identity, open in memory; ``save`` re-encrypts them to disk."""

    path: Path
    secrets: dict[str, bytes]
    meta: dict[str, Any]
    params: KdfParams
    _salt: bytes = field(repr=False)
    _key: bytes = field(repr=False)
    # kept in memory so every save derives a new key under a fresh salt: a copy of an older
    # file (a backup) never shares its key with the current one
    _passphrase: str = field(repr=False, default="")

    @classmethod
    def create(cls, path: Path, passphrase: str, secrets: dict[str, bytes] | None = None,
               meta: dict[str, Any] | None = None, params: KdfParams | None = None) -> Keystore:
        """A new keystore file at ``path``; refuses to overwrite an existing one."""
        if path.exists():
            raise KeystoreError(f"A keystore already exists at {path}.")
        if not passphrase:
            raise KeystoreError("The passphrase must not be empty.")
        params = params or KdfParams.from_env()
        params.require_strong()
        # the salt and key are made by the first save, like every later one
        store = cls(path=path, secrets=dict(secrets or {}), meta=dict(meta or {}), params=params,
                    _salt=b"", _key=b"", _passphrase=passphrase)
        store.save()
        return store

    @classmethod
    def open(cls, path: Path, passphrase: str) -> Keystore:
        """Decrypt the keystore at ``path``; ``WrongPassphrase`` if it does not open."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise KeystoreMissing(f"There is no keystore at {path}.") from None
        try:
            header = parse_json(raw)
            if (not isinstance(header, dict) or header.get("v") != 1
                    or header.get("kdf") != "argon2id"):
                raise KeystoreCorrupt("The keystore has an unknown format.")
            params = _header_params(header)
            salt = b64decode(header["salt"], size=16)
            nonce = b64decode(header["nonce"], size=24)
            box = b64decode(header["box"])
        except (EncodingError, KeyError, TypeError, ValueError) as exc:
            raise KeystoreCorrupt("The keystore file is damaged.") from exc
        params.require_strong()  # else a planted file with cheap costs would be accepted
        key = derive_key(passphrase, salt, params)
        try:
            plain = nacl.secret.SecretBox(key).decrypt(box, nonce)
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase() from None
        content = parse_json(plain)
        return cls(
            path=path,
            secrets={k: b64decode(v) for k, v in content["secrets"].items()},
            meta=content["meta"],
            params=params,
            _salt=salt,
            _key=key,
            _passphrase=passphrase,
        )

    def save(self) -> None:
        """Encrypt and write atomically (fresh nonce), merging what another process saved.

        Two ``kok`` processes may hold the same profile open (``kok listen`` in one terminal,
        ``kok org rotate`` in another). Under a lock, secrets the file gained since we read
        it are kept, and names either side ``forget``-ed stay forgotten, so neither a new
        epoch key is lost nor a deleted one brought back.
        """
        with _file_lock(self.path.with_name(f".{self.path.name}.lock")):
            self._merge_from_disk()
            self._write()

    def refresh(self) -> None:
        """Take in what other programs saved since this copy was read or last saved (the
        same merge as ``save``, without writing): a long-lived holder such as the unlock
        agent stays current. ``KeystoreChanged`` if the passphrase was changed meanwhile."""
        with _file_lock(self.path.with_name(f".{self.path.name}.lock")):
            self._merge_from_disk()

    def forget(self, name: str) -> None:
        """Delete a secret for good (also from copies other processes hold); call ``save``."""
        self.secrets.pop(name, None)
        forgotten = set(self.meta.get(FORGOTTEN, []))
        forgotten.add(name)
        self.meta[FORGOTTEN] = sorted(forgotten)

    def _merge_from_disk(self) -> None:
        try:
            header = parse_json(self.path.read_bytes())
            salt = b64decode(header["salt"], size=16)
            key = self._key
            if salt != self._salt:  # another process saved since (each save has a new salt)
                key = derive_key(self._passphrase, salt, _header_params(header))
            try:
                plain = nacl.secret.SecretBox(key).decrypt(
                    b64decode(header["box"]), b64decode(header["nonce"], size=24))
            except nacl.exceptions.CryptoError:
                if salt == self._salt:
                    return
                # Re-encrypted under a new passphrase meanwhile (kok passwd): writing our
                # copy would silently bring the old passphrase back.
                raise KeystoreChanged() from None
            content = parse_json(plain)
        except (FileNotFoundError, EncodingError, KeyError, TypeError, ValueError):
            return
        forgotten = set(self.meta.get(FORGOTTEN, [])) | set(content["meta"].get(FORGOTTEN, []))
        for name, value in content["secrets"].items():
            if name not in self.secrets:
                self.secrets[name] = b64decode(value)
        for name in forgotten:
            self.secrets.pop(name, None)
        if forgotten:
            self.meta[FORGOTTEN] = sorted(forgotten)
        theirs = content["meta"].get(PINNED)
        if isinstance(theirs, dict):
            ours = self.meta.get(PINNED)
            self.meta[PINNED] = {**theirs, **(ours if isinstance(ours, dict) else {})}

    def _write(self) -> None:
        if self._passphrase:
            self._salt = _secrets.token_bytes(16)
            self._key = derive_key(self._passphrase, self._salt, self.params)
        plain = canonical_json({
            "secrets": {k: b64encode(v) for k, v in sorted(self.secrets.items())},
            "meta": self.meta,
        })
        nonce = _secrets.token_bytes(24)
        box = nacl.secret.SecretBox(self._key).encrypt(plain, nonce).ciphertext
        header = {
            "v": 1, "kdf": "argon2id", "t": self.params.t, "m": self.params.m, "p": self.params.p,
            "salt": b64encode(self._salt), "nonce": b64encode(nonce), "box": b64encode(box),
        }
        write_private_file(self.path, canonical_json(header))

    def change_passphrase(self, new_passphrase: str, params: KdfParams | None = None) -> None:
        """Re-encrypt under a new passphrase (fresh salt)."""
        if not new_passphrase:
            raise KeystoreError("The passphrase must not be empty.")
        with _file_lock(self.path.with_name(f".{self.path.name}.lock")):
            self._merge_from_disk()  # under the old key: keep what others saved meanwhile
            self.params = params or self.params
            self.params.require_strong()
            self._passphrase = new_passphrase
            self._write()
