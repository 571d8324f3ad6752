#!/usr/bin/env python3
"""coripper output size vs the original core, for a 1 GiB heap (OpenVZ coripper is not available
here, so the baseline is the original core; goal: under 1/1000), with a per-reason breakdown and
bytes per mapped ELF module.
Usage: python bench/coripper_size.py [--dir /var/tmp/coripper-bench]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]  # the repo first: tests/coripper must not shadow coripper
sys.path.append(str(REPO / "tests"))
from conftest import PROGRAMS_SRC, crash_through_kernel  # noqa: E402

from coripper.stream import minimize_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/var/tmp/coripper-bench")
    args = ap.parse_args()
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    exe = workdir / "crasher"
    if not exe.exists():
        subprocess.run(["gcc", "-g", "-O1", "-pthread", "-o", str(exe),
                        str(PROGRAMS_SRC / "crasher.c")], check=True)
    core = workdir / "core-heap1024"
    if not core.exists():
        crash = crash_through_kernel([exe, "segv", "-t", "4", "-m", "1024"], workdir / "tmp1024",
                                     timeout=600)
        assert crash.core is not None
        crash.core.rename(core)
    out = io.BytesIO()
    with open(core, "rb") as src:
        report = minimize_file(src, out)
    size_in, size_out = report.bytes_in, report.bytes_out
    print(f"baseline: original core {size_in:,} B (1 GiB heap, 5 threads)")
    print(f"minimized: {size_out:,} B; ratio 1/{size_in // size_out} (goal: better than 1/1000)")
    by_reason: Counter[str] = Counter()
    for a, b, reason in report.kept:
        by_reason[reason.split(" /")[0].split(" tid")[0]] += b - a
    for reason, n in by_reason.most_common():
        print(f"  {n:>9,} B  {reason}")
    mods = len(report.modules)
    header_bytes = by_reason.get("elf header", 0)
    print(f"modules: {mods}; ELF header pages {header_bytes:,} B = "
          f"{header_bytes // max(mods, 1):,} B per module")
    print(f"notes + provenance + headers: {size_out - sum(b - a for a, b, _ in report.kept):,} B")


if __name__ == "__main__":
    main()
