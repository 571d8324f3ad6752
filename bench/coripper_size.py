#!/usr/bin/env python3
"""coripper output size vs the original core, for a 1 GiB heap (OpenVZ coripper is not available
here, so the baseline is the original core; goal: under 1/1000), with a per-reason breakdown and
bytes per mapped ELF module.
Usage: python bench/coripper_size.py [--dir /var/tmp/coripper-bench]
"""

from __future__ import annotations

import io
from collections import Counter

from _coripper_cores import bench_parser, make_core, workdir_of

from coripper.minimizer.stream import minimize_file


def main() -> None:
    core = make_core(workdir_of(bench_parser(__doc__).parse_args()), 1024)
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
