"""What a profile trusts, held where only the passphrase can change it.

Theory of operation
-------------------
Anyone who can write to the profile folder can edit ``profile.json`` and ``state.db``; only
the keystore is protected by the passphrase. So the two keys every check rests on are
pinned inside the keystore, in ``meta["pinned"]``: the network key of the trust anchor
(``anchor``) and the relay's log key (``log_key``, pinned on first contact). On every open,
``check_pins`` compares ``profile.json`` with them: a different key is ``profile_tampered``
(never silently accepted); a key the keystore holds but ``profile.json`` lost is written back.
The newest relay-signed log head and the verified-orgs list stay in ``state.db`` but are
sealed under the keystore's storage key (``client.mailbox``), so an edit or an older head
put back is ``profile_tampered`` too.

Profiles written by an older kok have no pins: the first open with the passphrase adopts
what the profile holds at that moment (``profile.json``'s keys, the stored head, the
verified list) and pins it; from then on it is checked. A copy of the *whole* profile
folder taken earlier and put back (keystore included) is still a consistent older profile:
that cannot be told apart on this computer, and a relay that then serves an older log is
caught only by comparing heads with others (``kok whois``, the positions in messages).
"""

from __future__ import annotations

from typing import Any

from protocol.encoding import b64decode, b64encode

from .keystore import PINNED, Keystore
from .mailbox import MailboxStore, ProfileTampered
from .profile import Profile, ProfileInfo, save_keystore


def pins_of(info: ProfileInfo) -> dict[str, str]:
    """The keys of ``info`` to pin: the anchor's network key and, once known, the log key
    (as ``create_profile`` pins them for a new profile)."""
    pins = {"anchor": b64encode(info.network.network_key)}
    if info.log_key is not None:
        pins["log_key"] = b64encode(info.log_key)
    return pins


def _pins(keystore: Keystore) -> dict[str, Any] | None:
    pins = keystore.meta.get(PINNED)
    return pins if isinstance(pins, dict) else None


async def check_pins(profile: Profile, keystore: Keystore, store: MailboxStore) -> None:
    """Refuse a profile whose anchor or log key differs from the keystore's pins.

    Without pins (an older kok wrote the profile) what is there is adopted and pinned.
    """
    pins = _pins(keystore)
    if pins is None:
        await store.adopt_unsealed()
        keystore.meta[PINNED] = pins_of(profile.info)
        save_keystore(keystore)
        return
    info = profile.info
    if pins.get("anchor") != b64encode(info.network.network_key):
        raise ProfileTampered("anchor")
    pinned_log_key = pins.get("log_key")
    if info.log_key is None:
        if pinned_log_key is not None:  # written to the keystore first; profile.json lost it
            profile.update(log_key=b64decode(str(pinned_log_key), size=32))
    elif pinned_log_key != b64encode(info.log_key):
        # a log key in profile.json the passphrase never confirmed
        raise ProfileTampered("log_key")


def pin_log_key(profile: Profile, keystore: Keystore, log_key: bytes) -> None:
    """Pin the relay's log key on first contact: in the keystore first, then profile.json."""
    keystore.meta.setdefault(PINNED, pins_of(profile.info))["log_key"] = b64encode(log_key)
    save_keystore(keystore)
    profile.update(log_key=log_key)
