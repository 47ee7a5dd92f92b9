"""Token buckets in memory: requests per minute per staff member, per organisation, public.

A bucket holds up to ``per_minute`` tokens and refills continuously at ``per_minute / 60``
per second, so a client may burst up to a minute's allowance and then continues at the
steady rate. Buckets live only in memory (a restart forgives everyone) and idle ones are
dropped, so the table cannot grow without bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets keyed by any string; ``take`` answers how long to wait, or 0 if allowed."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, _Bucket] = {}
        self._spent: dict[str, int] | None = None

    def track_spending(self) -> None:
        """Count what each key spends, for ``drain_spent`` (several relay processes)."""
        self._spent = {}

    def drain_spent(self) -> dict[str, int]:
        """Tokens spent per key since the last call (only while tracking)."""
        spent, self._spent = self._spent or {}, ({} if self._spent is not None else None)
        return spent

    def charge(self, key: str, count: int, now: float) -> None:
        """Spend ``count`` tokens of ``key`` that another relay process let through."""
        if self.per_minute <= 0 or count <= 0:
            return
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._drop_full(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.per_minute), updated=now)
        else:
            bucket.tokens = min(float(self.per_minute),
                                bucket.tokens + (now - bucket.updated) * self.per_minute / 60.0)
            bucket.updated = now
        bucket.tokens -= count  # may go below zero: the key then waits until it refills

    def take(self, key: str, now: float) -> int:
        """Spend one token of ``key``'s bucket; return 0, or the seconds to wait if empty."""
        if self.per_minute <= 0:
            return 0
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._drop_full(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.per_minute), updated=now)
        else:
            refill = (now - bucket.updated) * rate
            bucket.tokens = min(float(self.per_minute), bucket.tokens + refill)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            if self._spent is not None:
                self._spent[key] = self._spent.get(key, 0) + 1
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / rate))

    def _drop_full(self, now: float) -> None:
        """Forget buckets that would be full by now (they carry no information)."""
        rate = self.per_minute / 60.0
        self._buckets = {
            key: b for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * rate < self.per_minute
        }
        if len(self._buckets) >= MAX_BUCKETS:
            self._buckets.clear()
