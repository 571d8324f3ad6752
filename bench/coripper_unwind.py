"""Unwinder figure: all threads of a 10-thread core (crasher segv -t 9) in under 1 s.

Crashes the test program through the kernel (tests/testlib.py helpers: core_pattern is set for
the crash and restored), then times in one run:
  * ours, in-process, cold (table caches cleared) and warm (tables cached per build-id),
  * ours as a whole process (`crashkit backtrace --json CORE`),
  * the baseline: `gdb -batch -ex 'thread apply all bt' EXE CORE` (whole process),
and prints the ratios. Usage: python bench/coripper_unwind.py [--repeat N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import testlib as conftest  # noqa: E402  (the shared test helpers: programs and kernel crashes)

from coripper.unwinder.backtrace import core_backtrace  # noqa: E402
from coripper.unwinder.inline import clear_cache as clear_inline_cache  # noqa: E402
from coripper.unwinder.modules import clear_cache  # noqa: E402


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="crashkit-bench-") as tmp:
        progs = conftest.Programs(Path(tmp) / "programs")
        exe = progs.crasher()
        crash = conftest.crash_through_kernel([exe, "segv", "-t", "9"], Path(tmp) / "cores")
        if crash.core is None:
            print("no core written", file=sys.stderr)
            return 1
        core = str(crash.core)

        def cold() -> None:
            clear_cache()
            clear_inline_cache()        # DWARF indexes (inline and tail-call frames) too
            core_backtrace(core)

        bt = core_backtrace(core)
        frames = sum(len(t.frames) for t in bt.threads)
        synthetic = sum(len(t.all_frames()) for t in bt.threads) - frames
        t_cold = _best(cold, args.repeat)
        t_warm = _best(lambda: core_backtrace(core), args.repeat)
        t_cli = _best(lambda: subprocess.run(
            [sys.executable, "-m", "collectors.cli", "backtrace", "--json", core],
            check=True, capture_output=True), args.repeat)
        t_gdb = _best(lambda: subprocess.run(
            ["gdb", "-batch", "-nx", "-ex", "thread apply all bt", str(exe), core],
            check=True, capture_output=True), args.repeat)
    print(f"core: {len(bt.threads)} threads, {frames} frames + {synthetic} inline/tail-call "
          f"(best of {args.repeat})")
    print(f"ours in-process, cold caches : {t_cold * 1000:8.1f} ms")
    print(f"ours in-process, warm caches : {t_warm * 1000:8.1f} ms")
    print(f"ours whole process (CLI)     : {t_cli * 1000:8.1f} ms")
    print(f"gdb whole process (baseline) : {t_gdb * 1000:8.1f} ms")
    print(f"ratio ours cold / gdb        : {t_cold / t_gdb:8.3f}")
    print(f"ratio ours CLI / gdb         : {t_cli / t_gdb:8.3f}")
    print(f"target (< 1 s, cold, all threads): {'met' if t_cold < 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
