"""The secrets of an opened keystore, as the key pairs the client signs and opens with."""

from __future__ import annotations

from protocol.keys import BoxKeyPair, SigningKeyPair

from .errors import KokError
from .keystore import Keystore
from .profile import save_keystore


class UnlockedKeys:
    """An opened keystore: its named secrets and the staff key pairs made from them."""

    def __init__(self, keystore: Keystore) -> None:
        self.keystore = keystore
        self._signing_pair: SigningKeyPair | None = None

    @property
    def secrets(self) -> dict[str, bytes]:
        """Every secret by name (changes are kept by ``save``)."""
        return self.keystore.secrets

    def secret(self, name: str) -> bytes:
        """One named secret; ``keystore_incomplete`` if the keystore lacks it."""
        value = self.keystore.secrets.get(name)
        if value is None:
            raise KokError("keystore_incomplete", name=name)
        return value

    def signing(self) -> SigningKeyPair:
        """This profile's staff signing key."""
        # kept while the seed is the same: deriving the pair costs as much as a signature
        seed = self.secret("signing")
        if self._signing_pair is None or self._signing_pair.seed != seed:
            self._signing_pair = SigningKeyPair.from_seed(seed)
        return self._signing_pair

    def box(self) -> BoxKeyPair:
        """This profile's first box key (the one made at enrolment)."""
        return BoxKeyPair.from_seed(self.secret("box"))

    def forget(self, name: str) -> None:
        """Delete a secret for good (also from copies other processes hold, on ``save``)."""
        self.keystore.forget(name)

    def save(self) -> None:
        """Write the keystore (errors as ``ProfileError``)."""
        save_keystore(self.keystore)
