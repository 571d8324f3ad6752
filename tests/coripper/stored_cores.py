"""The checked-in cores of tests/programs/cores/: real kernel cores of static test programs, with
their programs and gdb's frames (drgn's way: tests that need no root, no kernel and no gdb).

Rebuilt by ``make -C tests/programs`` (tests/programs/Makefile, make_core.py). Each core is
decompressed on first use into the session's temporary directory, so the suite also runs from
a read-only checkout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard

STORED = Path(__file__).resolve().parents[1] / "programs" / "cores"
#: Name of each stored core -> its program.
PROGRAM_OF = {"static-segv-threads": "crasher-static", "static-abort": "crasher-static",
              "static-inline": "inline_crash-static", "static-tail": "inline_crash-static"}
INLINE_FRAME, TAILCALL_FRAME = 2, 3


@dataclass(frozen=True)
class StoredCore:
    """One checked-in core, decompressed: the core, its program, and what gdb showed."""

    name: str
    core: Path
    program: Path
    argv: tuple[str, ...]                        # argv[0]: the path the core names
    gdb: dict[int, list[tuple[int, int, str | None]]]   # tid -> (frame type, pc, name)
    gdb_tids: tuple[int, ...]                    # in gdb's order: the crash thread first


def _decompress(src: Path, dst: Path) -> Path:
    if not dst.exists():
        tmp = dst.with_suffix(".tmp")
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            zstandard.ZstdDecompressor().copy_stream(fin, fout)
        tmp.rename(dst)
    return dst


def _gdb_frames(path: Path) -> tuple[dict[int, list[tuple[int, int, str | None]]], tuple[int, ...]]:
    threads: dict[int, list[tuple[int, int, str | None]]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("CRASHKIT-THREAD "):
            doc = json.loads(line[len("CRASHKIT-THREAD "):])
            threads[doc["tid"]] = [(t, pc, name) for t, pc, name in doc["frames"]]
    return threads, tuple(threads)


class StoredCores:
    """Decompresses the stored cores into ``root`` on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, name: str) -> StoredCore:
        """The stored core ``name`` (a key of :data:`PROGRAM_OF`)."""
        program = PROGRAM_OF[name]
        core = _decompress(STORED / f"{name}.core.zst", self.root / f"{name}.core")
        exe = _decompress(STORED / f"{program}.zst", self.root / program)
        argv = tuple((STORED / f"{name}.argv").read_text().splitlines())
        gdb, tids = _gdb_frames(STORED / f"{name}.gdb")
        return StoredCore(name, core, exe, argv, gdb, tids)


@pytest.fixture(scope="session")
def stored_cores(tmp_path_factory: pytest.TempPathFactory) -> StoredCores:
    """The checked-in cores (no root needed)."""
    return StoredCores(tmp_path_factory.mktemp("stored-cores"))
