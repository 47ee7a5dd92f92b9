"""Profiles: one identity's directory holding its keystore, public facts and mailbox.

A profile lives at ``<home>/<name>/`` where home is ``--home``, ``$KOK_HOME`` or the XDG
data directory (``$XDG_DATA_HOME/kok``, default ``~/.local/share/kok``). It holds:

``keystore``      every secret key, encrypted under the passphrase (``client.keystore``)
``profile.json``  public, non-secret facts: what kind of identity, which relay and network
``state.db``      the local mailbox (``client.mailbox``)

``profile.json`` is ``{"v": 1, "kind": "network"|"org"|"staff", "name", "relay",
"network": <network anchor>, "org_id", "staff_id"}`` and, once the client has talked to the
relay, ``"log_key"`` (the relay's key-log signing key, pinned on first use).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kokshared.private_files import make_private_dir
from kokshared.private_files import write_private_file as write_private_file
from protocol.encoding import b64decode, b64encode
from protocol.errors import EncodingError
from protocol.keys import fingerprint

from .errors import ProfileError, UsageError
from .keystore import (
    PINNED,
    Keystore,
    KeystoreChanged,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreMissing,
    WrongPassphrase,
)
from .passphrase_strength import require_strong

KINDS = ("network", "org", "staff")
PROFILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT_PROFILE = "default"


def default_home() -> Path:
    """``$KOK_HOME``, else the XDG data directory's ``kok`` folder."""
    env = os.environ.get("KOK_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "kok"


def default_profile() -> str:
    """``$KOK_PROFILE`` or ``default``."""
    return os.environ.get("KOK_PROFILE") or DEFAULT_PROFILE


@dataclass(frozen=True)
class NetworkAnchor:
    """The network's public trust anchor: its name and network key (NETWORK_JSON)."""

    name: str
    network_key: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.network_key)

    def to_json(self) -> dict[str, Any]:
        return {"v": 1, "name": self.name, "network_key": b64encode(self.network_key),
                "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, obj: Any) -> NetworkAnchor:
        """Parse an anchor; the fingerprint must match the key (a typo or tamper shows)."""
        try:
            if not isinstance(obj, dict) or obj.get("v") != 1:
                raise ValueError("not a version-1 network file")
            name = obj["name"]
            key = b64decode(obj["network_key"], size=32)
            if not isinstance(name, str) or obj.get("fingerprint") != fingerprint(key):
                raise ValueError("fingerprint does not match the key")
        except (KeyError, TypeError, ValueError, EncodingError) as exc:
            raise UsageError("bad_network_file", detail=str(exc)) from None
        return cls(name=name, network_key=key)

    @classmethod
    def load(cls, path: Path) -> NetworkAnchor:
        """Read a NETWORK_JSON file."""
        try:
            obj = json.loads(Path(path).read_text("utf-8"))
        except FileNotFoundError:
            raise UsageError("file_missing", path=str(path)) from None
        except (OSError, ValueError) as exc:
            raise UsageError("bad_network_file", detail=str(exc)) from None
        return cls.from_json(obj)


@dataclass(frozen=True)
class ProfileInfo:
    """The public facts of a profile (``profile.json``)."""

    kind: str
    name: str
    relay: str | None
    network: NetworkAnchor
    org_id: str | None = None
    staff_id: str | None = None
    log_key: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "v": 1, "kind": self.kind, "name": self.name, "relay": self.relay,
            "network": self.network.to_json(), "org_id": self.org_id, "staff_id": self.staff_id,
        }
        if self.log_key is not None:
            obj["log_key"] = b64encode(self.log_key)
        return obj

    @classmethod
    def from_json(cls, obj: Any) -> ProfileInfo:
        try:
            if not isinstance(obj, dict) or obj.get("v") != 1 or obj.get("kind") not in KINDS:
                raise ValueError("unknown profile format")
            log_key = obj.get("log_key")
            return cls(
                kind=obj["kind"], name=str(obj["name"]), relay=obj.get("relay"),
                network=NetworkAnchor.from_json(obj["network"]),
                org_id=obj.get("org_id"), staff_id=obj.get("staff_id"),
                log_key=b64decode(log_key, size=32) if log_key else None,
            )
        except (KeyError, TypeError, ValueError, EncodingError, UsageError) as exc:
            raise ProfileError("profile_corrupt", detail=str(exc)) from None


@dataclass
class Profile:
    """A profile directory and its public facts; the keystore is opened separately."""

    home: Path
    name: str
    info: ProfileInfo

    @property
    def dir(self) -> Path:
        return profile_dir(self.home, self.name)

    @property
    def keystore_path(self) -> Path:
        return self.dir / "keystore"

    @property
    def state_path(self) -> Path:
        return self.dir / "state.db"

    def save(self) -> None:
        """Write ``profile.json`` atomically (public data, but 0600 like everything here)."""
        text = json.dumps(self.info.to_json(), indent=2, sort_keys=True) + "\n"
        write_private_file(self.dir / "profile.json", text.encode("utf-8"))

    def update(self, **changes: Any) -> None:
        """Change some public facts and save."""
        self.info = replace(self.info, **changes)
        self.save()

    def open_keystore(self, passphrase: str) -> Keystore:
        """Decrypt this profile's keystore; a wrong passphrase is a ``ProfileError``."""
        return open_keystore(self.keystore_path, passphrase)


def profile_dir(home: Path, name: str) -> Path:
    if not PROFILE_NAME_RE.match(name):
        raise UsageError("bad_profile_name", name=name)
    return Path(home) / name


def load_profile(home: Path | str | None, name: str | None) -> Profile:
    """The profile ``name`` under ``home`` (defaults from the environment)."""
    home_path = Path(home) if home is not None else default_home()
    name = name or default_profile()
    path = profile_dir(home_path, name) / "profile.json"
    try:
        obj = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ProfileError("profile_missing", profile=name, home=str(home_path)) from None
    except (OSError, ValueError) as exc:
        raise ProfileError("profile_corrupt", detail=str(exc)) from None
    return Profile(home=home_path, name=name, info=ProfileInfo.from_json(obj))


def create_profile(home: Path | str | None, name: str | None, info: ProfileInfo,
                   passphrase: str, secrets: dict[str, bytes]) -> tuple[Profile, Keystore]:
    """A new profile directory with its keystore and ``profile.json``; never overwrites."""
    home_path = Path(home) if home is not None else default_home()
    name = name or default_profile()
    directory = profile_dir(home_path, name)
    if (directory / "profile.json").exists() or (directory / "keystore").exists():
        raise ProfileError("profile_exists", profile=name, home=str(home_path))
    if not passphrase:
        raise ProfileError("empty_passphrase")
    require_strong(passphrase, [name])  # the library refuses what kok and the app refuse
    make_private_dir(directory)
    profile = Profile(home=home_path, name=name, info=info)
    try:
        # the anchor is pinned where only the passphrase can change it (client.pinning)
        pins = {"anchor": b64encode(info.network.network_key)}
        if info.log_key is not None:  # a joined device learns it from its other device
            pins["log_key"] = b64encode(info.log_key)
        keystore = Keystore.create(profile.keystore_path, passphrase, secrets,
                                   meta={PINNED: pins})
    except KeystoreError as exc:
        raise ProfileError("keystore_error", detail=str(exc)) from None
    profile.save()
    return profile, keystore


def save_keystore(keystore: Keystore, new_passphrase: str | None = None) -> None:
    """``Keystore.save`` (or ``change_passphrase``) with its errors mapped to ``ProfileError``;
    a new passphrase that is easy to guess is refused (``weak_passphrase``), nothing saved."""
    if new_passphrase is not None:
        if not new_passphrase:
            raise ProfileError("empty_passphrase")
        require_strong(new_passphrase, [keystore.path.parent.name])
    try:
        if new_passphrase is None:
            keystore.save()
        else:
            keystore.change_passphrase(new_passphrase)
    except KeystoreChanged:
        raise ProfileError("keystore_changed") from None
    except KeystoreError as exc:
        raise ProfileError("keystore_error", detail=str(exc)) from None
    except OSError as exc:
        raise ProfileError("keystore_error", detail=exc.strerror or str(exc)) from None


def open_keystore(path: Path, passphrase: str) -> Keystore:
    """``Keystore.open`` with its errors mapped to ``ProfileError`` codes."""
    try:
        return Keystore.open(path, passphrase)
    except WrongPassphrase:
        raise ProfileError("wrong_passphrase") from None
    except KeystoreMissing:
        raise ProfileError("keystore_missing", path=str(path)) from None
    except KeystoreCorrupt:
        raise ProfileError("keystore_corrupt", path=str(path)) from None
    except KeystoreError as exc:
        raise ProfileError("keystore_error", detail=str(exc)) from None
