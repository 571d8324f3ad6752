#!/usr/bin/env python3
"""Start-up of the ``crashkit`` console script: ``--help``, ``list`` over a 100-directory spool,
``info`` of one crash, and ``completion bash``.

Baseline, measured in the same run and interleaved with the commands: ``python3 -c pass`` with
the interpreter the console script runs (its ``#!`` line, site and all). Each figure is the
median of N runs (wall time, stdout a pipe: no pager, no colour; bytecode cached in a private
``PYTHONPYCACHEPREFIX``, as after ``pip install``); the ratio to the baseline and
the extra milliseconds are printed, and whether the 60 ms target is met. The spool is written
here through reporter's DumpDir, each directory shaped like the crash hook's (27 elements, a
minimized core compressed with zstd, one crash in three from a container, one in four
reported). ``--script PATH`` measures another installation's console script (e.g. a wheel
installed into a fresh venv, without the editable finder that the dev venv's site runs at every
start). Usage: bench/cli_startup.py [-n RUNS] [--dirs N] [--script PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reporter.dumpdir import DumpDir  # noqa: E402

TARGET_MS = 60.0


def make_spool(spool: Path, count: int, start: int = 1_700_000_000) -> list[str]:
    """*count* problem directories like the hook's in *spool*; returns their names."""
    spool.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        when = start + 3600 * i
        with DumpDir.create(str(spool), f"ccpp-bench-{i:04d}") as dd:
            exe = f"/usr/bin/prog{i % 7}"
            elements = {
                "time": str(when), "last_occurrence": str(when + 60 * (i % 3)), "count": str(1 + i % 3),
                "uid": str(1000 + i % 2), "pid": str(10_000 + i), "global_pid": str(20_000 + i),
                "tid": str(10_000 + i), "signal": "11" if i % 2 else "6", "executable": exe,
                "type": "CCpp", "analyzer": "abrt-ccpp", "reason": f"prog{i % 7} killed by SIGSEGV",
                "cmdline": f"{exe} --flag {i}", "kernel": "6.1.0", "architecture": "x86_64",
                "hostname": "bench", "os_release": "Debian GNU/Linux 12", "pwd": "/",
                "abrt_version": "0.1.0", "crashkit_version": "0.1.0", "component": f"prog{i % 7}",
                "maps": "00400000-00401000 r-xp 00000000 08:01 1 " + exe + "\n" * 1,
                "environ": "PATH=/usr/bin\nHOME=/root\n", "limits": "Max core file size unlimited\n",
                "cgroup": "0::/user.slice\n",
            }
            if i % 3 == 0:
                elements.update({"container": "podman", "container_id": f"{i:064x}",
                                 "container_rootfs": f"/var/lib/containers/storage/overlay/{i:x}/merged"})
            if i % 4 == 0:
                elements["reported_to"] = f"ABRT Server: URL=https://faf.example/reports/{i}\n"
            for name, value in elements.items():
                dd.save_text(name, value)
            dd.save_bytes("coredump.zst", b"\x28\xb5\x2f\xfd" + os.urandom(4096))
            names.append(os.path.basename(dd.commit()))
    return names


def median_ms(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, int, float]:
    """Median and best wall time of *runs* runs of *argv* in ms, and its last exit status (the
    best run moves less than the median when other work loads the machine)."""
    samples = []
    rc = 0
    for _ in range(runs):
        t = time.perf_counter()
        rc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            check=False).returncode
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000, rc, min(samples) * 1000


def console_script() -> str:
    script = Path(sysconfig.get_path("scripts")) / "crashkit"
    if not script.exists():
        found = shutil.which("crashkit")
        if found is None:
            raise SystemExit("no crashkit console script: pip install the project first")
        script = Path(found)
    return str(script)


def shebang_python(script: str) -> str:
    with open(script, encoding="utf-8") as f:
        first = f.readline()
    return first[2:].strip().split()[0] if first.startswith("#!") else sys.executable


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=21)
    parser.add_argument("--dirs", type=int, default=100)
    parser.add_argument("--script", help="the crashkit console script to measure (default: this venv's)")
    opts = parser.parse_args()
    script = opts.script or console_script()
    python = shebang_python(script)
    base = Path(tempfile.mkdtemp(prefix="ckcli"))
    try:
        spool = base / "spool"
        names = make_spool(spool, opts.dirs)
        # Bytecode cached, as after pip install (which compiles), in a private prefix.
        env = dict(os.environ, CRASHKIT_SPOOL=str(spool), COLUMNS="120",
                   PYTHONPYCACHEPREFIX=str(base / "pycache"))
        for var in ("NO_COLOR", "PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"):
            env.pop(var, None)
        commands = [
            ("crashkit --help", [script, "--help"]),
            (f"crashkit list ({opts.dirs} dirs)", [script, "list"]),
            ("crashkit list --json", [script, "list", "--json"]),
            ("crashkit info MATCH", [script, "info", names[len(names) // 2]]),
            ("crashkit completion bash", [script, "completion", "bash"]),
        ]
        for _, argv in commands:  # warm the page cache and the bytecode
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        rows: dict[str, list[float]] = {"baseline: python3 -c pass": []}
        best: dict[str, float] = {}
        rcs: dict[str, int] = {}
        rounds = 3  # interleave: load on this shared machine moves every row alike
        for _ in range(rounds):
            ms, _, low = median_ms([python, "-c", "pass"], env, opts.runs)
            rows["baseline: python3 -c pass"].append(ms)
            best["baseline: python3 -c pass"] = min(best.get("baseline: python3 -c pass", low), low)
            for name, argv in commands:
                ms, rcs[name], low = median_ms(argv, env, opts.runs)
                rows.setdefault(name, []).append(ms)
                best[name] = min(best.get(name, low), low)
        baseline = statistics.median(rows["baseline: python3 -c pass"])
        print(f"crashkit start-up, median of {rounds}x{opts.runs} runs ({script}, {python}); "
              f"load average {os.getloadavg()[0]:.2f}")
        for name, samples in rows.items():
            ms = statistics.median(samples)
            verdict = ""
            if name != "baseline: python3 -c pass":
                verdict = (f"  +{ms - baseline:5.1f} ms  target < {TARGET_MS:.0f} ms: "
                           f"{'met' if ms < TARGET_MS else 'MISSED'}"
                           + (f" (exit {rcs[name]})" if rcs[name] else ""))
            print(f"  {name:32s} {ms:7.1f} ms  {ms / baseline:5.2f}x baseline  (best {best[name]:5.1f} ms)"
                  f"{verdict}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
