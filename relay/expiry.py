"""The expiry task: every ``interval`` seconds, delete whatever has expired.

Messages, tombstones, idempotency records, challenges, sessions and retired grants go;
with ``secure_delete`` their bytes are overwritten, and the WAL is checkpointed and
truncated afterwards so no copy of a deleted page lingers there. ``relay purge`` runs the
same step once, on demand.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from .service import RelayService

log = structlog.get_logger("relay.expiry")


async def purge_once(relay: RelayService) -> None:
    """One pass; logs only counts."""
    counts = await relay.purge(int(time.time()))
    if counts.total():
        log.info("purged", **counts.__dict__)


async def run_expiry(relay: RelayService, interval: int) -> None:
    """Purge now and then every ``interval`` seconds until cancelled."""
    while True:
        try:
            await purge_once(relay)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep the relay serving; the next pass retries
            log.error("purge_failed", error=type(exc).__name__)
        await asyncio.sleep(max(1, interval))
