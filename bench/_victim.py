"""The crash every crash-to-reap bench times: a crasher holding touched heap is sent SIGSEGV."""

from __future__ import annotations

import resource
import signal
import subprocess
import time
from pathlib import Path


def crash_sleeping_victim(exe: Path, mib: int, threads: int,
                          cwd: Path | None = None) -> tuple[float, float]:
    """Start ``exe sleep -m MIB -t THREADS`` (tests/programs/crasher.c) with unlimited
    RLIMIT_CORE, wait for ``ready``, send SIGSEGV and wait for it.

    Returns ``(t0, reaped)``: the perf_counter() when the signal was sent, and the seconds until
    the parent's wait() returned (with ``core_pipe_limit`` > 0 the kernel reaps the process only
    once the core_pattern pipe's reader has read the whole core).
    """
    proc = subprocess.Popen([str(exe), "sleep", "-m", str(mib), "-t", str(threads)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)))
    assert proc.stdout is not None
    assert b"ready" in proc.stdout.readline()
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGSEGV)
    proc.wait()
    reaped = time.perf_counter() - t0
    assert proc.returncode == -signal.SIGSEGV, proc.returncode
    return t0, reaped
