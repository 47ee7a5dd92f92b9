"""The relay with a send store that keeps nothing: a measuring device, never a relay to run.

``python -m tests.benchmarks.storeless_relay serve --dir DIR`` is ``python -m relay serve``
except that ``SqliteStore.store_send`` answers at once, as if the send had been stored,
without writing anything (every other write, e.g. logins and the key log, is real).
``bench_scaleout`` runs it beside the real relay, rounds interleaved, to measure what
everything *but* storing a send allows: the same HTTP server, middleware, session check,
parsing, service checks, push hub and answer. Its rate is the ceiling of the durable
relay's rate on this machine; the gap between the two is what storage costs.
"""

from __future__ import annotations

import itertools

from relay.cli import main
from relay.store.rows import ReplayedSend, SendBatch, StoredMessage
from relay.store.sqlite import SqliteStore

_cursors = itertools.count(1)


async def _keep_nothing(self: SqliteStore, batch: SendBatch) -> list[StoredMessage] | ReplayedSend:
    """What ``store_send`` answers for a new send, without storing it."""
    return [StoredMessage(cursor=next(_cursors), id=m.id, to_org=m.to_org, epoch=m.epoch,
                          sealed=m.sealed, received=batch.received, expires=batch.expires)
            for m in batch.messages]


if __name__ == "__main__":
    SqliteStore.store_send = _keep_nothing  # type: ignore[method-assign]
    main()
