#!/usr/bin/env python3
"""coripper file mode reads only what it keeps: time on a 4 GiB-heap core vs a 16 MiB-heap core.

Both cores come from the same program (tests/programs/crasher.c, ``segv -m N``) crashed through
the kernel into a directory on disk (core_pattern set and restored by tests/testlib.py). Prints
the best-of-5 wall time of the whole ``coripper CORE -o OUT`` process for each and the ratio
(goal: <= 1.2). Falls back to a 2 GiB heap when the disk lacks room, and says so.
Usage: python bench/coripper_file_mode.py [--dir /var/tmp/coripper-bench]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

from _coripper_cores import bench_parser, make_core, workdir_of


def best_time(argv: list[str], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    workdir = workdir_of(bench_parser(__doc__).parse_args())
    free = shutil.disk_usage(workdir).free
    big = 4096 if free > 10 << 30 else 2048
    if big != 4096:
        print(f"only {free >> 30} GiB free on {workdir}: using a 2 GiB heap instead of 4 GiB")
    small_core, big_core = make_core(workdir, 16), make_core(workdir, big)
    out = workdir / "out.core"
    cmd = [sys.executable, "-m", "coripper.cli"]
    t_small = best_time([*cmd, str(small_core), "-o", str(out)])
    t_big = best_time([*cmd, str(big_core), "-o", str(out)])
    print(f"baseline: 16 MiB-heap core ({small_core.stat().st_size:,} B): {t_small * 1000:.1f} ms")
    print(f"{big} MiB-heap core ({big_core.stat().st_size:,} B): {t_big * 1000:.1f} ms")
    print(f"ratio big/small: {t_big / t_small:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
