"""Token buckets: a minute's burst, then the steady rate; bounded memory; off when 0."""

from __future__ import annotations

import pytest

from relay import ratelimit
from relay.ratelimit import RateLimiter


def test_a_full_bucket_allows_a_minutes_burst_then_says_how_long_to_wait() -> None:
    limiter = RateLimiter(per_minute=6)  # one token every 10 seconds
    assert [limiter.take("anna", 100.0) for _ in range(6)] == [0] * 6
    assert limiter.take("anna", 100.0) == 10
    assert limiter.take("anna", 104.0) == 6  # 0.4 tokens back: 6 more seconds
    assert limiter.take("anna", 110.0) == 0  # a whole token again
    assert limiter.take("ben", 110.0) == 0  # others have their own bucket


def test_refill_never_exceeds_a_minutes_allowance() -> None:
    limiter = RateLimiter(per_minute=3)
    assert limiter.take("anna", 0.0) == 0
    # an hour idle refills to 3 tokens, not 180
    assert [limiter.take("anna", 3600.0) for _ in range(4)] == [0, 0, 0, 20]


def test_zero_per_minute_switches_the_limit_off() -> None:
    limiter = RateLimiter(per_minute=0)
    assert all(limiter.take("anna", 0.0) == 0 for _ in range(1000))


def test_idle_buckets_are_dropped_when_the_table_is_full(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(ratelimit, "MAX_BUCKETS", 3)
    limiter = RateLimiter(per_minute=60)
    for key in ("a", "b", "c"):
        limiter.take(key, 0.0)
    # At t=0.5 every bucket is still half a token short; a fourth key clears the table
    # (nothing can be kept without growing it) and starts fresh.
    limiter.take("d", 0.5)
    assert set(limiter._buckets) == {"d"}
    for key in ("e", "f"):
        limiter.take(key, 0.5)
    limiter.take("e", 0.5)  # "e" now two tokens short: its limit still counts
    # At t=1.6, "d" and "f" are full again (one token per second) and carry no information.
    limiter.take("g", 1.6)
    assert set(limiter._buckets) == {"e", "g"}
