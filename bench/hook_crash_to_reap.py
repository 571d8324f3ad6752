#!/usr/bin/env python3
"""Crash-to-reap time of a 1 GiB / 8-thread process with crashkit-hook vs a drain baseline.

The victim (tests/programs/crasher.c, ``sleep -m 1024 -t 8``: 1 GiB of touched heap, 8 extra
threads) prints ``ready``; we send it SIGSEGV and time (a) until the parent's wait() returns
(the kernel reaps the process only after the pipe helper has read the whole core, with
``core_pipe_limit`` > 0) and (b) until the hook's problem directory is committed (the hook
releases the kernel once the core is read, then commits). Baseline: core_pattern
``|/usr/bin/dd of=/dev/null bs=1M``. Post-processing is off (it runs detached, after both
marks). Needs root; sets core_pattern under the tests' host-wide lock and restores it.
Usage: bench/hook_crash_to_reap.py [-n RUNS] [-m MIB] [-t THREADS] [--keep minimized|full|none]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from testlib import core_pattern  # noqa: E402
from _victim import crash_sleeping_victim  # noqa: E402

from collectors.corehook import install  # noqa: E402


def build_crasher(out: Path) -> Path:
    exe = out / "crasher"
    subprocess.run(["gcc", "-g", "-O1", "-pthread", "-fPIE", "-pie", "-o", str(exe),
                    str(REPO / "tests" / "programs" / "crasher.c")], check=True)
    return exe


def one_crash(exe: Path, mib: int, threads: int, spool: Path | None) -> tuple[float, float | None]:
    before = set(os.listdir(spool)) if spool else set()
    t0, reaped = crash_sleeping_victim(exe, mib, threads)
    committed = None
    if spool is not None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            new = [n for n in set(os.listdir(spool)) - before if not n.endswith(".new") and n.startswith("ccpp-")]
            if new:
                committed = time.perf_counter() - t0
                break
            time.sleep(0.002)
    return reaped, committed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("-m", "--mib", type=int, default=1024)
    parser.add_argument("-t", "--threads", type=int, default=8)
    parser.add_argument("--keep", default="minimized", choices=("minimized", "full", "none"))
    opts = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ckb", dir="/tmp"))
    try:
        base.chmod(0o755)
        exe = build_crasher(base)
        spool = base / "spool"
        spool.mkdir(mode=0o700)
        paths = install.Paths(str(base))
        Path(paths.hook_config).write_text(
            f'[hook]\nspool = "{spool}"\nkeep = "{opts.keep}"\npostprocess = false\n'
            f'crash_loop_limit = 0\nmin_free_space = 0\nmax_spool_size = 0\nmax_core_size = 0\n')
        launcher = Path(paths.launcher)
        launcher.write_text(install.launcher_text(paths.hook_config))
        launcher.chmod(0o755)
        dd = shutil.which("dd") or "/usr/bin/dd"
        results: dict[str, list[tuple[float, float | None]]] = {"drain": [], "hook": []}
        for _ in range(opts.runs):  # interleaved, so drift hits both alike
            with core_pattern(f"|{dd} of=/dev/null bs=1M", pipe_limit=16):
                results["drain"].append(one_crash(exe, opts.mib, opts.threads, None))
            with core_pattern(install.pattern_for(str(launcher)), pipe_limit=16):
                results["hook"].append(one_crash(exe, opts.mib, opts.threads, spool))
            for d in spool.iterdir():  # every run a first occurrence (no dedup shortcut)
                shutil.rmtree(d, ignore_errors=True)
        drain = statistics.median(r for r, _ in results["drain"])
        hook = statistics.median(r for r, _ in results["hook"])
        commits = [c for _, c in results["hook"] if c is not None]
        print(f"crash-to-reap, {opts.mib} MiB touched heap, {opts.threads} threads, keep={opts.keep}, "
              f"median of {opts.runs}")
        print(f"  baseline |dd of=/dev/null bs=1M : {drain * 1000:8.1f} ms")
        print(f"  crashkit-hook, parent's wait()  : {hook * 1000:8.1f} ms   ratio {hook / drain:.2f}x "
              f"(target <= 1.3x: {'met' if hook / drain <= 1.3 else 'MISSED'})")
        if commits:
            c = statistics.median(commits)
            print(f"  crashkit-hook, dir committed    : {c * 1000:8.1f} ms   ratio {c / drain:.2f}x")
        print("  runs (reap ms): drain", [round(r * 1000) for r, _ in results["drain"]],
              "hook", [round(r * 1000) for r, _ in results["hook"]])
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
