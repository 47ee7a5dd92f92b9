"""Creating identities: a network office, an organisation (with its admin), a staff member.

Each creates a profile (keystore + ``profile.json``) with fresh keys from the OS random
source. ``new_org`` and ``new_staff`` also write a self-signed request file (proof that
the requester holds the key) for the network office or the org admin, and first ask the
relay whether the request can succeed (right network, org id free / org admitted), so a
typo is caught before anyone reads fingerprints over the phone. A profile whose checks
fail is removed again, so the command can simply be repeated.
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from protocol.encoding import ID_RE
from protocol.keylog import KeyLog
from protocol.keys import BoxKeyPair, SigningKeyPair
from protocol.requests import make_org_request, make_staff_request

from .api import check_relay_url
from .errors import AccessError, UsageError
from .keystore import Keystore
from .profile import NetworkAnchor, Profile, ProfileInfo, create_profile

# German transliteration (DIN 5007-2), as people spell their names without umlauts.
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
                         "ß": "ss", "ẞ": "SS"})


def slug(name: str) -> str:
    """A staff id part from a person's name: ``Anna Müller`` -> ``anna-mueller``."""
    german = unicodedata.normalize("NFC", name).translate(_GERMAN)
    ascii_name = unicodedata.normalize("NFKD", german).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:32].strip("-")


def check_id(value: str, what: str) -> str:
    if not ID_RE.fullmatch(value):
        raise UsageError("bad_id", what=what, value=value)
    return value


def init_network(home: str | Path | None, profile: str | None, passphrase: str, name: str,
                 *, network_key: SigningKeyPair | None = None,
                 relay: str | None = None) -> tuple[Profile, NetworkAnchor]:
    """A network-office profile holding the network key; returns it and the public anchor.

    ``relay``: the network's relay, remembered for admissions and revocations (it can also
    be given, and is then remembered, on the first ``network.admit``).
    """
    if not name.strip():
        raise UsageError("empty_name")
    relay = check_relay_url(relay) if relay else None
    key = network_key or SigningKeyPair.from_seed(secrets.token_bytes(32))
    anchor = NetworkAnchor(name=name.strip(), network_key=key.public)
    info = ProfileInfo(kind="network", name=anchor.name, relay=relay, network=anchor)
    prof, _ = create_profile(home, profile, info, passphrase,
                             {"network": key.seed, "storage": secrets.token_bytes(32)})
    return prof, anchor


LogCheck = Callable[[KeyLog], None]
"""Raises if the relay's (verified) key log says the new profile cannot go ahead."""


def org_profile(home: str | Path | None, profile: str | None, passphrase: str, *,
                org_id: str, name: str, relay: str, network: NetworkAnchor,
                admin: str = "admin") -> tuple[Profile, Keystore, bytes, LogCheck]:
    """An org-admin profile (org identity + the admin's staff keys), its admission request,
    and the check the relay's key log must pass (``Client.new_org`` runs it)."""
    check_id(org_id, "org")
    check_id(admin, "staff")
    if not name.strip():
        raise UsageError("empty_name")
    relay = check_relay_url(relay)
    identity = SigningKeyPair.from_seed(secrets.token_bytes(32))
    info = ProfileInfo(kind="org", name=name.strip(), relay=relay, network=network,
                       org_id=org_id, staff_id=f"{org_id}/{admin}")
    prof, keystore = create_profile(home, profile, info, passphrase, {
        "identity": identity.seed, "signing": secrets.token_bytes(32),
        "box": secrets.token_bytes(32), "storage": secrets.token_bytes(32),
    })

    def check(log: KeyLog) -> None:
        org = log.orgs.get(org_id)
        if org is not None and not org.revoked:
            raise AccessError("org_exists", org=org_id)

    return prof, keystore, make_org_request(identity, org_id, name.strip(),
                                            int(time.time())), check


def staff_profile(home: str | Path | None, profile: str | None, passphrase: str, *,
                  org_id: str, name: str, relay: str, network: NetworkAnchor,
                  role: str = "staff") -> tuple[Profile, Keystore, bytes, LogCheck]:
    """A staff profile, its enrolment request (the staff id is ``org/<slug of name>``), and
    the check the relay's key log must pass (``Client.new_staff`` runs it)."""
    check_id(org_id, "org")
    part = slug(name)
    check_id(part, "staff")
    if role not in ("staff", "admin"):
        raise UsageError("bad_role", role=role)
    relay = check_relay_url(relay)
    staff_id = f"{org_id}/{part}"
    signing = SigningKeyPair.from_seed(secrets.token_bytes(32))
    box = BoxKeyPair.from_seed(secrets.token_bytes(32))
    info = ProfileInfo(kind="staff", name=name.strip(), relay=relay, network=network,
                       org_id=org_id, staff_id=staff_id)
    prof, keystore = create_profile(home, profile, info, passphrase, {
        "signing": signing.seed, "box": box.secret, "storage": secrets.token_bytes(32),
    })

    def check(log: KeyLog) -> None:
        org = log.orgs.get(org_id)
        if org is None:
            raise AccessError("unknown_org", org=org_id)
        if org.revoked:
            raise AccessError("org_revoked", org=org_id)
        if staff_id in org.staff:
            raise AccessError("staff_exists", staff=staff_id)

    return prof, keystore, make_staff_request(signing, box.public, staff_id, name.strip(),
                                              int(time.time()), role), check


def device_profile(home: str | Path | None, profile: str | None, passphrase: str, *,
                   staff_id: str, relay: str, network: NetworkAnchor
                   ) -> tuple[Profile, Keystore, bytes, LogCheck]:
    """A profile for one more device of ``staff_id``, its link request, and the check the
    relay's key log must pass (``Client.new_device`` runs it).

    The keys are made here, on the new device; the request (a staff request file for the
    existing staff id, self-signed by the new device's key) goes to one of the person's
    current devices, which compares its fingerprint and adds the device to the key log.
    """
    staff_id = check_id_pair(staff_id)
    org_id = staff_id.split("/", 1)[0]
    relay = check_relay_url(relay)
    signing = SigningKeyPair.from_seed(secrets.token_bytes(32))
    box = BoxKeyPair.from_seed(secrets.token_bytes(32))
    info = ProfileInfo(kind="staff", name=staff_id.split("/", 1)[1], relay=relay,
                       network=network, org_id=org_id, staff_id=staff_id)
    prof, keystore = create_profile(home, profile, info, passphrase, {
        "signing": signing.seed, "box": box.secret, "storage": secrets.token_bytes(32),
    })

    def check(log: KeyLog) -> None:
        org = log.orgs.get(org_id)
        if org is None:
            raise AccessError("unknown_org", org=org_id)
        if org.revoked:
            raise AccessError("org_revoked", org=org_id)
        staff = org.staff.get(staff_id)
        if staff is None or not staff.active:
            raise AccessError("not_enrolled", staff=staff_id)

    return prof, keystore, make_staff_request(signing, box.public, staff_id, info.name,
                                              int(time.time()), "staff"), check


def check_id_pair(staff_id: str) -> str:
    """A staff id ``org/name`` (each part a valid id), else ``UsageError``."""
    org_id, _, name = staff_id.partition("/")
    check_id(org_id, "org")
    check_id(name, "staff")
    return staff_id


def remove_new_profile(prof: Profile) -> None:
    """Delete the files a just-created profile consists of (nothing else in its folder)."""
    for name in ("keystore", ".keystore.lock", "profile.json", "state.db", "state.db-journal",
                 "state.db-wal", "state.db-shm"):
        (prof.dir / name).unlink(missing_ok=True)
    try:
        prof.dir.rmdir()
    except OSError:
        pass  # not empty: something of the person's own lives there
