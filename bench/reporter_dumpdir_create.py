"""Figure: cost of writing one problem directory through reporter.dumpdir.

Creates a typical CCpp-sized directory (25 small text elements + a 1 MiB core) with
DumpDir.create / save_* / commit / close. Baseline, measured in the same run: the bare
filesystem work of the same shape (mkdir, 25+1 files written and fsynced, rename) with no
locking, O_EXCL, fchown/fchmod or metadata. Prints medians and the ratio.
Run: python bench/reporter_dumpdir_create.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time

from reporter.dumpdir import DumpDir

ELEMENTS = {f"element_{i:02d}": f"value {i}\n" * 3 for i in range(23)}
CORE = os.urandom(1 << 20)


def ours(spool: str, i: int) -> None:
    dd = DumpDir.create(spool, f"ccpp-{i}")
    dd.set_time(time.time())
    dd.save_text("type", "CCpp")
    for name, text in ELEMENTS.items():
        dd.save_text(name, text)
    dd.save_bytes("coredump", CORE)
    dd.commit()
    dd.close()


def baseline(spool: str, i: int) -> None:
    new = os.path.join(spool, f"base-{i}.new")
    os.mkdir(new)
    files = {"time": str(int(time.time())), "last_occurrence": "0", "type": "CCpp", **ELEMENTS}
    for name, text in files.items():
        with open(os.path.join(new, name), "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    with open(os.path.join(new, "coredump"), "wb") as f:
        f.write(CORE)
        f.flush()
        os.fsync(f.fileno())
    os.rename(new, new[:-4])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory(dir="/var/tmp") as spool:
        results = {}
        for label, fn in (("baseline", baseline), ("dumpdir", ours)):
            times = []
            for i in range(n):
                t = time.perf_counter()
                fn(spool, i)
                times.append(time.perf_counter() - t)
            results[label] = statistics.median(times)
            for entry in os.listdir(spool):
                shutil.rmtree(os.path.join(spool, entry))
        base, mine = results["baseline"], results["dumpdir"]
        print(f"baseline (plain mkdir/write/fsync/rename): {base * 1000:7.2f} ms per directory")
        print(f"reporter.dumpdir (locked, O_EXCL, modes):  {mine * 1000:7.2f} ms per directory")
        print(f"ratio {mine / base:.2f}")


if __name__ == "__main__":
    main()
