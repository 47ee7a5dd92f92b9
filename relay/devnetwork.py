"""A network's public trust anchor (``network.json``) from its key, for tests and tools.

The network office's *profile* (its keystore) is the client's business: ``make run`` has
``kok network init`` make one (``relay.devrun``), and tests use ``client.onboarding``.
"""

from __future__ import annotations

from typing import Any

from protocol import SigningKeyPair, b64encode


def network_anchor(name: str, key: SigningKeyPair) -> dict[str, Any]:
    """The public trust anchor of a network."""
    return {"v": 1, "name": name, "network_key": b64encode(key.public),
            "fingerprint": key.fingerprint}
