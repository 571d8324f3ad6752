#!/usr/bin/env python3
"""coripper on cores with many mapped files: 1,000 vs 64,000 vs vm.max_map_count mappings.

Issue 15, finding 2: a process that maps one file ~65,530 times (``vm.max_map_count``) made
the minimizer take 266 s (quadratic in the ``NT_FILE`` entries). The cores here come from
tests/security/data/map_many.c (maps one file COUNT times, 0 = until mmap fails, then crashes;
two extra threads), crashed through the kernel (core_pattern set and restored by
tests/testlib.py) and cached in the work directory. Two files are mapped:

* ``plain``: a text file. The kernel dumps nothing of such a mapping: the core is headers
  (one program header and one ``NT_FILE`` entry per mapping), and minimizing is linear in them.
  This is the issue's figure: the max_map_count core in under 1 s, 64,000 / 1,000 <= 80x.
* ``elf``: a copy of map_many itself. The kernel also dumps each mapping's first page (the ELF
  header, coredump_filter bit 4), which the minimizer keeps and parses: 256 MiB of 4 KiB
  segments to read, write and parse, one by one.

Timed, best of ``--rounds`` interleaved rounds: the whole ``coripper --hash none - < CORE -o
OUT`` process (how the issue measured), ``cat CORE > /dev/null`` (the baseline: reading the
core at all) and, in-process, ``minimize_stream`` alone (no interpreter start-up: the engine's
own scaling). Ratios: 64,000 vs 1,000 mappings, and against ``cat`` of the same core.
Usage: python bench/coripper_many_mappings.py [--dir /var/tmp/coripper-bench] [--rounds 5]
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

from _coripper_cores import REPO, bench_parser, workdir_of
from testlib import crash_through_kernel

from coripper.minimizer import elfcore
from coripper.minimizer.stream import MinimizeOptions, minimize_stream

MAP_MANY = REPO / "tests" / "security" / "data" / "map_many.c"
COUNTS = {"1,000": 1000, "64,000": 64000, "max": 0}


def build(workdir: Path) -> tuple[Path, dict[str, Path]]:
    """map_many and the files it maps (short paths: 65,530 NT_FILE names must fit 4 MiB)."""
    exe = workdir / "map_many"
    if not exe.exists():
        subprocess.run(["gcc", "-g", "-O1", "-pthread", "-o", str(exe), str(MAP_MANY)],
                       check=True)
    files = {"plain": workdir / "t", "elf": workdir / "e"}
    if not files["plain"].exists():
        files["plain"].write_text("not an ELF file\n" * 512)
    if not files["elf"].exists():
        files["elf"].write_bytes(exe.read_bytes())
    return exe, files


def nt_file_count(core: Path) -> int:
    with open(core, "rb") as f:
        head = f.read(64 << 20)
    hdr = elfcore.parse_elf_header(head)
    for ph in elfcore.parse_program_headers(head[hdr.e_phoff:hdr.e_phoff + hdr.e_phnum * 56]):
        if ph.p_type == elfcore.PT_NOTE:
            for note in elfcore.iter_notes(head[ph.p_offset:ph.p_offset + ph.p_filesz]):
                if note.name == "CORE" and note.n_type == elfcore.NT_FILE:
                    return int(struct.unpack_from("<Q", note.desc)[0])
    return 0


def make_core(workdir: Path, exe: Path, mapped: Path, kind: str, count: int) -> Path:
    cached = workdir / f"core-maps-{kind}-{count or 'max'}"
    if not cached.exists():
        crash = crash_through_kernel([exe, mapped, str(count), "2"], workdir / "tmp-maps",
                                     timeout=600)
        assert crash.core is not None, "kernel wrote no core"
        crash.core.rename(cached)
    if nt_file_count(cached) < (count or 60000) - 100:
        raise SystemExit(f"{cached}: the kernel left NT_FILE out (--dir too long a path?)")
    return cached


def wall(argv: list[str], stdin: Path | None = None) -> float:
    start = time.perf_counter()
    with open(stdin or "/dev/null", "rb") as src:
        subprocess.run(argv, stdin=src, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def in_process(core: Path, out: Path) -> float:
    with open(core, "rb") as src, open(out, "wb") as dst:
        start = time.perf_counter()
        minimize_stream(src, dst, MinimizeOptions(hash_algorithm=None))
        return time.perf_counter() - start


def main() -> None:
    ap = bench_parser(__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    workdir = workdir_of(args)
    exe, files = build(workdir)
    cores = {(kind, label): make_core(workdir, exe, path, kind, count)
             for kind, path in files.items() for label, count in COUNTS.items()}
    out = workdir / "maps-out.core"
    cli = [sys.executable, "-m", "coripper.cli", "--hash", "none", "-", "-o", str(out)]
    best: dict[tuple[str, str, str], float] = {}
    for _ in range(args.rounds):
        for key, core in cores.items():
            for what, seconds in (("cat", wall(["cat", str(core)], None)),
                                  ("cli", wall(cli, core)),
                                  ("engine", in_process(core, out))):
                k = (*key, what)
                best[k] = min(best.get(k, float("inf")), seconds)
    print(f"best of {args.rounds} interleaved rounds; page cache warm")
    for kind in files:
        print(f"\n{kind}: {files[kind]} mapped COUNT times")
        print(f"  {'mappings':>8} {'core bytes':>13} {'cat > /dev/null':>16} "
              f"{'coripper - < CORE':>18} {'minimize_stream':>16}")
        for label in COUNTS:
            core = cores[(kind, label)]
            n = nt_file_count(core)
            t_cat, t_cli, t_eng = (best[(kind, label, w)] for w in ("cat", "cli", "engine"))
            print(f"  {n:>8,} {core.stat().st_size:>13,} {t_cat * 1000:>13.1f} ms "
                  f"{t_cli * 1000:>15.1f} ms {t_eng * 1000:>13.1f} ms"
                  f"   ({t_cli / t_cat:.1f}x cat)")
        t = {label: best[(kind, label, "engine")] for label in COUNTS}
        c = {label: best[(kind, label, "cli")] for label in COUNTS}
        print(f"  64,000 vs 1,000 mappings: engine {t['64,000'] / t['1,000']:.1f}x, whole "
              f"process {c['64,000'] / c['1,000']:.1f}x (goal <= 80x; linear is 64x, "
              "quadratic ~4096x)")
        print(f"  max_map_count core: whole process {c['max']:.3f} s, engine {t['max']:.3f} s "
              "(goal < 1 s)")


if __name__ == "__main__":
    main()
