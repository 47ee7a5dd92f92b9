"""A host that merely forwards to the real relay gets no usable login.

Attack: a staff member is pointed (a typo, a phishing mail, a hostile network) at a host that
forwards every request to the real relay, /v1/info included. If the client bound its login
signature to the origin the relay *announces*, the impostor would receive a session token
valid on the real relay, and could acknowledge (and so delete) the org's mail or hold its
event stream. The client binds the login to the URL it was given (``protocol.auth.origin_of``)
and refuses a relay that does not answer to that URL.

Fails if ``client/_client.py`` takes the origin from ``/v1/info`` again, or drops the check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from client import Client
from client.errors import AccessError
from tests.support.lifecycle import PASSPHRASE, Network
from tests.support.lyingrelay import LyingRelay


async def test_a_forwarding_impostor_gets_no_login(shared_relay: Any, tmp_path: Path) -> None:
    impostor = LyingRelay.start(shared_relay)  # honest forwarding: no attack configured
    network = Network(shared_relay, tmp_path)
    try:
        admin = await network.org("victim")
        profile_home, profile = admin.profile.home, admin.profile.name
        await admin.close()
        network.people.clear()
        fooled = await Client.open(profile_home, profile, PASSPHRASE, relay=impostor.url)
        try:
            with pytest.raises(AccessError) as refused:
                await fooled.sync()
            assert refused.value.code == "relay_origin_mismatch"
        finally:
            await fooled.close()
        # through the real address the same profile still works
        again = await Client.open(profile_home, profile, PASSPHRASE, relay=shared_relay.url)
        try:
            await again.sync()
        finally:
            await again.close()
    finally:
        await network.close()
        impostor.stop()
