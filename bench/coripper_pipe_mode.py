#!/usr/bin/env python3
"""coripper pipe mode: throughput vs ``cat CORE > /dev/null`` and peak RSS, same 4 GiB core.

Baseline: ``cat CORE > /dev/null`` (page cache warm). Measured: ``cat CORE | coripper - > OUT``
(one pass through a real pipe, as the kernel's core_pattern pipe delivers it), and for reference
``coripper - < CORE`` (stdin is the file). Peak RSS of the coripper process from wait4().
Goals: throughput >= 0.8x cat, RSS < 64 MiB.
Usage: python bench/coripper_pipe_mode.py [--dir /var/tmp/coripper-bench] [--heap-mib 4096]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]  # the repo first: tests/coripper must not shadow coripper
sys.path.append(str(REPO / "tests"))
from conftest import PROGRAMS_SRC, crash_through_kernel  # noqa: E402


def make_core(workdir: Path, heap_mib: int) -> Path:
    exe = workdir / "crasher"
    if not exe.exists():
        subprocess.run(["gcc", "-g", "-O1", "-pthread", "-o", str(exe),
                        str(PROGRAMS_SRC / "crasher.c")], check=True)
    cached = workdir / f"core-heap{heap_mib}"
    if not cached.exists():
        crash = crash_through_kernel([exe, "segv", "-t", "4", "-m", str(heap_mib)],
                                     workdir / f"tmp{heap_mib}", timeout=600)
        assert crash.core is not None, "kernel wrote no core"
        crash.core.rename(cached)
    return cached


def run_shell(cmd: str) -> tuple[float, int]:
    """Wall time of ``bash -c cmd`` and the peak RSS (KiB) of its largest child."""
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "-c", cmd])
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    assert os.waitstatus_to_exitcode(status) == 0, cmd
    return elapsed, usage.ru_maxrss


def best(cmd: str, runs: int = 3) -> tuple[float, int]:
    results = [run_shell(cmd) for _ in range(runs)]
    return min(r[0] for r in results), max(r[1] for r in results)


def _sha_speed() -> float:
    import hashlib
    block = bytes(1 << 20)
    h = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(512):
        h.update(block)
    return 0.5 / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/var/tmp/coripper-bench")
    ap.add_argument("--heap-mib", type=int, default=4096)
    args = ap.parse_args()
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    heap = args.heap_mib
    if shutil.disk_usage(workdir).free < (heap + 6144) << 20 and heap > 2048:
        heap = 2048
        print("not enough free disk for a 4 GiB core: using a 2 GiB heap")
    core = make_core(workdir, heap)
    size = core.stat().st_size
    out = workdir / "pipe-out.core"
    py = sys.executable
    run_shell(f"cat {core} > /dev/null")            # warm the page cache
    t_cat, _ = best(f"cat {core} > /dev/null")
    t_pipecat, _ = best(f"cat {core} | cat > /dev/null")
    t_pipe, _ = best(f"cat {core} | {py} -m coripper.cli - > {out}")
    t_stdin, _ = best(f"{py} -m coripper.cli - < {core} > {out}")
    # peak RSS of the coripper process alone (stdin is a pipe fed by cat)
    feeder = subprocess.Popen(["cat", str(core)], stdout=subprocess.PIPE)
    with open(out, "wb") as dst:
        proc = subprocess.Popen([py, "-m", "coripper.cli", "-"], stdin=feeder.stdout, stdout=dst)
        assert feeder.stdout is not None
        feeder.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
    feeder.wait()
    rss_mib = usage.ru_maxrss / 1024
    gib = size / (1 << 30)
    print(f"core: {size:,} B ({heap} MiB heap); output {out.stat().st_size:,} B")
    print(f"baseline: cat CORE > /dev/null: {t_cat:.3f} s ({gib / t_cat:.2f} GiB/s)")
    print(f"second baseline, the pipe alone: cat CORE | cat > /dev/null: {t_pipecat:.3f} s "
          f"({gib / t_pipecat:.2f} GiB/s)")
    print(f"sha256 of the input (hashlib, one core) bounds stream mode at about "
          f"{_sha_speed():.2f} GiB/s here")
    print(f"cat CORE | coripper -: {t_pipe:.3f} s ({gib / t_pipe:.2f} GiB/s), "
          f"ratio to cat {t_cat / t_pipe:.2f}x (goal >= 0.8x), to the bare pipe "
          f"{t_pipecat / t_pipe:.2f}x")
    print(f"coripper - < CORE: {t_stdin:.3f} s ({gib / t_stdin:.2f} GiB/s), "
          f"ratio to cat {t_cat / t_stdin:.2f}x")
    print(f"peak RSS of coripper (pipe mode): {rss_mib:.1f} MiB (goal < 64 MiB)")


if __name__ == "__main__":
    main()
