#!/usr/bin/env python3
"""Make one checked-in core of tests/programs/cores/ (run by the Makefile beside this file).

usage: make_core.py OUTDIR NAME PROGRAM [ARG...]

PROGRAM (a static build) is copied to ``/tmp/crashkit-stored-cores/<its name>`` and crashed
there through the kernel (tests/testlib.py's helpers: core_pattern is set under their lock and
restored; needs root), so the core names that path in NT_FILE on every machine that rebuilds
it. Written to OUTDIR: ``NAME.core.zst`` (the kernel's core, zstd-compressed),
``NAME.argv`` (the command line, one argument a line), ``NAME.gdb`` (the oracle: every thread's
frames as gdb shows them, one ``CRASHKIT-THREAD`` JSON line per thread, by
tests/coripper/data/gdb_frames.py; plus ``thread apply all bt`` for people) and
``PROGRAM-NAME.zst`` (the program, compressed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import zstandard

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from testlib import crash_through_kernel  # noqa: E402 - the tests' kernel-crash helper

RUN_DIR = Path("/tmp/crashkit-stored-cores")
GDB_FRAMES = TESTS / "coripper" / "data" / "gdb_frames.py"


def _compress(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        zstandard.ZstdCompressor(level=19).copy_stream(fin, fout)


def _gdb(program: Path, core: Path, *commands: str) -> str:
    argv = ["gdb", "-batch", "-nx", "-ex", "set backtrace past-main on",
            "-ex", "set backtrace past-entry on"]
    for command in commands:
        argv += ["-x", command] if command.endswith(".py") else ["-ex", command]
    return subprocess.run([*argv, str(program), str(core)], capture_output=True, text=True,
                          check=True, timeout=300).stdout


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    outdir, name, program, args = Path(argv[1]), argv[2], Path(argv[3]), argv[4:]
    RUN_DIR.mkdir(exist_ok=True)
    run_as = RUN_DIR / program.name
    shutil.copy2(program, run_as)
    with tempfile.TemporaryDirectory(prefix="crashkit-core-") as tmp:
        crash = crash_through_kernel([run_as, *args], Path(tmp))
        if crash.core is None:
            print(f"{name}: the kernel wrote no core", file=sys.stderr)
            return 1
        frames = _gdb(run_as, crash.core, str(GDB_FRAMES))
        if "CRASHKIT-THREAD " not in frames:
            print(f"{name}: gdb printed no threads", file=sys.stderr)
            return 1
        human = _gdb(run_as, crash.core, "thread apply all bt")
        outdir.mkdir(parents=True, exist_ok=True)
        _compress(crash.core, outdir / f"{name}.core.zst")
    _compress(run_as, outdir / f"{program.name}.zst")
    (outdir / f"{name}.argv").write_text("".join(f"{a}\n" for a in crash.argv))
    oracle = [line for line in frames.splitlines() if line.startswith("CRASHKIT-THREAD ")]
    (outdir / f"{name}.gdb").write_text("\n".join(oracle) + "\n\n" + human)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
