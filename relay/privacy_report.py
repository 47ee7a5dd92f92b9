"""``kok relay privacy report``: do the stated lifetimes hold on this relay? Aggregates only.

For the operator and for an auditor. It prints how many rows each table holds and, per kind
of stored item, how old the oldest one is, how long the longest-lived one still has, and how
many are overdue (past their expiry, waiting for the next purge), beside the lifetime
docs/privacy.md states. It reads the database read-only and names no organisation, person,
id or token: only counts and ages in seconds.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .config import RelayConfig


@dataclass(frozen=True)
class KindReport:
    """One kind of stored item: how many, how old, how long left, how many overdue."""

    kind: str
    items: int
    oldest_age: int | None  # seconds since the oldest was stored; None if not recorded
    longest_left: int | None  # seconds until the last one expires; None if none expire
    overdue: int  # past their expiry, waiting for the next purge
    lifetime: str  # the rule docs/privacy.md states


@dataclass(frozen=True)
class PrivacyReport:
    """Rows per table, the kinds' ages, and the blob folder's size."""

    tables: dict[str, int]
    kinds: list[KindReport]
    blob_files: int
    blob_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"tables": self.tables, "kinds": [asdict(k) for k in self.kinds],
                "blob_files": self.blob_files, "blob_bytes": self.blob_bytes}


def _one(db: sqlite3.Connection, sql: str, *args: int) -> Any:
    return db.execute(sql, args).fetchone()[0]


def _kind(db: sqlite3.Connection, now: int, kind: str, table: str, *, born: str | None,
          expires: str = "expires", where: str = "1", lifetime: str) -> KindReport:
    """Aggregates over ``table``; ``born`` is an SQL expression for when a row was stored."""
    base = f"FROM {table} WHERE {where}"
    items = _one(db, f"SELECT count(*) {base}")
    oldest = _one(db, f"SELECT ? - min({born}) {base}", now) if born else None
    left = _one(db, f"SELECT max({expires}) - ? {base}", now)
    overdue = _one(db, f"SELECT count(*) {base} AND {expires} <= ?", now)
    return KindReport(kind=kind, items=items, oldest_age=oldest, longest_left=left,
                      overdue=overdue, lifetime=lifetime)


def privacy_report(config: RelayConfig, now: int) -> PrivacyReport:
    """Read the relay's database (read-only) and blob folder; aggregates only."""
    limits = config.limits
    path = config.database_path
    if not path.exists():
        return PrivacyReport(tables={}, kinds=[], blob_files=0, blob_bytes=0)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        tables = {name: _one(db, f'SELECT count(*) FROM "{name}"') for name in names}  # noqa: S608
        kinds = [
            _kind(db, now, "message", "messages", born="received",
                  lifetime=f"until fetched by all, at most its TTL (<= {limits.max_ttl} s)"),
            _kind(db, now, "status tombstone", "status_tombstones", born=None,
                  lifetime=f"message expiry + status_grace ({limits.status_grace} s)"),
            _kind(db, now, "idempotency record", "idempotency", born="received",
                  lifetime="with its messages"),
            _kind(db, now, "login challenge", "challenges",
                  born=f"expires - {limits.challenge_ttl}",
                  lifetime=f"challenge_ttl ({limits.challenge_ttl} s)"),
            _kind(db, now, "session", "sessions", born=f"expires - {limits.session_ttl}",
                  lifetime=f"session_ttl ({limits.session_ttl} s)"),
            _kind(db, now, "retired grant", "grants", born=f"expires - {limits.max_ttl}",
                  where="expires IS NOT NULL",
                  lifetime=f"max_ttl ({limits.max_ttl} s) after a newer epoch"),
            _kind(db, now, "current grant", "grants", born=None, where="expires IS NULL",
                  lifetime="while the epoch is current"),
        ]
        if "drops" in tables:
            kinds.append(_kind(db, now, "file drop", "drops", born=None,
                               lifetime=f"until fetched by all, at most its TTL "
                                        f"(<= {limits.max_ttl} s)"))
    finally:
        db.close()
    blobs = [p for p in Path(config.blob_path).glob("*") if p.is_file()]
    return PrivacyReport(tables=tables, kinds=kinds, blob_files=len(blobs),
                         blob_bytes=sum(p.stat().st_size for p in blobs))


def render(report: PrivacyReport) -> list[str]:
    """Plain lines a screen reader can follow."""
    def seconds(value: int | None) -> str:
        return "-" if value is None else f"{value} s"

    lines = ["Rows per table:"]
    lines += [f"  {name}: {count}" for name, count in report.tables.items()]
    lines.append(f"  blob files: {report.blob_files} ({report.blob_bytes} bytes)")
    lines.append("Per kind (oldest age; longest left; overdue; stated lifetime):")
    for k in report.kinds:
        lines.append(f"  {k.kind}: {k.items} items; oldest {seconds(k.oldest_age)}; "
                     f"longest left {seconds(k.longest_left)}; overdue {k.overdue}; "
                     f"lifetime: {k.lifetime}")
    return lines
