#!/usr/bin/env python3
"""coripper pipe mode: throughput vs ``cat CORE > /dev/null`` and the bare pipe, and peak RSS.

Same core, same run, page cache warm; every command runs once per round, rounds interleaved
(this VM's shared vCPUs are noisy), best round reported:

* ``cat CORE > /dev/null`` -- the issue's baseline (page cache to nowhere: no pipe at all);
* ``cat CORE | cat > /dev/null`` -- a bare pipe with a plain reader (64 KiB pipe, every byte
  copied to user space and back);
* ``cat CORE | splice > /dev/null`` -- the pipe ceiling: a reader that enlarges the pipe as
  coripper does and splices everything to /dev/null (no copy, no work). No consumer at the end
  of a pipe can be faster: what remains is the writer copying the bytes into the pipe;
* ``cat CORE | coripper - > OUT`` with BLAKE3 (the CLI default), ``--hash sha256`` and
  ``--hash none`` (the hook's default: what is not kept is spliced to /dev/null, never copied
  to user space);
* for reference ``coripper --hash none - < CORE`` (stdin is the file: gaps are lseek'd over).

Peak RSS of the coripper process alone, from wait4(). Goals (issue 3): >= 0.8x cat, < 64 MiB.
Ratios are printed against ``cat CORE > /dev/null`` (unreachable through any pipe: the pipe
ceiling is printed), against ``cat`` as the consumer of the same pipe, and against the ceiling.
bench/coripper_pipe_kernel.py measures the same with the kernel writing the pipe.
Usage: python bench/coripper_pipe_mode.py [--dir /var/tmp/coripper-bench] [--heap-mib 4096]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _coripper_cores import bench_parser, make_core, workdir_of


SPLICE_READER = """
import fcntl, os
from coripper.minimizer.stream import _grow_pipe
_grow_pipe(0)
null = os.open("/dev/null", os.O_WRONLY)
while os.splice(0, null, 1 << 30):
    pass
"""


def run_shell(cmd: str) -> float:
    """Wall time of ``bash -c cmd``."""
    start = time.perf_counter()
    subprocess.run(["bash", "-c", cmd], check=True)
    return time.perf_counter() - start


def coripper_rss(core: Path, out: Path, extra: list[str]) -> float:
    """Peak RSS (MiB) of ``coripper -`` alone, its stdin a pipe fed by cat."""
    feeder = subprocess.Popen(["cat", str(core)], stdout=subprocess.PIPE)
    assert feeder.stdout is not None
    with open(out, "wb") as dst:
        proc = subprocess.Popen([sys.executable, "-m", "coripper.cli", *extra, "-"],
                                stdin=feeder.stdout, stdout=dst)
        feeder.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
    feeder.wait()
    assert os.waitstatus_to_exitcode(status) == 0
    return usage.ru_maxrss / 1024


def _sha_speed() -> float:
    import hashlib
    block = bytes(1 << 20)
    h = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(512):
        h.update(block)
    return 0.5 / (time.perf_counter() - start)


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--heap-mib", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    workdir = workdir_of(args)
    heap = args.heap_mib
    if shutil.disk_usage(workdir).free < (heap + 6144) << 20 and heap > 2048:
        heap = 2048
        print("not enough free disk for a 4 GiB core: using a 2 GiB heap")
    core = make_core(workdir, heap)
    size = core.stat().st_size
    out = workdir / "pipe-out.core"
    cli = f"{sys.executable} -m coripper.cli"
    cases = {
        "cat CORE > /dev/null": f"cat {core} > /dev/null",
        "cat CORE | cat > /dev/null": f"cat {core} | cat > /dev/null",
        "cat CORE | splice > /dev/null": f"cat {core} | {sys.executable} -c '{SPLICE_READER}'",
        "cat CORE | coripper - (blake3)": f"cat {core} | {cli} - > {out}",
        "cat CORE | coripper --hash sha256 -": f"cat {core} | {cli} --hash sha256 - > {out}",
        "cat CORE | coripper --hash none -": f"cat {core} | {cli} --hash none - > {out}",
        "coripper --hash none - < CORE": f"{cli} --hash none - < {core} > {out}",
    }
    run_shell(f"cat {core} > /dev/null")            # warm the page cache
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.rounds):
        for name, cmd in cases.items():
            times[name].append(run_shell(cmd))
    rss_hash = coripper_rss(core, out, [])
    rss_sha = coripper_rss(core, out, ["--hash", "sha256"])
    rss_none = coripper_rss(core, out, ["--hash", "none"])
    gib = size / (1 << 30)
    t = {k: min(v) for k, v in times.items()}
    t_cat, t_pipe = t["cat CORE > /dev/null"], t["cat CORE | splice > /dev/null"]
    t_catcat = t["cat CORE | cat > /dev/null"]
    print(f"core: {size:,} B ({heap} MiB heap); output {out.stat().st_size:,} B; "
          f"best of {args.rounds} interleaved rounds (median in brackets)")
    print(f"hashlib sha256 on one core here: {_sha_speed():.2f} GiB/s")
    for name in cases:
        med = sorted(times[name])[len(times[name]) // 2]
        line = f"{name:40s} {t[name]:7.3f} s [{med:.3f}] {gib / t[name]:6.2f} GiB/s"
        if name != "cat CORE > /dev/null":
            line += f"  {t_cat / t[name]:5.2f}x cat"
        if "coripper" in name:
            line += f"  {t_catcat / t[name]:5.2f}x cat|cat  {t_pipe / t[name]:5.2f}x the pipe ceiling"
        print(line)
    print("goal: >= 0.8x cat. A consumer at the end of a pipe cannot beat the pipe ceiling, "
          f"which is itself {t_cat / t_pipe:.2f}x cat here.")
    print(f"peak RSS of coripper (pipe mode): blake3 {rss_hash:.1f} MiB, sha256 {rss_sha:.1f} MiB, "
          f"none {rss_none:.1f} MiB "
          "(goal < 64 MiB)")


if __name__ == "__main__":
    main()
