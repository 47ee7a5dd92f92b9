"""`make bench` keeps working: the entry point finds the protocol benchmark and it runs.

Only a smoke run (tiny sizes, figures meaningless); the benchmark itself reports ratios
and is never part of `make test`'s pass/fail on speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(*names: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOK_BENCH_QUICK": "1"}
    return subprocess.run([sys.executable, "-m", "tests.benchmarks", *names], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_protocol_benchmark_runs_and_reports_ratios() -> None:
    result = _bench("protocol")
    assert result.returncode == 0, result.stderr
    assert "message seal+open" in result.stdout and "file stream" in result.stdout
    assert result.stdout.count("%") >= 3


def test_unknown_benchmark_is_refused() -> None:
    result = _bench("no-such-benchmark")
    assert result.returncode == 2
    assert "unknown benchmark" in result.stderr
