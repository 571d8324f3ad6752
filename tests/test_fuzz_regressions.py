"""Inputs found while fuzzing with the atheris harnesses of fuzz/, replayed against the parsers.

Each test names the harness and the contract it broke; every one failed (or hung) before its
fix.
"""

from __future__ import annotations

import io
import resource
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.oops.parse import scan_text
from collectors.oops.sources.kmsg_records import kmsg_lines, parse_kmsg_record
from collectors.oops.sources.pstore_records import MAX_RECORD_BYTES, inflate_pstore
from coripper.unwinder.inline import DwarfIndex, parse_aranges
from reporter.elements import iso_date, parse_iso_date
from reporter.reported_to import format_result, parse_line

# Stack-dump lines of real oopses with one stray character at the end (a '.', an invalid
# UTF-8 byte read as U+FFFD): parse.py's hex-dump regex backtracked exponentially on them
# (37 s and 90 s for one line; fuzz_oops_parse.py, then fuzz_kmsg_records.py).
SLOW_DUMP_LINES = [
    "00000000 f0a0cf68 c049b1c0 00000000 00006458 f097ac00 f097ac00 00000000.",
    " ffff88008015bb00 ffffffff8162fdda ffffffff00000010 ff\ufffdf88008015bb10",
    " " + " ".join(["ffffffff8162fdda"] * 12) + "\x00",
    "<" + "0" * 40 + ">.",
]


@pytest.mark.parametrize("data", [
    struct.pack("<IH", 4, 2) + b"\0\0",          # unit_length 4: set ends before address_size
    struct.pack("<IH", 5, 2) + b"\0\0\0",
    struct.pack("<I", 0xFFFFFFFF) + struct.pack("<QH", 8, 2) + bytes(6),   # 64-bit DWARF form
    # What fuzz_aranges.py found: a valid 44-byte set, then a set of unit_length 4.
    b',\x00\x00\x00\x02\x00\x00\x00\x00\x00\x04\x00\x00\x00\xaf\x00\x00\x00\x04\x00\x00&\x00\xe7\x00\x00\x04\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x02\x00\x00\x04\x00&\x00\xe7\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00 ',
])
def test_aranges_set_shorter_than_its_header(data: bytes) -> None:
    """fuzz_aranges: "stops quietly at the first malformed set", never an exception."""
    starts, ends = parse_aranges(data)
    assert len(starts) == len(ends)


@pytest.mark.slow
def test_pstore_decompression_bomb_is_bounded() -> None:
    """fuzz_pstore_records: a 256 MiB run of zeros deflates to ~250 KiB, well inside the 16 MiB
    a pstore file is read up to; inflating it must stop at MAX_RECORD_BYTES."""
    for wbits in (12, -15):
        c = zlib.compressobj(9, zlib.DEFLATED, wbits)
        chunk = bytes(1 << 20)
        bomb = b"".join(c.compress(chunk) for _ in range(256)) + c.flush()
        assert len(bomb) < MAX_RECORD_BYTES
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = inflate_pstore(bomb)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        assert len(out) == MAX_RECORD_BYTES
        assert out == bytes(MAX_RECORD_BYTES)
        assert grown < 64 << 10, f"max RSS grew by {grown} KiB"   # ru_maxrss is in KiB


@pytest.mark.parametrize("line", SLOW_DUMP_LINES)
def test_hex_dump_line_with_a_stray_character_is_fast(line: str) -> None:
    """fuzz_oops_parse: a report whose stack dump line ends in garbage parses in linear time."""
    text = ("Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled\n"
            "CPU: 0 PID: 35943 Comm: webservice Not tainted 3.10.0-327.28.2.el7.x86_64 #1\n"
            f"{line}\nCall Trace:\n [<ffffffff8163654b>] dump_stack+0x19/0x1b\n")
    start = time.monotonic()
    reports = scan_text(text)
    assert time.monotonic() - start < 1.0
    assert [(r.kind, r.start_line) for r in reports] == [("panic", 1)]
    assert reports[0].frames[0].function == "dump_stack"


def test_hex_dump_lines_still_continue_a_report() -> None:
    """The linear regex accepts what the old one did: dump words, <..>/(..) marks, long runs."""
    dump = [" ffff88008015bb00 ffffffff8162fdda ffffffff00000010",
            " 0123456789abcdef0123456789abcdef (ab) cd<ef>",
            " ffffffff81875018 0000000079c9dd5c   "]
    text = "Kernel panic - not syncing: x\n" + "\n".join(dump) + "\nCall Trace:\n [<ffffffff8163654b>] f+0x1/0x2\n"
    (report,) = scan_text(text)
    assert report.end_line == 6
    assert report.frames[0].function == "f"


def test_kmsg_record_with_a_slow_dump_line() -> None:
    """fuzz_kmsg_records: the same hex-dump regex, reached through a /dev/kmsg record."""
    record = ("2,474,1446000,-;Kernel panic - not syncing: x\\x0a"
              + SLOW_DUMP_LINES[0].replace(" ", "\\x20") + "\\x0a\n SUBSYSTEM=x\n").encode()
    rec = parse_kmsg_record(record)
    assert rec is not None
    lines = kmsg_lines(rec)
    assert len(lines) == 2
    start = time.monotonic()
    reports = scan_text("\n".join(lines))
    assert time.monotonic() - start < 1.0
    assert [r.kind for r in reports] == ["panic"]


def test_reported_to_time_before_year_1000_round_trips() -> None:
    """fuzz_reported_to: ``TIME=0377-01-02-03:04:05`` parsed to a time whose ISO date glibc
    writes as ``377-...`` (3 digits), which parse_iso_date refused: the TIME was lost."""
    result = parse_line("uReport: TIME=0377-01-02-03:04:05")
    assert result is not None and result.time is not None
    line = format_result(result)
    assert line == "uReport: TIME=0377-01-02-03:04:05"
    assert parse_line(line) == result
    assert parse_iso_date(iso_date(result.time)) == result.time


class _Hang(BaseException):
    """Raised by SIGALRM; a BaseException so that inline.py's ``except Exception`` cannot hide it."""


@pytest.fixture
def alarm() -> Iterator[None]:
    """Turn a call that runs past 5 seconds into :class:`_Hang`."""
    def fire(signum: int, frame: object) -> None:
        raise _Hang

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(5)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build tests/programs/crasher.c")
def test_dwarf_sibling_pointing_backwards_does_not_hang(tmp_path: Path, alarm: None) -> None:
    """fuzz_inline_dwarf: crasher.c with DWARF whose second top-level DIE's DW_AT_sibling is
    turned to point at the first one: the CU's children then form a cycle."""
    from elftools.elf.elffile import ELFFile

    exe = tmp_path / "crasher"
    src = Path(__file__).resolve().parent / "programs" / "crasher.c"
    subprocess.run(["gcc", "-g", "-O0", "-gdwarf-4", "-pthread", str(src), "-o", str(exe)], check=True)
    data = bytearray(exe.read_bytes())
    elf = ELFFile(io.BytesIO(bytes(data)))
    info_off = elf.get_section_by_name(".debug_info")["sh_offset"]
    cu = next(elf.get_dwarf_info(relocate_dwarf_sections=False).iter_CUs())
    kids = list(cu.get_top_DIE().iter_children())
    sib = next((k.attributes["DW_AT_sibling"] for k in kids[1:] if "DW_AT_sibling" in k.attributes
                and k.attributes["DW_AT_sibling"].form == "DW_FORM_ref4"), None)
    if sib is None:
        pytest.skip("gcc wrote no DW_FORM_ref4 DW_AT_sibling")
    struct.pack_into("<I", data, info_off + sib.offset, kids[0].offset - cu.cu_offset)
    last = [k for k in kids if k.tag == "DW_TAG_subprogram" and "DW_AT_low_pc" in k.attributes][-1]
    pc = last.attributes["DW_AT_low_pc"].value
    dwarf = ELFFile(io.BytesIO(bytes(data))).get_dwarf_info(relocate_dwarf_sections=False, follow_links=False)
    index = DwarfIndex(dwarf)
    start = time.monotonic()
    index.function_name(pc)
    index.inline_chain(pc)
    assert time.monotonic() - start < 5
