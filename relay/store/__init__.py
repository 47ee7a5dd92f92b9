"""Relay storage: the interface the service uses (``interface.py``) and its implementations.

``create_store`` is the one place that picks an implementation for a configuration.
"""

from __future__ import annotations

from ..config import RelayConfig
from .interface import LogIndexTaken, RelayStore
from .rows import (
    DropRow,
    GrantRow,
    LinkMailbox,
    LogAppend,
    MessageStatus,
    NewDrop,
    NewMessage,
    PurgeCounts,
    ReplayedSend,
    SendBatch,
    SessionRow,
    StoredMessage,
    StoreStats,
)
from .sqlite import SqliteStore

__all__ = [
    "DropRow",
    "GrantRow",
    "LinkMailbox",
    "LogAppend",
    "LogIndexTaken",
    "MessageStatus",
    "NewDrop",
    "NewMessage",
    "PurgeCounts",
    "RelayStore",
    "ReplayedSend",
    "SendBatch",
    "SessionRow",
    "SqliteStore",
    "StoreStats",
    "StoredMessage",
    "create_store",
]


def create_store(config: RelayConfig, *, readers: int | None = None) -> RelayStore:
    """The store ``config`` names (not opened yet); ``readers`` overrides the pool size.

    ``[store] url = "postgresql://..."``: PostgreSQL (needs the ``postgresql`` extra);
    otherwise SQLite in the relay directory.
    """
    if config.store.is_postgresql:
        from .postgres import PostgresStore

        return PostgresStore(config.store.url, pool_size=config.store.pool_size)
    return SqliteStore(config.database_path,
                       readers=config.storage.readers if readers is None else readers,
                       max_batch=config.limits.write_batch)
