"""Linking a new device with a one-time code (``kok device link`` / ``kok device join``).

Theory of operation
-------------------
The rules and formats are ``protocol.link`` (SPEC.md section 6.9); this module runs the two
sides over the relay's mailbox (``/v1/link``), polling it.

Existing device (``start_link``, then ``DeviceLink.wait``):

1. open a mailbox (the relay draws the nameplate), draw eight secret digits with
   ``secrets``: that is the code to show; post our SPAKE2 message;
2. wait for the new device's SPAKE2 message and its confirmed, encrypted device offer;
   a wrong confirmation closes the mailbox and fails with ``link_wrong_code`` (one guess
   per code, for the relay as for anyone);
3. append the ``device_add`` for the offered keys (signed by this device, as
   ``add_device`` does after a compared request file: the code *was* the comparison) and
   post the confirmed, encrypted profile offer (staff id, name, the relay log key we
   pinned).

New device (``join_link``): read the existing side's SPAKE2 message, post ours and the
device offer, wait for the profile offer, check its confirmation, close the mailbox. The
caller (``Client.join_device``) only then writes the profile and checks that the key log
shows the new device; nothing is written on this device before the exchange succeeded.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from protocol.errors import LinkError
from protocol.keylog import KeyLog
from protocol.keys import BoxKeyPair, SigningKeyPair
from protocol.link import (
    EXISTING,
    NEW,
    NONCE_SIZE,
    PASSWORD_DIGITS,
    LinkCode,
    LinkPake,
    ProfileOffer,
    make_device_offer,
    make_profile_offer,
    open_device_offer,
    open_link_message,
    open_profile_offer,
    seal_link_message,
)

from .api import RelayApi
from .devices import append_device
from .errors import AccessError, ProfileError, RelayRefused, VerificationError
from .keystore import Keystore
from .onboarding import LogCheck
from .passphrase_strength import require_strong
from .profile import (
    NetworkAnchor,
    Profile,
    ProfileInfo,
    create_profile,
    default_home,
    default_profile,
    profile_dir,
)

if TYPE_CHECKING:
    from .context import ClientContext

EXISTING_POLL = 1.0
"""Seconds between two looks into the mailbox on the existing device (it waits for a person)."""
NEW_POLL = 0.5
"""Seconds between two looks on the new device (it waits for the other device only)."""
T = TypeVar("T")


def _entropy(size: int) -> bytes:
    return secrets.token_bytes(size)


@dataclass
class DeviceLink:
    """A link the existing device offered: show ``code``, then await ``wait()``."""

    code: str
    _ctx: ClientContext = field(repr=False)
    _nameplate: str = field(repr=False)
    _pake: LinkPake = field(repr=False)
    poll: float = EXISTING_POLL

    async def wait(self) -> str:
        """Wait for the new device, add it to the key log; returns its device id.

        ``link_wrong_code`` if the other side used another code (nothing is added and the
        mailbox is closed); ``link_expired`` if nobody answered in time.
        """
        api = await self._ctx.api()
        try:
            answer = await _poll(lambda: api.read_link(self._nameplate, NEW, 0),
                                 lambda got: len(got) >= 2, self.poll, "link_expired")
            keys = self._pake.finish(answer[0])
            offer = open_device_offer(open_link_message(keys, NEW, answer[1]), keys)
        except LinkError as exc:
            await api.close_link(self._nameplate)  # one guess per code: this one is spent
            raise VerificationError.from_protocol(exc) from None
        device = await append_device(self._ctx, offer.signing_key, offer.box_key)
        profile = self._ctx.profile.info
        staff_id = self._ctx.require_staff()
        assert profile.log_key is not None  # pinned when we connected to open the mailbox
        name = profile.name if profile.kind == "staff" else staff_id.split("/", 1)[1]
        reply = make_profile_offer(ProfileOffer(staff_id, name, profile.log_key))
        await api.post_link(self._nameplate, EXISTING,
                            seal_link_message(keys, EXISTING, reply, _entropy(NONCE_SIZE)))
        return device

    async def cancel(self) -> None:
        """Give up the link: the mailbox is deleted, the code no longer works."""
        await (await self._ctx.api()).close_link(self._nameplate)


async def start_link(ctx: ClientContext, poll: float = EXISTING_POLL) -> DeviceLink:
    """Open a mailbox and make the one-time code for a new device of ours."""
    await ctx.sync_log()
    ctx.require_staff()
    api = await ctx.api()
    opened = await api.open_link()
    code = LinkCode.from_number(str(opened["nameplate"]),
                                secrets.randbelow(10**PASSWORD_DIGITS))
    pake = LinkPake(EXISTING, code, ctx.profile.info.network.network_key, _entropy)
    await api.post_link(code.nameplate, EXISTING, pake.message)
    return DeviceLink(str(code), ctx, code.nameplate, pake, poll)


@dataclass(frozen=True)
class JoinedDevice:
    """What the new device learned in a successful exchange, and its keys."""

    offer: ProfileOffer
    signing: SigningKeyPair
    box: BoxKeyPair


async def join_link(code_text: str, relay: str, network: NetworkAnchor, *,
                    ca_file: str | Path | None = None, poll: float = NEW_POLL) -> JoinedDevice:
    """Run the new device's side; its keys are made here and returned with the profile offer."""
    code = LinkCode.parse(code_text)
    signing = SigningKeyPair.from_seed(secrets.token_bytes(32))
    box = BoxKeyPair.from_seed(secrets.token_bytes(32))
    nameplate = code.nameplate
    async with RelayApi(relay, ca_file=ca_file) as api:
        first = await _poll(lambda: api.read_link(nameplate, EXISTING, 0), bool, poll,
                            "link_unknown")
        pake = LinkPake(NEW, code, network.network_key, _entropy)
        try:
            keys = pake.finish(first[0])
            await api.post_link(nameplate, NEW, pake.message)
            offer = make_device_offer(signing, box.public, keys)
            await api.post_link(nameplate, NEW,
                                seal_link_message(keys, NEW, offer, _entropy(NONCE_SIZE)))
            reply = await _poll(lambda: api.read_link(nameplate, EXISTING, 1), bool, poll,
                                "link_ended")
            profile = open_profile_offer(open_link_message(keys, EXISTING, reply[0]))
        except LinkError as exc:
            await api.close_link(nameplate)
            raise VerificationError.from_protocol(exc) from None
        except RelayRefused as exc:
            if exc.code == "link_side_done":  # someone else answered this code first
                raise AccessError("link_taken") from None
            raise
        await api.close_link(nameplate)
    return JoinedDevice(profile, signing, box)


def linked_profile(home: str | Path | None, profile: str | None, passphrase: str,
                   joined: JoinedDevice, relay: str, network: NetworkAnchor
                   ) -> tuple[Profile, Keystore, LogCheck]:
    """The new device's profile from a successful exchange, and the check the relay's key
    log must pass (it shows this device as a current device of the person)."""
    staff_id = joined.offer.staff_id
    info = ProfileInfo(kind="staff", name=joined.offer.name, relay=relay, network=network,
                       org_id=staff_id.split("/", 1)[0], staff_id=staff_id,
                       log_key=joined.offer.log_key)
    prof, keystore = create_profile(home, profile, info, passphrase, {
        "signing": joined.signing.seed, "box": joined.box.secret,
        "storage": secrets.token_bytes(32)})
    device_id = joined.signing.fingerprint

    def check(log: KeyLog) -> None:
        staff = log.orgs[info.org_id].staff.get(staff_id) if info.org_id in log.orgs else None
        device = staff.devices.get(device_id) if staff is not None else None
        if staff is None or not staff.active or device is None or device.removed_at:
            raise AccessError("link_not_added", staff=staff_id)

    return prof, keystore, check


def check_new_profile_free(home: str | Path | None, profile: str | None,
                           passphrase: str) -> None:
    """Refuse before the exchange what ``create_profile`` would refuse after it."""
    home_path = Path(home) if home is not None else default_home()
    name = profile or default_profile()
    directory = profile_dir(home_path, name)
    if (directory / "profile.json").exists() or (directory / "keystore").exists():
        raise ProfileError("profile_exists", profile=name, home=str(home_path))
    if not passphrase:
        raise ProfileError("empty_passphrase")
    require_strong(passphrase, [name])  # before the code is spent on the exchange


async def _poll(read: Callable[[], Awaitable[list[bytes]]], enough: Callable[[list[bytes]], bool],
                every: float, gone: str) -> list[bytes]:
    """Read the mailbox until ``enough``; a mailbox that is gone is ``AccessError(gone)``."""
    while True:
        try:
            got = await read()
        except RelayRefused as exc:
            if exc.code == "not_found":
                raise AccessError(gone) from None
            raise
        if enough(got):
            return got
        await asyncio.sleep(every)
