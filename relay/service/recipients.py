"""Who may receive, and which devices of the recipients must fetch before deletion.

``require_recipient``: an admitted organisation with a published epoch key.

``DeviceActivity``: a device counts for delivery (the relay keeps an envelope or drop until
it fetched it, SPEC.md section 18) only while it is not abandoned: it logged in within the
longest time a message may be kept (``limits.max_ttl``), or was added to the key log within
that time. A laptop left in a drawer would otherwise hold every new message on the relay
until its TTL. The person still counts (k of n): only the device stops holding envelopes.

Theory of operation
-------------------
Each login records its day (not the time: the day is all the rule needs) in the store,
once per device and day. A device with no login recorded counts from when it was added, or
from when the relay began recording logins if that is later, so upgrading a relay to this
rule leaves out no device before it had ``max_ttl`` to log in. Memory caches what this
process knows; a device memory calls abandoned is read again from the store before it is
left out, so a login through another relay process sharing the store counts at once.
"""

from __future__ import annotations

from protocol import KeyLog
from protocol.errors import LogError
from protocol.keylog import EpochState

from ..errors import RecipientUnknown
from ..store.interface import DeviceSeenStore

DAY = 86400
ALL_ACTIVE_CACHE = 4096
"""Device lists whose answer ``all_active`` remembers at once (then it starts afresh)."""


def require_recipient(keylog: KeyLog, org_id: str) -> EpochState:
    """The current epoch of ``org_id``; ``RecipientUnknown`` if it cannot receive."""
    try:
        return keylog.current_epoch(org_id)
    except LogError as exc:
        raise RecipientUnknown(
            f"{org_id} is not an admitted organisation with a published key.") from exc


class DeviceActivity:
    """When devices last logged in, and which current devices still count for delivery."""

    def __init__(self, store: DeviceSeenStore, *, max_ttl: int) -> None:
        self.store = store
        self.max_ttl = max_ttl
        self._seen: dict[tuple[str, str], int] = {}
        self._all_active: dict[tuple[tuple[str, str], ...], tuple[KeyLog, int, int]] = {}
        """Device lists found all active, with the key log (and its size) they were checked
        against and the last second all of them stay active: a login only postpones that
        second, so the answer holds until then unless the log grew."""
        self._since = 0
        """The day the relay began recording logins: a device with no login recorded
        counts as seen then (a relay upgraded to this rule abandons nobody at once)."""

    async def load(self, now: int) -> None:
        """Learn (or, on the first start, record) since when logins are recorded."""
        since = (await self.store.devices_seen([""])).get(("", ""))
        if since is None:
            since = now - now % DAY
            await self.store.mark_device_seen("", "", since, 0)
        self._since = since

    async def logged_in(self, staff_id: str, device: str, now: int) -> None:
        """A device logged in: remember the day (one write per device and day)."""
        if not device:
            return  # a session from before devices names none
        day = now - now % DAY
        key = (staff_id, device)
        if self._seen.get(key, -1) >= day:
            return
        await self.store.mark_device_seen(staff_id, device, day, day - self.max_ttl - DAY)
        self._seen[key] = day

    def all_active(self, devices: tuple[tuple[str, str], ...], keylog: KeyLog, now: int) -> bool:
        """Are all of ``devices`` active by what this process remembers?"""
        known = self._all_active.get(devices)
        if (known is not None and known[0] is keylog and known[1] == keylog.size
                and now <= known[2]):
            return True  # every send to an organisation asks this of the same devices
        until = min((self._active_until(staff_id, device, keylog)
                     for staff_id, device in devices), default=now)
        if now > until:
            return False
        if len(self._all_active) >= ALL_ACTIVE_CACHE:
            self._all_active.clear()
        self._all_active[devices] = (keylog, keylog.size, until)
        return True

    async def counted(self, devices: tuple[tuple[str, str], ...], keylog: KeyLog, now: int
                      ) -> tuple[tuple[str, str], ...]:
        """The ``(staff_id, device)`` of ``devices`` (current ones) that are not abandoned."""
        quiet = {staff_id for staff_id, device in devices
                 if not self._active(staff_id, device, keylog, now)}
        if not quiet:
            return devices
        # memory may be behind another process sharing the store: ask it before leaving
        # a device out, or that device would miss what is deleted before it comes back
        self._seen.update(await self.store.devices_seen(sorted(quiet)))
        return tuple(key for key in devices if self._active(*key, keylog, now))

    def _active(self, staff_id: str, device: str, keylog: KeyLog, now: int) -> bool:
        return now <= self._active_until(staff_id, device, keylog)

    def _active_until(self, staff_id: str, device: str, keylog: KeyLog) -> int:
        """The last second the device counts, by what memory knows of its logins."""
        since = max(keylog.device(staff_id, device).added_at, self._since)
        seen = self._seen.get((staff_id, device))
        if seen is not None:  # a day counts whole: a login at its start still counts at its end
            since = max(since, seen + DAY - 1)
        return since + self.max_ttl
