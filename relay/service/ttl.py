"""The one rule for a time-to-live a client asks for (messages and drops alike)."""

from __future__ import annotations

from ..errors import TtlOutOfRange


def checked_ttl(asked: int | None, default: int, max_ttl: int) -> int:
    """``asked`` (or ``default`` when None) if it is from 1 to ``max_ttl`` seconds; else 4xx."""
    value = default if asked is None else asked
    if not 1 <= value <= max_ttl:
        raise TtlOutOfRange(f"ttl must be between 1 and {max_ttl} seconds, not {value}.")
    return value
