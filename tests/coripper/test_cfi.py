"""coripper.unwinder.cfi: our lazy .eh_frame_hdr/.eh_frame decoder against pyelftools' full decoder, the
DWARF expression machine on the x86-64 PLT expression, and hostile bytes."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from elftools.dwarf.callframe import FDE
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from coripper.unwinder.cfi import CfiTable, RuleKind, read_encoded
from coripper.unwinder.dwarfexpr import evaluate
from coripper.unwinder.dwarfread import sleb, uleb
from coripper.errors import CfiError

LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def _our_table(path: Path) -> CfiTable:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        eh, hdr = elf.get_section_by_name(".eh_frame"), elf.get_section_by_name(".eh_frame_hdr")
        return CfiTable.from_eh_frame(eh.data(), eh["sh_addr"], hdr.data(), hdr["sh_addr"])


def _pyelftools_fdes(path: Path) -> list[FDE]:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        return [e for e in elf.get_dwarf_info().EH_CFI_entries() if isinstance(e, FDE)]


def _compare_rows(table: CfiTable, fde: FDE) -> int:
    """Every row of pyelftools' decoded table equals ours at that row's pc; returns rows seen."""
    decoded = fde.get_decoded()
    n = 0
    for row in decoded.table:
        ours = table.row_at(row["pc"])
        assert ours is not None, hex(row["pc"])
        cfa = row["cfa"]
        if cfa.expr is not None:
            assert ours.cfa_expr is not None
        else:
            assert (ours.cfa_reg, ours.cfa_offset) == (cfa.reg, cfa.offset), hex(row["pc"])
        for reg in decoded.reg_order:
            rule = row.get(reg)
            if rule is None or rule.type == "SAME_VALUE":
                assert reg not in ours.rules or ours.rules[reg].kind is RuleKind.SAME
                continue
            kind = RuleKind[rule.type]          # pyelftools' names are ours, but SAME_VALUE
            assert ours.rules[reg].kind is kind, (hex(row["pc"]), reg)
            if kind in (RuleKind.OFFSET, RuleKind.VAL_OFFSET, RuleKind.REGISTER):
                assert ours.rules[reg].arg == rule.arg
            else:
                assert kind is RuleKind.UNDEFINED or ours.rules[reg].arg == bytes(rule.arg)
        n += 1
    return n


def test_every_fde_of_a_program_matches_pyelftools(programs) -> None:  # type: ignore[no-untyped-def]
    exe = programs.crasher()
    table = _our_table(exe)
    fdes = _pyelftools_fdes(exe)
    assert len(table) == len(fdes) > 5
    rows = 0
    for fde in fdes:
        start, size = fde.header["initial_location"], fde.header["address_range"]
        ours = table.find_fde(start)
        assert ours is not None and (ours.pc_begin, ours.pc_end) == (start, start + size)
        assert table.find_fde(start + size) is None or table.find_fde(start + size).pc_begin == start + size
        rows += _compare_rows(table, fde)
    assert rows > len(fdes)


@pytest.mark.skipif(not LIBC.exists(), reason="needs the system libc")
def test_sampled_libc_fdes_match_pyelftools() -> None:
    table = _our_table(LIBC)
    fdes = _pyelftools_fdes(LIBC)
    assert len(table) == len(fdes)
    rng = random.Random(1234)
    for fde in rng.sample(fdes, 150):
        start, size = fde.header["initial_location"], fde.header["address_range"]
        got = table.find_fde(start + size - 1)
        assert got is not None and (got.pc_begin, got.pc_end) == (start, start + size)
        _compare_rows(table, fde)


def test_plt_cfa_expression(programs) -> None:  # type: ignore[no-untyped-def]
    """The x86-64 .plt FDE's CFA expression: rsp + 8, plus 8 once past the push in each
    16-byte PLT entry (offset & 15 >= 11), as the psABI's lazy binding stubs need."""
    exe = programs.crasher()
    with open(exe, "rb") as f:
        plt = ELFFile(f).get_section_by_name(".plt")
        plt_addr, plt_size = plt["sh_addr"], plt["sh_size"]
    table = _our_table(exe)
    pc = plt_addr + 16 + 11                 # second entry, after its push
    row = table.row_at(pc)
    assert row is not None and row.cfa_expr is not None
    regs = {7: 0x7FFC0000_1000, 16: pc}
    for rip in range(plt_addr + 16, min(plt_addr + plt_size, plt_addr + 48)):
        regs[16] = rip
        want = regs[7] + 8 + (8 if (rip & 15) >= 11 else 0)
        assert evaluate(row.cfa_expr, regs.get, lambda a, n: None) == want


def test_leb128_examples_from_the_dwarf_spec() -> None:
    # DWARF 5, section 7.6, figures 22 and 23.
    for value, raw in [(2, b"\x02"), (127, b"\x7f"), (128, b"\x80\x01"), (129, b"\x81\x01"),
                       (130, b"\x82\x01"), (12857, b"\xb9\x64")]:
        assert uleb(raw, 0) == (value, len(raw))
    for value, raw in [(2, b"\x02"), (-2, b"\x7e"), (127, b"\xff\x00"), (-127, b"\x81\x7f"),
                       (128, b"\x80\x01"), (-128, b"\x80\x7f"), (129, b"\x81\x01"),
                       (-129, b"\xff\x7e")]:
        assert sleb(raw, 0) == (value, len(raw))
    with pytest.raises(CfiError):
        uleb(b"\x80\x80", 0)


def test_pcrel_sdata4_pointer() -> None:
    # DW_EH_PE_pcrel|sdata4 at offset 4 of a section at 0x1000: value + address of the field.
    data = b"\0\0\0\0" + (-0x10).to_bytes(4, "little", signed=True)
    assert read_encoded(data, 4, 0x1B, section_addr=0x1000) == (0x1000 + 4 - 0x10, 8)


@settings(max_examples=300, deadline=None)
@given(eh=st.binary(max_size=512), hdr=st.one_of(st.none(), st.binary(max_size=64)),
       pcs=st.lists(st.integers(0, 2**64 - 1), max_size=5))
def test_garbage_cfi_never_hangs_or_escapes(eh: bytes, hdr: bytes | None, pcs: list[int]) -> None:
    try:
        table = CfiTable.from_eh_frame(eh, 0x1000, hdr, 0x800)
    except CfiError:
        return
    for pc in pcs + [0x1000, 0x1010]:
        try:
            table.row_at(pc)
        except CfiError:
            pass


@settings(max_examples=300, deadline=None)
@given(expr=st.binary(max_size=64), push=st.one_of(st.none(), st.integers(0, 2**64 - 1)))
def test_garbage_expressions_never_hang(expr: bytes, push: int | None) -> None:
    try:
        evaluate(expr, lambda n: n * 8, lambda a, n: bytes(n) if a < 1 << 20 else None, push)
    except CfiError:
        pass


def test_readelf_agrees_on_fde_count(programs) -> None:  # type: ignore[no-untyped-def]
    """An independent count: readelf's .eh_frame_hdr table size equals our index size."""
    exe = programs.crasher()
    out = subprocess.run(["readelf", "--debug-dump=frames", str(exe)], capture_output=True,
                         text=True, check=True).stdout
    fdes = sum(1 for line in out.splitlines() if " FDE cie=" in line)
    assert fdes == len(_our_table(exe))
