"""When a device replaces its box key, and when it may delete an old box secret.

Theory of operation
-------------------
Grants carry epoch secrets sealed to a device's box key (SPEC.md section 10). A relay
that kept every grant would, with a device captured later, reopen every old epoch if the
box key never changed. So each device replaces its box key (a ``box_key`` record signed
by itself) after each rotation it took part in and at least every ``BOX_KEY_PERIOD``, and
deletes the old box secret once no grant sealed to it can still be waiting (SPEC.md
section 20.6). These are pure decisions over the verified key log; the client acts on
them (makes the key, appends the record, deletes the secret).
"""

from __future__ import annotations

from collections.abc import Callable

from .encoding import org_of
from .keylog import DeviceState, KeyLog

BOX_KEY_PERIOD = 7 * 86400
"""The longest a device keeps one box key (seconds)."""

BOX_KEY_GRACE = 3600
"""How long a replaced box secret is kept for grants sealed just before the replacement."""


def box_key_since_index(log: KeyLog, device: DeviceState) -> int:
    """Log position of the entry that made the device's current box key current."""
    key = device.box_key
    for entry in reversed(log.entries):
        if getattr(entry.record, "box_key", None) == key:
            return entry.index
    raise ValueError("the device's box key is not in the log")


def box_key_due(log: KeyLog, staff_id: str, device_id: str,
                holds_epoch: Callable[[str, int], bool], now: int) -> str | None:
    """Why the device must replace its box key now (``"rotation"``, ``"age"``), or None.

    ``holds_epoch(org_id, number)`` tells whether the device holds that epoch's secret.
    """
    device = log.device(staff_id, device_id)
    org = log.org(org_of(staff_id))
    since = box_key_since_index(log, device)
    if any(e.index > since and holds_epoch(org.org_id, e.number) for e in org.epochs):
        return "rotation"
    if now >= device.box_keys[-1][1] + BOX_KEY_PERIOD:
        return "age"
    return None


def deletable_box_keys(log: KeyLog, staff_id: str, device_id: str, held: list[bytes],
                       grants_settled: bool, now: int) -> list[bytes]:
    """Which of the ``held`` box public keys the device must delete now (SPEC 20.6).

    ``grants_settled``: the device has just fetched its grants and each is for an epoch
    it holds or deleted, or opens with a box secret it keeps.
    """
    if not grants_settled:
        return []
    device = log.device(staff_id, device_id)
    history = device.box_keys
    out = []
    for public in held:
        later = [since for (key, since) in _after(history, public)]
        if public != device.box_key and later and now >= later[0] + BOX_KEY_GRACE:
            out.append(public)
    return out


def _after(history: list[tuple[bytes, int]], public: bytes) -> list[tuple[bytes, int]]:
    """The box keys that followed ``public`` in the device's history (empty if unknown)."""
    for position, (key, _) in enumerate(history):
        if key == public:
            return history[position + 1:]
    return []
