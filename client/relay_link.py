"""The connection of one profile to its relay, checked against the profile's anchor.

Theory of operation
-------------------
The relay is contacted lazily, on the first call that needs it (``RelayLink.api``):
``/v1/info`` must serve the network key of the profile's anchor and announce the origin we
were given, and its log key is pinned on first use (in the keystore and ``profile.json``,
``client.pinning``; a different key later is an error). Only then does the transport send
our log head and log in with our staff key. ``sync_log`` brings the verified key-log mirror
up to date, one sync at a time, and refuses to go on while this computer's clock is off from
the relay's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from protocol.auth import origin_of
from protocol.encoding import b64decode
from protocol.errors import ProtocolError
from protocol.keylog import MAX_SKEW

from .api import RelayApi, check_relay_url
from .directory import Directory
from .errors import AccessError, ClockError, RelayRefused, UsageError, VerificationError
from .pinning import pin_log_key
from .profile import Profile
from .unlocked_keys import UnlockedKeys


class RelayLink:
    """The relay connection of one profile (connecting on first use) and its log sync."""

    def __init__(self, profile: Profile, directory: Directory, keys: UnlockedKeys, *,
                 relay: str | None = None, ca_file: str | Path | None = None) -> None:
        self.profile = profile
        self.directory = directory
        self.keys = keys
        self.ca_file = ca_file
        self.override = check_relay_url(relay) if relay else None
        self._api: RelayApi | None = None
        self._log_key: bytes | None = None
        self._info: dict[str, Any] | None = None
        # One log sync at a time: ``listen`` and a send in the same process (the staff app)
        # must not apply the same entries twice, which would read as a rewritten log.
        self._log_lock = asyncio.Lock()

    @property
    def url(self) -> str:
        url = self.override or self.profile.info.relay
        if not url:
            raise UsageError("no_relay")
        return url

    async def api(self) -> RelayApi:
        """The relay connection, checked against our anchor (connecting on first use)."""
        if self._api is None:
            await self._connect()
        assert self._api is not None
        return self._api

    async def close(self) -> None:
        """End the relay session (if one was opened)."""
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def _connect(self) -> None:
        url = self.url
        # No Kok-Log-Head until the relay proved it serves our network: our head is ours.
        api = RelayApi(url, ca_file=self.ca_file)
        try:
            info = await api.info()
            network_key = b64decode(str(info.get("network_key")), size=32, field="network_key")
            log_key = b64decode(str(info.get("log_key")), size=32, field="log_key")
            # Bound to the URL *we* were given, never to what the relay says of itself: a
            # host that forwards to the real relay then gets a login only it can use, and
            # the real relay refuses it.
            origin = origin_of(url)
            announced = info.get("origins") or [info["origin"]]
            if not isinstance(announced, list):
                announced = []  # then our origin is not in it: refused below
        except (KeyError, ProtocolError):
            await api.close()
            raise RelayRefused("bad_response", 502, "info") from None
        except BaseException:
            await api.close()
            raise
        if network_key != self.profile.info.network.network_key:
            await api.close()
            raise AccessError("wrong_network", url=url, network=self.profile.info.network.name)
        if origin not in announced:
            await api.close()
            raise AccessError("relay_origin_mismatch", url=url,
                              announced=", ".join(str(a) for a in announced))
        pinned = self.profile.info.log_key
        if pinned is None:
            pin_log_key(self.profile, self.keys.keystore, log_key)
        elif pinned != log_key:
            await api.close()
            raise VerificationError("log_key_changed", url=url)
        if self.override and self.override != self.profile.info.relay:
            self.profile.update(relay=self.override)
        api.send_log_head(self.directory.head_header)
        info_kind, staff_id = self.profile.info.kind, self.profile.info.staff_id
        if info_kind in ("org", "staff") and staff_id:
            api.use_identity(staff_id, self.keys.signing(), origin)
        self._api, self._log_key, self._info = api, log_key, info

    def check_clock(self) -> None:
        """Refuse to go on when this computer's clock is off from the relay's (``Date``).

        Signed records and messages carry our time; a clock more than the protocol's skew
        off would make them look forged or expired to others (and theirs to us).
        """
        if self._api is None or self._api.clock_offset is None:
            return
        offset = self._api.clock_offset
        if abs(offset) > MAX_SKEW:
            minutes = max(1, round(abs(offset) / 60))
            raise ClockError("clock_behind" if offset > 0 else "clock_ahead", minutes=minutes)

    def limit(self, name: str) -> int | None:
        """A limit the relay stated in ``/v1/info`` (None before connecting, or if absent)."""
        limits = (self._info or {}).get("limits")
        value = limits.get(name) if isinstance(limits, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    async def sync_log(self) -> int:
        """Bring the verified key-log mirror up to date; returns the number of new entries."""
        api = await self.api()
        assert self._log_key is not None
        async with self._log_lock:
            try:
                added = await self.directory.sync(api, self._log_key)
            except VerificationError as exc:
                if exc.code == "log_timestamp":
                    self.check_clock()  # "dated in the future" may be our clock: say so
                raise
        self.check_clock()
        return added
