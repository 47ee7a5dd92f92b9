"""``make bench``: run every ``tests/benchmarks/bench_*.py`` module's ``main()`` in turn.

    python -m tests.benchmarks                 # all of them, in name order
    python -m tests.benchmarks protocol relay  # only bench_protocol and bench_relay

Benchmarks are slow and machine-dependent, so they are not part of ``make test``; each
reports figures as ratios against a baseline measured in the same run.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import tests.benchmarks as package

PREFIX = "bench_"


def available() -> list[str]:
    """Names of the benchmark modules, without the ``bench_`` prefix, sorted."""
    return sorted(
        info.name.removeprefix(PREFIX)
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.startswith(PREFIX)
    )


def run(names: list[str]) -> int:
    """Run the named benchmarks; the exit status is non-zero if any failed to run."""
    known = available()
    unknown = [n for n in names if n.removeprefix(PREFIX) not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(known)}",
              file=sys.stderr)
        return 2
    failed = 0
    for name in [n.removeprefix(PREFIX) for n in names] or known:
        module = importlib.import_module(f"{package.__name__}.{PREFIX}{name}")
        print(f"=== {PREFIX}{name}", flush=True)
        started = time.perf_counter()
        try:
            status = module.main()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print(f"{PREFIX}{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = 1
        print(f"=== {PREFIX}{name} done in {time.perf_counter() - started:.1f} s", flush=True)
        failed += 1 if status else 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
