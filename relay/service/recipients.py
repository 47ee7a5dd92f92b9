"""The one rule for who may receive: an admitted organisation with a published epoch key."""

from __future__ import annotations

from protocol import KeyLog
from protocol.errors import LogError
from protocol.keylog import EpochState

from ..errors import RecipientUnknown


def require_recipient(keylog: KeyLog, org_id: str) -> EpochState:
    """The current epoch of ``org_id``; ``RecipientUnknown`` if it cannot receive."""
    try:
        return keylog.current_epoch(org_id)
    except LogError as exc:
        raise RecipientUnknown(
            f"{org_id} is not an admitted organisation with a published key.") from exc
