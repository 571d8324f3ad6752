"""Fuzz coripper.unwinder.cfi: ``.eh_frame`` (+ ``.eh_frame_hdr``), ``.debug_frame`` and DWARF expressions.

Input layout (so that real sections make good seeds)::

    byte 0        mode: 0 .eh_frame with .eh_frame_hdr, 1 .eh_frame alone, 2 .debug_frame,
                  3 a DWARF expression alone
    bytes 1..4    length H of the .eh_frame_hdr part (little-endian u32, clamped)
    bytes 5..12   link-time address of .eh_frame
    bytes 13..20  link-time address of .eh_frame_hdr
    then          H bytes of .eh_frame_hdr, the rest is the section (or the expression)

Contract checked (coripper/unwinder/cfi.py module docstring; coripper/unwinder/unwind.py and modules.py catch
exactly ``CfiError`` around these calls):

* building a ``CfiTable`` (``from_eh_frame``, ``from_debug_frame``) raises nothing: a bad
  ``.eh_frame_hdr`` falls back to a scan, a bad entry ends the scan;
* ``find_fde``, ``row_at`` and ``evaluate`` raise only ``CfiError``;
* a row's expressions evaluate to a 64-bit value or raise ``CfiError``;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: the CFI sections of tests/programs/crasher.c built with and without unwind tables
(``.debug_frame``) and of small ELF files of the host, and expressions found in them.

Run: ``python3 fuzz/fuzz_cfi.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["coripper"]):
    from coripper.unwinder import cfi, dwarfexpr  # noqa: E402

TARGET = "cfi"
HEAD = struct.Struct("<BIQQ")
MAX_QUERIES = 12


def frame(mode: int, hdr: bytes, eh_addr: int, hdr_addr: int, body: bytes) -> bytes:
    """Encode one harness input."""
    return HEAD.pack(mode, len(hdr), eh_addr, hdr_addr) + hdr + body


def read_reg(n: int) -> int | None:
    """Registers of a fake frame: a few known, the rest unknown."""
    return 0x7FFF0000 + 8 * n if n < 17 else None


def make_read_mem(data: bytes) -> Callable[[int, int], bytes | None]:
    """Memory of a fake process: the input itself mapped at 0x7FFF0000."""
    def read_mem(addr: int, size: int) -> bytes | None:
        off = addr - 0x7FFF0000
        if 0 <= off and off + size <= len(data):
            return data[off:off + size]
        return None
    return read_mem


def evaluate(expr: bytes, data: bytes, push: int | None) -> None:
    """Evaluate ``expr``; only ``CfiError`` may come out, a value must fit in 64 bits."""
    try:
        value = dwarfexpr.evaluate(expr, read_reg, make_read_mem(data), push)
    except cfi.CfiError as exc:
        assert str(exc)
        return
    assert 0 <= value < 1 << 64, value


def query(table: cfi.CfiTable, data: bytes) -> None:
    """Look up rows at the indexed starts (and just after), evaluating their expressions."""
    starts = table._starts[:MAX_QUERIES]
    for pc in [*starts, *(s + 3 for s in starts), 0, (1 << 64) - 1]:
        try:
            table.find_fde(pc)
            row = table.row_at(pc)
        except cfi.CfiError as exc:
            assert str(exc)
            continue
        if row is None:
            continue
        if row.cfa_expr is not None:
            evaluate(row.cfa_expr, data, None)
        for rule in list(row.rules.values())[:8]:
            if isinstance(rule.arg, bytes):
                evaluate(rule.arg, data, 0x7FFF0100)


def test_one(data: bytes) -> None:
    """One fuzz input."""
    if len(data) < HEAD.size:
        evaluate(data, data, None)
        return
    mode, hdr_len, eh_addr, hdr_addr = HEAD.unpack_from(data)
    rest = data[HEAD.size:]
    hdr, body = rest[:hdr_len], rest[hdr_len:]
    mode %= 4
    if mode == 0:
        table = cfi.CfiTable.from_eh_frame(body, eh_addr, hdr, hdr_addr)
    elif mode == 1:
        table = cfi.CfiTable.from_eh_frame(rest, eh_addr)
    elif mode == 2:
        table = cfi.CfiTable.from_debug_frame(rest)
    else:
        evaluate(rest, data, None)
        evaluate(rest, data, 0x7FFF0000)
        return
    assert len(table) >= 0
    query(table, data)


def _sections(path: Path) -> dict[str, tuple[int, bytes]]:
    from elftools.elf.elffile import ELFFile

    out = {}
    with path.open("rb") as f:
        elf = ELFFile(f)
        for name in (".eh_frame", ".eh_frame_hdr", ".debug_frame"):
            sec = elf.get_section_by_name(name)
            if sec is not None and sec["sh_type"] != "SHT_NOBITS":
                out[name] = (sec["sh_addr"], sec.data())
    return out


def seeds() -> Iterator[bytes]:
    """CFI of crasher.c (with .eh_frame_hdr, and -fno-asynchronous-unwind-tables for
    .debug_frame) and of small host ELF files."""
    files = [p for p in (_common.build_program("crasher-pie", ["-g", "-O1", "-fPIE", "-pie"]),
                         _common.build_program("crasher-debugframe",
                                               ["-g", "-O2", "-fno-asynchronous-unwind-tables"]))
             if p is not None]
    files += _common.host_elf_files(6)
    for path in files:
        try:
            secs = _sections(path)
        except Exception:  # noqa: BLE001 - a host file pyelftools cannot read is no seed
            continue
        if ".eh_frame" in secs:
            eh_addr, eh = secs[".eh_frame"]
            if ".eh_frame_hdr" in secs and len(eh) <= 64 << 10:
                hdr_addr, hdr = secs[".eh_frame_hdr"]
                yield frame(0, hdr, eh_addr, hdr_addr, eh)
            yield frame(1, b"", eh_addr, 0, eh[:8192])
        if ".debug_frame" in secs:
            yield frame(2, b"", 0, 0, secs[".debug_frame"][1][:8192])
        for sec_name in (".eh_frame", ".debug_frame"):
            if sec_name not in secs:
                continue
            addr, sec = secs[sec_name]
            table = (cfi.CfiTable.from_eh_frame(sec, addr) if sec_name == ".eh_frame"
                     else cfi.CfiTable.from_debug_frame(sec))
            for start in table._starts[:5000]:
                row = table.row_at(start + 8)
                exprs = [] if row is None else [row.cfa_expr, *(r.arg for r in row.rules.values())]
                for expr in exprs:
                    if isinstance(expr, bytes):
                        yield frame(3, b"", 0, 0, expr)


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
