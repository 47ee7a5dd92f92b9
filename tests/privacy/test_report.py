"""``kok relay privacy report``: aggregates that match the database and name nobody."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from tests.privacy.exchange import Exchange
from tests.privacy.inventory import inventory
from tests.support.relayproc import REPO


def _report(exchange: Exchange, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "relay", "privacy", "report", "--dir", str(exchange.relay.dir),
         *extra], capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_report_counts_every_table_and_names_nobody(exchange: Exchange) -> None:
    report = json.loads(_report(exchange, "--json"))
    db = sqlite3.connect(f"file:{exchange.relay.db_path}?mode=ro", uri=True)
    try:
        for table in {item.split(".")[0] for item in inventory("relay-sqlite")}:
            count = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608
            assert report["tables"][table] == count, table
        identifiers = {r[0] for r in db.execute("SELECT org_id FROM mailbox_usage")}
        identifiers |= {r[0] for r in db.execute("SELECT staff_id FROM grants")}
        ids = {bytes(r[0]).hex() for r in db.execute("SELECT id FROM messages")}
    finally:
        db.close()
    assert identifiers and ids
    kinds = {k["kind"]: k for k in report["kinds"]}
    assert kinds["message"]["items"] == report["tables"]["messages"] > 0
    assert 0 <= kinds["message"]["oldest_age"] < 3600
    assert kinds["file drop"]["items"] == 1 and report["blob_files"] == 1
    assert kinds["retired grant"]["items"] > 0  # the exchange rotated
    assert all(k["overdue"] == 0 for k in kinds.values())
    text = _report(exchange) + json.dumps(report)
    assert "message: " in text and "overdue" in text
    for name in identifiers | ids | {exchange.removed}:
        assert name not in text, f"the aggregate report names {name!r}"
