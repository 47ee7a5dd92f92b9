"""The one rule for a time-to-live a client asks for (messages and drops alike)."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest, TtlOutOfRange


def checked_ttl(value: Any, max_ttl: int) -> int:
    """``value`` if it is a whole number of seconds from 1 to ``max_ttl``; else a 4xx."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest("ttl must be an integer number of seconds")
    if not 1 <= value <= max_ttl:
        raise TtlOutOfRange(f"ttl must be between 1 and {max_ttl} seconds, not {value}.")
    return value
