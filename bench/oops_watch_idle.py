#!/usr/bin/env python3
"""CPU used by ``crashkit oops watch`` following an idle /dev/kmsg, against ``sleep``.

Runs ``crashkit oops watch --source kmsg --timeout N`` (after a ``collect`` that moves the
kmsg cursor to the end, so the watcher starts idle) and ``sleep N`` in the same run, and
prints the CPU time of each (user+system, from wait4), the watcher's CPU after its start-up
(sampled from /proc/PID/stat once it is following), and the ratio to the baseline.

Usage: python bench/oops_watch_idle.py [SECONDS]   (root: /dev/kmsg must be readable)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    """On-CPU time of all threads of a live process, seconds (schedstat: nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def run(argv: list[str], seconds: float, *, ready: str | None = None,
        settle: float = 1.0) -> tuple[float, float | None, float, float]:
    """(total CPU s, idle CPU s, idle window s, wall s) of one command.

    The idle window starts ``settle`` seconds after the ``ready`` line (start-up and the
    catch-up read of the ring buffer are over) and ends one second before the timeout.
    """
    start = time.monotonic()
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    idle = window = None
    if ready is not None:
        for line in proc.stderr:  # type: ignore[union-attr]
            if ready in line:
                break
        t0 = time.monotonic()
        time.sleep(settle)
        c0 = proc_cpu(proc.pid)
        t1 = time.monotonic()
        time.sleep(max(0.0, seconds - (t1 - start) - 1.0))
        idle, window = proc_cpu(proc.pid) - c0, time.monotonic() - t1
        del t0
    _pid, _status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    return usage.ru_utime + usage.ru_stime, idle, window or 0.0, wall


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    if not os.access("/dev/kmsg", os.R_OK):
        print("needs read access to /dev/kmsg (root)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as spool:
        crashkit = [sys.executable, "-m", "collectors.cli"]
        subprocess.run([*crashkit, "oops", "collect", "--source", "kmsg", "--spool", spool],
                       check=True, stdout=subprocess.DEVNULL)
        w_total, w_idle, w_window, w_wall = run(
            [*crashkit, "--debug", "oops", "watch", "--source", "kmsg", "--spool", spool,
             "--timeout", str(seconds)], seconds, ready="following")
    s_total, _, _, s_wall = run(["sleep", str(seconds)], seconds)
    assert w_idle is not None
    print(f"oops watch on an idle /dev/kmsg for {seconds:g} s: CPU {w_total * 1000:.1f} ms in total "
          f"(Python start-up, ring-buffer catch-up, exit), wall {w_wall:.2f} s")
    print(f"  idle window {w_window:.2f} s: CPU {w_idle * 1e6:.0f} us "
          f"= {100 * w_idle / w_window:.4f}% of one core")
    print(f"baseline: sleep {seconds:g}: CPU {s_total * 1000:.2f} ms in total, wall {s_wall:.2f} s "
          f"= {100 * s_total / s_wall:.4f}% of one core")
    floor = max(s_total / s_wall, 1e-9)
    print(f"ratio idle watch / sleep (CPU per second): {(w_idle / w_window) / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
