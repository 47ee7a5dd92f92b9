"""The expiry task: every ``interval`` seconds, delete whatever has expired.

Messages, tombstones, idempotency records, challenges, sessions and retired grants go;
with ``secure_delete`` their bytes are overwritten, and the WAL is checkpointed and
truncated afterwards so no copy of a deleted page lingers there. ``relay purge`` runs the
same step once, on demand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from .service import RelayService

log = structlog.get_logger("relay.expiry")


async def purge_once(relay: RelayService) -> int:
    """One pass; logs only counts; returns how many items it deleted."""
    counts = await relay.purge(int(time.time()))
    if counts.total():
        log.info("purged", **counts.__dict__)
    return int(counts.total())


async def run_expiry(relay: RelayService, interval: int,
                     observe: Callable[[int | None], None] | None = None) -> None:
    """Purge now and then every ``interval`` seconds until cancelled.

    ``observe`` is told each pass's deleted count, or None for a failed pass (metrics).
    """
    while True:
        deleted: int | None = None
        try:
            deleted = await purge_once(relay)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep the relay serving; the next pass retries
            log.error("purge_failed", error=type(exc).__name__)
        if observe is not None:
            observe(deleted)
        await asyncio.sleep(max(1, interval))
