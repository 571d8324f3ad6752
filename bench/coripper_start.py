#!/usr/bin/env python3
"""``coripper CORE > OUT`` end to end on a 1 GiB core (goal: at most 30 ms), against baselines.

The core is a real one: tests/programs/crasher.c (``segv -t 4 -m 1024``) crashed through the
kernel (bench/_coripper_cores.py, cached in the work directory). Each row is the median of N
runs of a shell command line (``sh -c``, so the ``> OUT`` redirection costs the same in every
row), interleaved in rounds so that load on this shared machine moves every row alike:

* ``python3 -c pass`` with the interpreter of the console script (its ``#!`` line): the floor
  of any Python command;
* ``cat CORE > /dev/null``: reading the whole core once, what a tool that does not skip the
  memory it drops pays (OpenVZ's C++ coripper takes 3-4 ms because it skips it, as we do);
* ``coripper CORE > OUT`` through the installed console script, bytecode cached in a private
  ``PYTHONPYCACHEPREFIX`` (as after ``pip install``, which compiles).

Prints each row's median wall time in ms, its ratio to ``python3 -c pass`` and the milliseconds
above it, its best run, its CPU time (user + system) and that ratio, and whether the 30 ms goal
is met. ``--script PATH`` measures another installation's console script
(e.g. a wheel installed into a fresh venv, without the dev venv's editable finder). Each
``--tree DIR`` (a source tree, e.g. ``git archive COMMIT | tar -x -C DIR``) adds a row
``python3 -m coripper.cli CORE > OUT`` with ``PYTHONPATH=DIR``, and the row of the installed
code run the same way, for a before/after comparison in the same run.
Usage: bench/coripper_start.py [-n RUNS] [--rounds R] [--dir DIR] [--script PATH] [--tree DIR]
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from _coripper_cores import bench_parser, make_core, workdir_of

GOAL_MS = 30.0
HEAP_MIB = 1024


def median_ms(command: str, env: dict[str, str], runs: int, cwd: Path) -> tuple[float, float, float]:
    """Median wall time, median CPU time (user + system, of ``sh`` and what it ran) and best
    wall time of ``sh -c command`` over *runs* runs (it must exit 0), in ms. CPU time and the
    best run move less than the median wall time when other work loads the machine."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(["sh", "-c", command], env=env, check=True, cwd=cwd)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls) * 1000, statistics.median(cpus) * 1000, min(walls) * 1000


def console_script(name: str) -> str:
    """The installed console script *name* (next to this interpreter, else on PATH)."""
    script = Path(sysconfig.get_path("scripts")) / name
    if script.exists():
        return str(script)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"no {name} console script: pip install the project first")
    return found


def shebang_python(script: str) -> str:
    with open(script, encoding="utf-8") as f:
        first = f.readline()
    return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("-n", "--runs", type=int, default=21)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--script", help="the coripper console script to measure (default: this venv's)")
    parser.add_argument("--tree", action="append", default=[],
                        help="also time python3 -m coripper.cli from this source tree (repeatable)")
    opts = parser.parse_args()
    core = make_core(workdir_of(opts), HEAP_MIB)
    script = opts.script or console_script("coripper")
    python = shebang_python(script)
    base = Path(tempfile.mkdtemp(prefix="ckcoripper"))
    try:
        out = base / "out.core"
        env = dict(os.environ, PYTHONPYCACHEPREFIX=str(base / "pycache"))
        for var in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"):
            env.pop(var, None)
        q = shlex.quote
        rows = {
            "baseline: python3 -c pass": f"{q(python)} -c pass",
            "cat CORE > /dev/null": f"cat {q(str(core))} > /dev/null",
            "coripper CORE > OUT": f"{q(script)} {q(str(core))} > {q(str(out))}",
        }
        if opts.tree:
            rows["python3 -m coripper.cli (installed)"] = (
                f"{q(python)} -m coripper.cli {q(str(core))} > {q(str(out))}")
        for tree in opts.tree:
            rows[f"python3 -m coripper.cli ({tree})"] = (
                f"PYTHONPATH={q(str(Path(tree).resolve()))} {q(python)} -m coripper.cli "
                f"{q(str(core))} > {q(str(out))}")
        # cwd: a directory of no package (python -m puts it first on sys.path)
        for command in rows.values():  # warm the page cache and the bytecode
            subprocess.run(["sh", "-c", command], env=env, check=True, cwd=base)
        samples: dict[str, list[float]] = {name: [] for name in rows}
        cpu: dict[str, list[float]] = {name: [] for name in rows}
        best: dict[str, float] = {name: float("inf") for name in rows}
        for _ in range(opts.rounds):
            for name, command in rows.items():
                wall_ms, cpu_ms, best_ms = median_ms(command, env, opts.runs, base)
                best[name] = min(best[name], best_ms)
                samples[name].append(wall_ms)
                cpu[name].append(cpu_ms)
        baseline = statistics.median(samples["baseline: python3 -c pass"])
        cpu_baseline = statistics.median(cpu["baseline: python3 -c pass"])
        print(f"coripper on a {core.stat().st_size / (1 << 30):.2f} GiB core ({core}), "
              f"output {out.stat().st_size:,} B; median of {opts.rounds}x{opts.runs} runs; "
              f"load average {os.getloadavg()[0]:.2f}")
        for name, values in samples.items():
            ms = statistics.median(values)
            verdict = ""
            if name.startswith("coripper"):
                verdict = (f"  goal <= {GOAL_MS:.0f} ms: {'met' if ms <= GOAL_MS else 'MISSED'}"
                           f" (best run: {'met' if best[name] <= GOAL_MS else 'missed'})")
            cpu_ms = statistics.median(cpu[name])
            print(f"  {name:36s} {ms:7.1f} ms  {ms / baseline:5.2f}x baseline  "
                  f"+{ms - baseline:6.1f} ms  (best {best[name]:6.1f} ms; CPU {cpu_ms:6.1f} ms, "
                  f"{cpu_ms / cpu_baseline:5.2f}x){verdict}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
