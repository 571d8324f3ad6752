#!/usr/bin/env python3
"""Start-up cost of crashkit-hook (interpreter start + imports up to reading stdin).

Prints, each as the median of N runs: the baseline ``python3 -c pass`` (same interpreter,
with site), ``python -IS -c pass``, the generated launcher's imports only, a complete hook
run that ignores the crash (signal 15: snapshot of /proc/self-ish, decision, drain, exit) and
the pip console script. Target: the launcher's start-up under 60 ms. Needs root (the hook
checks its spool's owner). Usage: bench/hook_startup.py [-n RUNS]
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

from collectors.corehook import install  # noqa: E402

IMPORTS = ("import collectors.corehook.hook, collectors.corehook.args, collectors.corehook.config, "
           "collectors.corehook.capture, coripper.minimizer.stream")


def timed(argv: list[str], runs: int, stdin: bytes = b"") -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={}, check=False)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=21)
    opts = parser.parse_args()
    python = os.path.realpath(sys.executable)
    base = Path(tempfile.mkdtemp(prefix="ckb", dir="/tmp"))
    try:
        spool = base / "spool"
        spool.mkdir(mode=0o700)
        paths = install.Paths(str(base))
        Path(paths.hook_config).write_text(f'[hook]\nspool = "{spool}"\npostprocess = false\n')
        launcher = Path(paths.launcher)
        launcher.write_text(install.launcher_text(paths.hook_config))
        launcher.chmod(0o755)
        sleeper = subprocess.Popen(["sleep", "60"])
        pid = str(sleeper.pid)
        argv = [pid, pid, pid, pid, "0", "0", "15", str(int(time.time())), "0", "1", "h", "sleep"]
        root = install.package_root()
        rows = [
            ("baseline: python3 -c pass", timed([python, "-c", "pass"], opts.runs)),
            ("python3 -IS -c pass", timed([python, "-IS", "-c", "pass"], opts.runs)),
            ("launcher imports (-IS)", timed([python, "-IS", "-c",
                                              f"import sys; sys.path.insert(0, {root!r}); {IMPORTS}"],
                                             opts.runs)),
            ("hook run, crash ignored", timed([str(launcher), *argv], opts.runs)),
        ]
        script = Path(sysconfig.get_path("scripts")) / "crashkit-hook"
        if script.exists():
            rows.append(("console script crashkit-hook (site)", timed([str(script), *argv], opts.runs)))
        sleeper.kill()
        sleeper.wait()
        baseline = rows[0][1]
        print(f"crashkit-hook start-up, median of {opts.runs} runs ({python})")
        for name, ms in rows:
            print(f"  {name:40s} {ms:7.1f} ms   {ms / baseline:5.2f}x baseline")
        hook_ms = rows[3][1]
        print(f"  hook run ignoring a crash: {hook_ms:.1f} ms (target < 60 ms: "
              f"{'met' if hook_ms < 60 else 'MISSED'})")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
