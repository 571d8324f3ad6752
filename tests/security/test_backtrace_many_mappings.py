"""Issue 15 §2, the unwinder's side: a file mapped tens of thousands of times.

Any user can map one file 65,530 times (Linux's default ``vm.max_map_count``) and crash: every
mapping at file offset 0 starts with an ELF header in the core, each a candidate copy of a
loaded module. The old module mapper compared every candidate with every mapping of the file
(quadratic: hours for 60,000). Built here as a small core: 60,000 PT_LOADs sharing one header
page whose PT_LOAD claims a 1 GiB span (so that every later mapping falls inside every
candidate's span), the NT_FILE naming one path 60,000 times, and forged overlapping copies of
those entries; ``crashkit backtrace`` must finish within seconds under 256 MiB.
"""

from __future__ import annotations

import struct
from pathlib import Path

# (it puts tests/coripper, where elfwriter lives, on sys.path)
from test_backtrace_overlapping_notes import MAX_RSS, MAX_SECONDS, run_cli

from elfwriter import build_core, simple_spec  # noqa: I001 - after the line above

COPIES = 60_000
FIRST = 0x10000000


def _module_page() -> bytes:
    """An ELF header page whose one PT_LOAD maps offset 0 over 1 GiB."""
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 3, 62, 1, 0, 64,
                       0, 0, 64, 56, 1, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, 0x1000, 1 << 30, 0x1000)
    return (ehdr + load).ljust(4096, b"\0")


def many_mappings_core(path: Path, copies: int = COPIES) -> Path:
    spec = simple_spec(1)
    spec.files = [(FIRST + i * 0x1000, FIRST + (i + 1) * 0x1000, 0, "/x") for i in range(copies)]
    spec.files += [(FIRST, FIRST + 0x1000, 0, "/x")] * 1000        # forged: all overlap
    base = build_core(spec)
    phnum = struct.unpack_from("<H", base, 56)[0]
    table = base[64:64 + 56 * phnum]
    page_at = (len(base) + 4095) & ~4095
    loads = b"".join(struct.pack("<IIQQQQQQ", 1, 4, page_at, FIRST + i * 0x1000, 0, 0x1000,
                                 0x1000, 0x1000) for i in range(copies))
    table_at = page_at + 4096
    ehdr = bytearray(base[:64])
    struct.pack_into("<Q", ehdr, 32, table_at)
    struct.pack_into("<H", ehdr, 56, phnum + copies)
    path.write_bytes(bytes(ehdr) + base[64:] + bytes(page_at - len(base)) + _module_page()
                     + table + loads)
    return path


def test_one_file_mapped_60000_times(tmp_path: Path) -> None:
    got = run_cli(many_mappings_core(tmp_path / "core"))
    assert got["rc"] == 0, str(got["stderr"])[-2000:]
    assert float(str(got["seconds"])) < MAX_SECONDS, got["seconds"]
    assert int(str(got["maxrss"])) < MAX_RSS
