"""Figure: start-up cost of ``import reporter.dumpdir`` (the crash hook imports it).

Baseline, measured in the same run: a bare interpreter start (``python -c pass``). Printed:
median wall time of each over N runs and the extra cost of the import, with bytecode
caching on (a normal install) and off (PYTHONDONTWRITEBYTECODE, as some dev shells set).
Run: python bench/reporter_dumpdir_import.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time


def median_run(code: str, env: dict[str, str], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as cache:
        for label, extra in (("bytecode cached", {"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": ""}),
                             ("no bytecode", {"PYTHONDONTWRITEBYTECODE": "1"})):
            env = dict(os.environ, **extra)
            subprocess.run([sys.executable, "-c", "import reporter.dumpdir"], env=env, check=True)  # warm caches
            base = median_run("pass", env, n)
            full = median_run("import reporter.dumpdir", env, n)
            print(f"{label:16s} baseline python -c pass: {base * 1000:6.1f} ms   "
                  f"with import reporter.dumpdir: {full * 1000:6.1f} ms   "
                  f"extra {1000 * (full - base):5.1f} ms   ratio {full / base:.3f}")


if __name__ == "__main__":
    main()
