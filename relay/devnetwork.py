"""A development network office: the network key in a keystore profile, and its anchor.

Used by ``relay.devrun`` (``make run``) and by the test helpers. The profile follows the
shared contract: ``<home>/<profile>/keystore`` (secret ``network``) and ``profile.json``
(public facts); the anchor (``NETWORK_JSON``) is public.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from protocol import SigningKeyPair, b64encode


def network_anchor(name: str, key: SigningKeyPair) -> dict[str, Any]:
    """The public trust anchor of a network."""
    return {"v": 1, "name": name, "network_key": b64encode(key.public),
            "fingerprint": key.fingerprint}


def create_network_profile(home: Path, profile: str, name: str, passphrase: str,
                           relay_url: str | None, key: SigningKeyPair | None = None
                           ) -> tuple[SigningKeyPair, dict[str, Any]]:
    """Create ``<home>/<profile>/`` holding a network office keystore and profile.json."""
    from client.keystore import Keystore, write_private_file

    key = key or SigningKeyPair.from_seed(secrets.token_bytes(32))
    anchor = network_anchor(name, key)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = home / profile
    folder.mkdir(exist_ok=True, mode=0o700)
    Keystore.create(folder / "keystore", passphrase, secrets={"network": key.seed})
    facts = {"v": 1, "kind": "network", "name": name, "relay": relay_url, "network": anchor,
             "org_id": None, "staff_id": None}
    write_private_file(folder / "profile.json", (json.dumps(facts, indent=2) + "\n").encode())
    return key, anchor
