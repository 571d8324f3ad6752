#!/usr/bin/env python3
"""The contributor's loop: wall time of ``pytest -m "not slow"``, cold and warm.

Cold is the first run after a clone (no bytecode: every module and every test's assertion
rewrite compiled); warm is each run after it, the loop a contributor lives in. Bytecode goes to a
private ``PYTHONPYCACHEPREFIX`` (``PYTHONDONTWRITEBYTECODE`` removed), so the checkout is left as
it was and the cold run really is cold.

Baseline, measured in the same run before and after the loops: a fixed pure-Python workload
(``REFERENCE_ITERATIONS`` rounds of integer and string work) run once in each of as many
processes at once as pytest has workers. The loop is printed in seconds, against the 60 s
target, and as a ratio to that baseline, which is what to compare between machines and days.
Run it as the user whose loop is measured: as root the root-only tests run too.
Usage: bench/dev_loop.py [--warm N] [pytest args...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 60.0
REFERENCE_ITERATIONS = 3_000_000
REFERENCE_CODE = (
    "s = 0\n"
    f"for i in range({REFERENCE_ITERATIONS}):\n"
    "    s += len(str(i)) * (i & 7)\n"
)


def reference_seconds(workers: int) -> float:
    """Wall time of *workers* processes each running the fixed reference workload at once."""
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", REFERENCE_CODE]) for _ in range(workers)]
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit("dev_loop: the reference workload failed")
    return time.perf_counter() - start


def loop_seconds(pycache: str, pytest_args: list[str]) -> tuple[float, str]:
    """Wall time of one ``pytest -m "not slow"`` run and its summary line."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=pycache)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider", *pytest_args]
    start = time.perf_counter()
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    lines = run.stdout.strip().splitlines()
    summary = lines[-1] if lines else "(no output)"
    if run.returncode not in (0, 5):
        raise SystemExit(f"dev_loop: pytest exited {run.returncode}: {summary}")
    return elapsed, summary


def workers_of(pytest_args: list[str]) -> int:
    """How many processes the loop runs at once (xdist's ``-n auto`` is one per CPU)."""
    if "-n" in pytest_args:
        value = pytest_args[pytest_args.index("-n") + 1]
        if value.isdigit():
            return max(1, int(value))
    return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=3, help="warm runs after the cold one (default 3)")
    args, pytest_args = parser.parse_known_args()
    workers = workers_of(pytest_args)
    baseline = [reference_seconds(workers)]
    with tempfile.TemporaryDirectory(prefix="crashkit-bench-pyc-") as pycache:
        cold, summary = loop_seconds(pycache, pytest_args)
        warm = [loop_seconds(pycache, pytest_args)[0] for _ in range(args.warm)]
    baseline.append(reference_seconds(workers))
    base = statistics.median(baseline)
    print(f"tests: {summary}")
    print(f"baseline: reference workload x{workers} processes, median {base:.2f} s "
          f"({', '.join(f'{b:.2f}' for b in baseline)})")
    print(f"cold loop: {cold:6.1f} s  ratio {cold / base:5.1f}x  "
          f"{'meets' if cold < TARGET_S else 'misses'} the {TARGET_S:.0f} s target")
    if warm:
        med = statistics.median(warm)
        print(f"warm loop: {med:6.1f} s  ratio {med / base:5.1f}x  "
              f"{'meets' if med < TARGET_S else 'misses'} the {TARGET_S:.0f} s target  "
              f"(runs: {', '.join(f'{w:.1f}' for w in warm)})")


if __name__ == "__main__":
    main()
