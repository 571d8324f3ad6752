#!/usr/bin/env python3
"""Crash storms through the real kernel: how many crashes crashkit-hook accounts for.

Two storms (issue 17): 100 crashes at once (5 each of 20 programs) and 1,000 crashes over
10 s (20 each of 50 programs). The programs are copies of tests/programs/crasher.c under
different names, crashing with SIGSEGV. For each storm and each setting it prints:

* crashes accounted / crashes that happened: the sum of ``count`` over the spool's problem
  directories against the crashes the parent saw (wait status SIGSEGV);
* the problem directories with a core, and the occurrences counted without one;
* wall time from the first crash until every hook process has exited and the spool is
  quiet;
* the peak total RSS (and PSS) of the hook processes, sampled every 20 ms from /proc.

Settings compared in the same run: core_pipe_limit 0 with load shedding (what ``crashkit hook
install`` sets) against core_pipe_limit 16, the old default, whose refusals the kernel logs
(rate-limited) instead of piping. systemd-coredump, when installed, is run the same way
under ``systemd-socket-activate`` for comparison. Needs root; takes the tests' host-wide
core_pattern lock and restores core_pattern and core_pipe_limit.
``--light`` also times one shed crash (the hook's light path) against ``python -IS -c pass``.
Usage: bench/crash_storm.py [--storm at-once|spread|both|none] [--limits 0,16]
[--coredump-limits 16] [--light]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from testlib import _unlimited_core, core_pattern  # noqa: E402

from collectors.corehook import install  # noqa: E402
from reporter.dumpdir import iter_problem_dirs  # noqa: E402

COREDUMP = Path("/lib/systemd/systemd-coredump")


class RssSampler:
    """Peak of the summed RSS and PSS of processes whose command line holds *marker*."""

    def __init__(self, marker: bytes, exclude: frozenset[int] = frozenset()) -> None:
        self.marker = marker
        self.exclude = exclude
        self.peak_rss = self.peak_pss = self.peak_procs = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[int, int, int]:
        rss = pss = procs = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) in self.exclude:
                continue
            try:
                if self.marker not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                procs += 1
            except OSError:
                continue
        return rss, pss, procs

    def _run(self) -> None:
        while not self.stop.is_set():
            rss, pss, procs = self._sample()
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, procs)
            time.sleep(0.02)

    def running(self) -> int:
        return self._sample()[2]

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def build_programs(out: Path, count: int) -> list[Path]:
    exe = out / "crasher"
    subprocess.run(["gcc", "-O1", "-pthread", "-fPIE", "-pie", "-o", str(exe),
                    str(REPO / "tests" / "programs" / "crasher.c")], check=True)
    programs = []
    for i in range(count):
        copy = out / f"storm{i:02d}"
        shutil.copy(exe, copy)
        copy.chmod(0o755)
        programs.append(copy)
    return programs


def storm_plan(kind: str, programs: list[Path]) -> tuple[list[Path], float]:
    """(the crashes in start order, seconds to spread them over)."""
    if kind == "at-once":
        return [p for p in programs[:20] for _ in range(5)], 0.0
    return [p for _ in range(20) for p in programs[:50]], 10.0


def run_storm(crashes: list[Path], spread: float) -> int:
    """Start the crashes (all at once, or evenly over *spread* seconds); the SIGSEGV count."""
    procs = []
    start = time.monotonic()
    for i, exe in enumerate(crashes):
        if spread:
            delay = start + spread * i / len(crashes) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        procs.append(subprocess.Popen([str(exe), "segv"], preexec_fn=_unlimited_core,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return sum(1 for p in procs if p.wait(timeout=600) == -11)


def wait_quiet(sampler: RssSampler, limit: float = 300.0) -> None:
    deadline = time.monotonic() + limit
    quiet_since = None
    while time.monotonic() < deadline:
        if sampler.running() == 0:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 0.5:
                return
        else:
            quiet_since = None
        time.sleep(0.05)


def crashkit_storm(kind: str, programs: list[Path], pipe_limit: int, work: Path) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="cks", dir="/tmp"))
    base.chmod(0o755)
    spool, state = base / "spool", base / "st"
    spool.mkdir(mode=0o700)
    state.mkdir()
    paths = install.Paths(str(state))
    Path(paths.hook_config).write_text(f'[hook]\nspool = "{spool}"\nlog_file = "{base}/hook.log"\n'
                                       'postprocess = false\nmin_free_space = 0\n')
    Path(paths.launcher).write_text(install.launcher_text(paths.hook_config))
    Path(paths.launcher).chmod(0o755)
    crashes, spread = storm_plan(kind, programs)
    try:
        with core_pattern(install.pattern_for(paths.launcher), pipe_limit), \
                RssSampler(str(paths.launcher).encode()) as sampler:
            t0 = time.monotonic()
            happened = run_storm(crashes, spread)
            wait_quiet(sampler)
            wall = time.monotonic() - t0
        dirs = list(iter_problem_dirs(str(spool)))
        accounted = sum(int((Path(d) / "count").read_text()) for d in dirs)
        full = sum(1 for d in dirs if (Path(d) / "coredump").exists())
        without = sum(int((Path(d) / "counted_without_core").read_text())
                      for d in dirs if (Path(d) / "counted_without_core").exists())
        return {"setting": f"crashkit, core_pipe_limit {pipe_limit}", "happened": happened,
                "accounted": accounted, "full_dirs": full, "without_core": without, "wall": wall,
                "rss": sampler.peak_rss, "pss": sampler.peak_pss, "procs": sampler.peak_procs}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def coredump_pattern() -> str:
    """The core_pattern Debian's systemd-coredump installs (its sysctl.d file), else the
    specifiers it needs."""
    conf = Path("/usr/lib/sysctl.d/50-coredump.conf")
    if conf.exists():
        for line in conf.read_text().splitlines():
            if line.startswith("kernel.core_pattern="):
                return line.split("=", 1)[1].strip()
    return f"|{COREDUMP} %P %u %g %s %t %c %h"


def coredump_storm(kind: str, programs: list[Path], pipe_limit: int) -> dict[str, object] | None:
    """The same storm against systemd-coredump, socket-activated without systemd as PID 1
    (``systemd-socket-activate --seqpacket -a``: one systemd-coredump per connection). Its
    storage is not configurable from here: the cores it adds to /var/lib/systemd/coredump
    are counted, then deleted."""
    if not COREDUMP.exists() or not shutil.which("systemd-socket-activate"):
        return None
    store = Path("/var/lib/systemd/coredump")
    before = set(os.listdir(store)) if store.is_dir() else set()
    activator = subprocess.Popen(["systemd-socket-activate", "--seqpacket", "-a", "-l",
                                  "/run/systemd/coredump", str(COREDUMP)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    crashes, spread = storm_plan(kind, programs)
    try:
        time.sleep(0.5)
        with core_pattern(coredump_pattern(), pipe_limit), \
                RssSampler(b"systemd-coredump", frozenset({activator.pid})) as sampler:
            t0 = time.monotonic()
            happened = run_storm(crashes, spread)
            wait_quiet(sampler)
            wall = time.monotonic() - t0
    finally:
        activator.terminate()  # our own child, by its PID
        activator.wait()
    stored = set(os.listdir(store)) - before if store.is_dir() else set()
    for name in stored:
        (store / name).unlink(missing_ok=True)
    return {"setting": f"systemd-coredump, core_pipe_limit {pipe_limit}", "happened": happened,
            "accounted": len(stored), "full_dirs": len(stored), "without_core": 0, "wall": wall,
            "rss": sampler.peak_rss, "pss": sampler.peak_pss, "procs": sampler.peak_procs}


def light_path_timing(work: Path, runs: int = 15) -> None:
    """Wall time of one shed crash (the light path: every slot and the fold lock held, the
    program's core already kept, a 1 MiB core drained) against ``python -IS -c pass``, the
    interpreter start it cannot do without; medians of *runs*, interleaved."""
    import statistics

    from collectors.corehook import gate, limits

    base = Path(tempfile.mkdtemp(prefix="cks", dir="/tmp"))
    base.chmod(0o755)
    spool, paths = base / "spool", install.Paths(str(base))
    spool.mkdir(mode=0o700)
    Path(paths.hook_config).write_text(f'[hook]\nspool = "{spool}"\nmax_full_hooks = 1\n')
    Path(paths.launcher).write_text(install.launcher_text(paths.hook_config))
    Path(paths.launcher).chmod(0o755)
    core = work / "core-1m"
    core.write_bytes(os.urandom(1 << 20))
    victim = subprocess.Popen(["sleep", "600"])
    dfd = limits.open_state_dir(str(spool))
    try:
        (spool / "ccpp-kept").mkdir()
        gate.mark_seen(str(spool), gate.program_key(0, os.readlink(f"/proc/{victim.pid}/exe"), 11),
                       str(spool / "ccpp-kept"))
        held = [limits.try_slot(dfd, gate.SLOT_PREFIX, 1), gate.try_lock(dfd, gate.FOLD_LOCK)]
        argv = [str(paths.launcher), *[str(victim.pid)] * 4, "0", "0", "11", "0", "0", "1", "host", "sleep"]
        bare, light = [], []
        for _ in range(runs):
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
            bare.append(time.monotonic() - t0)
            with open(core, "rb") as stdin:
                t0 = time.monotonic()
                subprocess.run(argv, stdin=stdin, env={}, check=True)
                light.append(time.monotonic() - t0)
        counted = len(os.listdir(spool / gate.STATE_DIR / gate.SHED_DIR))
        for fd in held:
            if fd is not None:
                os.close(fd)
    finally:
        os.close(dfd)
        victim.kill()
        victim.wait()
        shutil.rmtree(base, ignore_errors=True)
    b, li = statistics.median(bare), statistics.median(light)
    print(f"light path: python -IS -c pass {b * 1e3:.1f} ms (baseline), a shed crash {li * 1e3:.1f} ms "
          f"= {li / b:.2f}x (median of {runs}; {counted} of {runs} recorded)")


def _num(row: dict[str, object], key: str) -> float:
    value = row[key]
    assert isinstance(value, (int, float)), key
    return value


def show(kind: str, row: dict[str, object]) -> None:
    happened, accounted = int(_num(row, "happened")), int(_num(row, "accounted"))
    ratio = accounted / happened if happened else 0.0
    print(f"{kind:8} {row['setting']:36} accounted {accounted:5}/{happened:<5} ({ratio:6.1%})  "
          f"with core {row['full_dirs']:4}  without core {row['without_core']:5}  "
          f"quiet after {_num(row, 'wall'):6.2f} s  peak RSS {int(_num(row, 'rss')) >> 20:5} MiB "
          f"(PSS {int(_num(row, 'pss')) >> 20} MiB, {row['procs']} hooks)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storm", choices=("at-once", "spread", "both", "none"), default="both")
    parser.add_argument("--light", action="store_true",
                        help="also time one shed crash against the bare interpreter start")
    parser.add_argument("--limits", default="0,16", help="core_pipe_limit values for crashkit")
    parser.add_argument("--coredump-limits", default="16",
                        help="core_pipe_limit values for systemd-coredump (16: what Debian sets)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (core_pattern)", file=sys.stderr)
        return 2
    kinds = {"both": ("at-once", "spread"), "none": ()}.get(args.storm, (args.storm,))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        if args.light:
            light_path_timing(work)
        programs = build_programs(work, 50) if kinds else []
        for kind in kinds:
            for limit in (int(x) for x in args.limits.split(",")):
                show(kind, crashkit_storm(kind, programs, limit, work))
            for limit in (int(x) for x in args.coredump_limits.split(",") if x):
                row = coredump_storm(kind, programs, limit)
                if row is not None:
                    show(kind, row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
