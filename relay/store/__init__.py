"""Relay storage: the interface the service uses, and its SQLite implementation."""

from .interface import RelayStore
from .rows import (
    GrantRow,
    LogAppend,
    MessageStatus,
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
    "GrantRow",
    "LogAppend",
    "MessageStatus",
    "NewMessage",
    "PurgeCounts",
    "RelayStore",
    "ReplayedSend",
    "SendBatch",
    "SessionRow",
    "SqliteStore",
    "StoreStats",
    "StoredMessage",
]
