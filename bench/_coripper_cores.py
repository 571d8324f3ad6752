"""Shared setup of the coripper benches: the repo on sys.path, the work directory, cached cores.

Every core comes from tests/programs/crasher.c (``segv -t 4 -m HEAP_MIB``) crashed through the
kernel (core_pattern set and restored by tests/testlib.py) and is cached in the work directory
as ``core-heap<MiB>``, so only the first run of a bench pays for it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]  # the repo first: tests/coripper must not shadow coripper
sys.path.append(str(REPO / "tests"))
from testlib import PROGRAMS_SRC, crash_through_kernel  # noqa: E402

DEFAULT_DIR = "/var/tmp/coripper-bench"


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser described by ``doc``'s first line, with ``--dir`` (the work directory)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--dir", default=DEFAULT_DIR)
    return ap


def workdir_of(args: argparse.Namespace) -> Path:
    """The work directory named by ``--dir``, created if missing."""
    workdir = Path(args.dir)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def make_core(workdir: Path, heap_mib: int) -> Path:
    """Path of a cached kernel core of crasher with a ``heap_mib`` MiB heap (made on first use)."""
    exe = workdir / "crasher"
    if not exe.exists():
        subprocess.run(["gcc", "-g", "-O1", "-pthread", "-o", str(exe),
                        str(PROGRAMS_SRC / "crasher.c")], check=True)
    cached = workdir / f"core-heap{heap_mib}"
    if not cached.exists():
        crash = crash_through_kernel([exe, "segv", "-t", "4", "-m", str(heap_mib)],
                                     workdir / f"tmp{heap_mib}", timeout=600)
        assert crash.core is not None, "kernel wrote no core"
        crash.core.rename(cached)
    return cached
