#!/usr/bin/env python3
"""coripper pipe mode with the kernel as the writer: crash-to-reap time against ``cat``.

This is pipe mode as it runs in production: the kernel writes a crashing process's core into
the core_pattern pipe and the process is reaped only when the pipe's reader has read all of it
(``core_pipe_limit`` > 0). A 4 GiB-heap crasher (tests/programs/crasher.c, ``sleep -m MIB -t
THREADS``) prints ``ready``; we send SIGSEGV and time until the parent's wait() returns, with
these core_pattern settings, interleaved round by round, median reported:

* ``|cat > /dev/null`` -- the issue's baseline consumer: ``cat`` reading the core and throwing
  it away, through the same kernel pipe (a shell script: ``exec cat > /dev/null``);
* ``|coripper --hash none - -o OUT`` (the crash hook's setting), ``|coripper - -o OUT``
  (BLAKE3, the CLI default) and ``--hash sha256``;
* ``CORE`` file (no pipe): the kernel writes the core file itself (what ``cat CORE`` reads
  later), for reference.

Goal (issue 3): pipe mode at least 0.8x the throughput of cat, i.e. time <= 1.25x cat's.
Needs root; sets core_pattern under the tests' host-wide lock and restores it.
Usage: bench/coripper_pipe_kernel.py [-n RUNS] [-m MIB] [-t THREADS]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]
sys.path.append(str(REPO / "tests"))
from testlib import PROGRAMS_SRC, core_pattern  # noqa: E402

from _victim import crash_sleeping_victim  # noqa: E402


def write_script(path: Path, body: str) -> Path:
    """An executable ``/bin/sh`` script (the kernel execs pipe helpers without a shell)."""
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=3)
    parser.add_argument("-m", "--mib", type=int, default=4096)
    parser.add_argument("-t", "--threads", type=int, default=4)
    opts = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ckpk", dir="/var/tmp"))
    try:
        base.chmod(0o755)
        exe = base / "crasher"
        subprocess.run(["gcc", "-g", "-O1", "-pthread", "-o", str(exe),
                        str(PROGRAMS_SRC / "crasher.c")], check=True)
        out = base / "out.core"
        cli = f"exec env PYTHONPATH={REPO} {sys.executable} -m coripper.cli"
        patterns = {
            "|cat > /dev/null": write_script(base / "cat-drain", "exec cat > /dev/null"),
            "|coripper --hash none -": write_script(base / "cr-none", f"{cli} --hash none - -o {out}"),
            "|coripper - (blake3)": write_script(base / "cr-blake3", f"{cli} - -o {out}"),
            "|coripper --hash sha256 -": write_script(base / "cr-sha", f"{cli} --hash sha256 - -o {out}"),
        }
        cases: dict[str, str] = {name: f"|{script}" for name, script in patterns.items()}
        cases["kernel writes CORE file"] = str(base / "core.%p")
        times: dict[str, list[float]] = {k: [] for k in cases}
        outs: dict[str, int] = {}
        for _ in range(opts.runs):
            for name, pattern in cases.items():
                with core_pattern(pattern, pipe_limit=16):
                    times[name].append(crash_sleeping_victim(exe, opts.mib, opts.threads, base)[1])
                if out.exists():
                    outs[name] = out.stat().st_size
                    out.unlink()
                for f in base.glob("core.*"):
                    outs[name] = f.stat().st_size
                    f.unlink()
        med = {k: statistics.median(v) for k, v in times.items()}
        base_t = med["|cat > /dev/null"]
        print(f"crash-to-reap, {opts.mib} MiB touched heap, {opts.threads} threads, "
              f"median of {opts.runs} interleaved runs (all runs in brackets)")
        for name in cases:
            ratio = base_t / med[name]
            line = (f"  {name:28s} {med[name] * 1000:8.1f} ms  throughput {ratio:4.2f}x cat "
                    f"{[round(t * 1000) for t in times[name]]}")
            if name in outs:
                line += f"  output {outs[name]:,} B"
            print(line)
        for name in ("|coripper --hash none -", "|coripper - (blake3)"):
            verdict = "met" if base_t / med[name] >= 0.8 else "MISSED"
            print(f"goal >= 0.8x cat for {name}: {verdict}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
