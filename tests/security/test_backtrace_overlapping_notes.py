"""Issue 15 §5: memory amplification from overlapping notes, and other note floods.

Sparse cores built with tests/coripper/elfwriter.py: PT_NOTE headers of almost 64 MiB each,
all over the same bytes (zeros: 12-byte empty notes, millions of them), or one after the other,
plus a real thread or two. The old unwinder read and parsed every header's 64 MiB (67 s and
2.65 GB for three headers, growing with their number). ``crashkit backtrace`` runs in a
subprocess of a small wrapper whose only child it is, so the wrapper's RUSAGE_CHILDREN peak
RSS is the CLI's; it must finish within seconds, under 256 MiB, and say what it left out.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "coripper"))
from elfwriter import (CoreSpec, build_core, note, prstatus,  # noqa: E402 - tests/coripper
                       simple_spec)

MAX_RSS = 256 << 20
MAX_SECONDS = 30.0
NOTE_SPAN = (64 << 20) - 1              # just within the old per-segment limit
#: The CLI runs capped far above what a bounded unwind needs, so a regression fails fast.
ADDRESS_SPACE = 1 << 30

#: Runs argv (capped), prints rc, seconds, stderr and the peak RSS of its only child.
WRAPPER = r"""
import json, resource, subprocess, sys, time
cap = int(sys.argv[1])
def limit():
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
start = time.monotonic()
try:
    res = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=120,
                         preexec_fn=limit, cwd="/")
    rc, err = res.returncode, res.stderr
except subprocess.TimeoutExpired:
    rc, err = None, "timed out"
print(json.dumps({"rc": rc, "stderr": err, "seconds": time.monotonic() - start,
                  "maxrss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


def _phdr(p_type: int, offset: int, filesz: int, vaddr: int = 0, flags: int = 4) -> bytes:
    return struct.pack("<IIQQQQQQ", p_type, flags, offset, vaddr, 0, filesz, filesz, 4)


def hostile_core(path: Path, spec: CoreSpec, headers: int, *, disjoint: bool = False,
                 span: int = NOTE_SPAN) -> Path:
    """``spec``'s core plus ``headers`` PT_NOTEs of ``span`` bytes starting at its notes, all
    at the same offset or one after another (``disjoint``). Past the real notes the spans are
    zeros (a hole: the file is sparse), which parse as 12-byte empty notes; the memory and the
    program header table are moved behind the note spans."""
    base = build_core(spec)
    phnum = struct.unpack_from("<H", base, 56)[0]
    phdrs = [struct.unpack_from("<IIQQQQQQ", base, 64 + 56 * i) for i in range(phnum)]
    notes_at, notes_size = phdrs[0][2], phdrs[0][5]
    end = notes_at + (headers if disjoint else 1) * span
    data_at = (end + 4095) & ~4095
    loads, blobs, at = [], [], data_at
    for p in phdrs:
        if p[0] == 1:
            loads.append(_phdr(1, at, p[5], p[3], p[1]))
            blobs.append((at, base[p[2]:p[2] + p[5]]))
            at = (at + p[5] + 4095) & ~4095
    notes = [_phdr(4, notes_at + (i * span if disjoint else 0), span) for i in range(headers)]
    table = b"".join(loads + notes)
    ehdr = bytearray(base[:64])
    struct.pack_into("<Q", ehdr, 32, at)                            # e_phoff
    struct.pack_into("<H", ehdr, 56, len(loads) + len(notes))       # e_phnum
    with open(path, "wb") as f:
        f.write(bytes(ehdr))
        f.seek(notes_at)
        f.write(base[notes_at:notes_at + notes_size])
        for offset, blob in blobs:
            f.seek(offset)
            f.write(blob)
        f.seek(at)
        f.write(table)
    return path


def many_threads_core(path: Path, threads: int = 150_000) -> Path:
    """One PT_NOTE holding ``threads`` NT_PRSTATUS notes (~50 MB, all real data)."""
    spec = simple_spec(1)
    spec.extra_notes = note(b"CORE", 1, prstatus(7, 0x7F0000003000, 0x400100)) * threads
    path.write_bytes(build_core(spec))
    return path


def nt_file_flood_core(path: Path, entries: int = 1_200_000) -> Path:
    """An NT_FILE that claims (and holds) ``entries`` mappings of one path: ~30 MB of notes."""
    spec = simple_spec(1)
    triples = b"".join(struct.pack("<QQQ", 0x500000 + i * 4096, 0x501000 + i * 4096, 0)
                       for i in range(entries))
    desc = struct.pack("<QQ", entries, 4096) + triples + b"/x\0" * entries
    spec.extra_notes = note(b"CORE", 0x46494C45, desc)
    path.write_bytes(build_core(spec))
    return path


def run_cli(core: Path) -> dict[str, object]:
    res = subprocess.run([sys.executable, "-c", WRAPPER, str(ADDRESS_SPACE), sys.executable,
                          "-m", "collectors.cli", "backtrace", str(core)],
                         capture_output=True, text=True, timeout=300, check=True, cwd="/")
    out: dict[str, object] = json.loads(res.stdout)
    return out


CASES: dict[str, tuple[Callable[[Path], Path], int, str]] = {
    # name: (build, exit status, what stderr says)
    "3-overlapping": (lambda p: hostile_core(p, simple_spec(2), 3), 0,
                      "overlap the notes before them"),
    "1000-overlapping": (lambda p: hostile_core(p, simple_spec(2), 1000), 0,
                         "overlap the notes before them"),
    "3-overlapping-no-threads": (lambda p: hostile_core(p, CoreSpec(), 3), 2, "no NT_PRSTATUS"),
    "3-disjoint": (lambda p: hostile_core(p, simple_spec(2), 3, disjoint=True), 0,
                   "bytes in all are not read"),
    "150000-threads": (many_threads_core, 0, "threads; only the first are unwound"),
    "nt-file-flood": (nt_file_flood_core, 0, "only the first"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_note_floods_are_bounded(tmp_path: Path, case: str) -> None:
    build, status, said = CASES[case]
    core = build(tmp_path / "core")
    got = run_cli(core)
    err = str(got["stderr"])
    assert got["rc"] == status, err[-2000:]
    assert said in err, err[-2000:]
    assert "Traceback" not in err
    if status:
        assert len(err.strip().splitlines()) == 1           # one line, as any bad input
    assert float(str(got["seconds"])) < MAX_SECONDS, got["seconds"]
    assert int(str(got["maxrss"])) < MAX_RSS, f"peak RSS {int(str(got['maxrss'])) >> 20} MiB"


def test_the_core_is_sparse(tmp_path: Path) -> None:
    """The hostile input is small on disk (it costs its maker nothing to send)."""
    core = hostile_core(tmp_path / "core", simple_spec(2), 3)
    st = os.stat(core)
    assert st.st_size > 60 << 20 and st.st_blocks * 512 < 1 << 20
