"""DWARF call frame information (``.eh_frame`` / ``.debug_frame``): find the FDE of a pc, run it.

A small decoder of our own, lazy on purpose: with ``.eh_frame_hdr`` only its binary search
table is read up front (DWARF 4 / LSB "Exception Frames": a sorted table of
(initial_location, FDE address)) and only the FDE a lookup needs is decoded. Without a header
(``.debug_frame``, or ``.eh_frame`` alone) every FDE's range is indexed once. All addresses are
link-time addresses of the ELF object; the caller subtracts the load bias.

Garbage input never raises out of :meth:`CfiTable.row_at` other than :class:`CfiError`, and
every loop is bounded by the input size.
"""

from __future__ import annotations

import bisect
import enum
import struct
from dataclasses import dataclass, field

from elftools.dwarf import constants as _dwarf

from coripper.unwinder.dwarfread import MASK64, sleb, uleb, unpack
from coripper.errors import CfiError

__all__ = ["CfiError", "CfiTable", "Cie", "Fde", "FrameSection", "Row", "Rule", "RuleKind",
           "execute", "read_encoded"]

# Pointer encodings (LSB "DWARF Extensions", DW_EH_PE_*).
PE_OMIT = 0xFF
PE_ABSPTR, PE_ULEB128, PE_UDATA2, PE_UDATA4, PE_UDATA8 = 0x00, 0x01, 0x02, 0x03, 0x04
PE_SLEB128, PE_SDATA2, PE_SDATA4, PE_SDATA8 = 0x09, 0x0A, 0x0B, 0x0C
PE_PCREL, PE_TEXTREL, PE_DATAREL, PE_FUNCREL, PE_ALIGNED, PE_INDIRECT = 0x10, 0x20, 0x30, 0x40, 0x50, 0x80

MAX_CFA_OPS = 100_000
MAX_REMEMBERED = 64


def _cfa(name: str) -> int:
    # pyelftools' module-level DW_CFA_* names (every version has them; 0.33 adds them at run
    # time from its DW_CFA enum, which type checkers do not see)
    return int(getattr(_dwarf, "DW_CFA_" + name))


# Primary opcodes: the high two bits, with an operand in the low six.
DW_CFA_advance_loc = _cfa("advance_loc")
DW_CFA_offset = _cfa("offset")
DW_CFA_restore = _cfa("restore")
# Extended opcodes.
DW_CFA_nop = _cfa("nop")
DW_CFA_set_loc = _cfa("set_loc")
DW_CFA_advance_loc1 = _cfa("advance_loc1")
DW_CFA_advance_loc2 = _cfa("advance_loc2")
DW_CFA_advance_loc4 = _cfa("advance_loc4")
DW_CFA_offset_extended = _cfa("offset_extended")
DW_CFA_restore_extended = _cfa("restore_extended")
DW_CFA_undefined = _cfa("undefined")
DW_CFA_same_value = _cfa("same_value")
DW_CFA_register = _cfa("register")
DW_CFA_remember_state = _cfa("remember_state")
DW_CFA_restore_state = _cfa("restore_state")
DW_CFA_def_cfa = _cfa("def_cfa")
DW_CFA_def_cfa_register = _cfa("def_cfa_register")
DW_CFA_def_cfa_offset = _cfa("def_cfa_offset")
DW_CFA_def_cfa_expression = _cfa("def_cfa_expression")
DW_CFA_expression = _cfa("expression")
DW_CFA_offset_extended_sf = _cfa("offset_extended_sf")
DW_CFA_def_cfa_sf = _cfa("def_cfa_sf")
DW_CFA_def_cfa_offset_sf = _cfa("def_cfa_offset_sf")
DW_CFA_val_offset = _cfa("val_offset")
DW_CFA_val_offset_sf = _cfa("val_offset_sf")
DW_CFA_val_expression = _cfa("val_expression")
DW_CFA_GNU_window_save = _cfa("GNU_window_save")      # = DW_CFA_AARCH64_negate_ra_state
DW_CFA_GNU_args_size = _cfa("GNU_args_size")
DW_CFA_GNU_negative_offset_extended = 0x2F            # old GCC (binutils' dwarf2.def); not in pyelftools

_PRIMARY_MASK, _OPERAND_MASK = 0xC0, 0x3F
_ADVANCE_FORMATS = {DW_CFA_advance_loc1: "<B", DW_CFA_advance_loc2: "<H", DW_CFA_advance_loc4: "<I"}


# Fixed-size DW_EH_PE value formats (low nibble of the encoding) and their struct codes.
_PE_STRUCT = {PE_ABSPTR: "<Q", PE_UDATA8: "<Q", PE_UDATA4: "<I", PE_UDATA2: "<H",
              PE_SDATA8: "<q", PE_SDATA4: "<i", PE_SDATA2: "<h"}


def read_encoded(data: bytes, pos: int, enc: int, *, section_addr: int = 0, data_base: int = 0,
                 func_base: int = 0) -> tuple[int, int]:
    """Decode a DW_EH_PE-encoded pointer at ``pos`` of a section mapped at ``section_addr``."""
    if enc == PE_OMIT:
        return 0, pos
    start = pos
    fmt = enc & 0x0F
    if fmt in _PE_STRUCT:
        value, pos = unpack(_PE_STRUCT[fmt], data, pos)
    elif fmt == PE_ULEB128:
        value, pos = uleb(data, pos)
    elif fmt == PE_SLEB128:
        value, pos = sleb(data, pos)
    else:
        raise CfiError(f"unknown pointer encoding {enc:#x}")
    app = enc & 0x70
    if app == PE_PCREL:
        value += section_addr + start
    elif app == PE_DATAREL:
        value += data_base
    elif app == PE_FUNCREL:
        value += func_base
    elif app not in (0, PE_TEXTREL):
        raise CfiError(f"unsupported pointer application {enc:#x}")
    # PE_INDIRECT would need process memory; the pointers we decode (FDE ranges) never use it.
    return value & MASK64, pos


# --- register rules ---------------------------------------------------------------------

class RuleKind(enum.StrEnum):
    """How a register is recovered in the caller (DWARF 5 §6.4.1, "register rules")."""

    UNDEFINED = "undefined"              # not recoverable (the return address: outermost frame)
    SAME = "same"                        # unchanged
    OFFSET = "offset"                    # saved at CFA + arg
    VAL_OFFSET = "val_offset"            # is CFA + arg
    REGISTER = "register"                # in register arg
    EXPRESSION = "expression"            # saved at the address DWARF expression arg computes
    VAL_EXPRESSION = "val_expression"    # is the value DWARF expression arg computes


@dataclass(frozen=True)
class Rule:
    """How to recover one register in the caller: ``arg`` is an offset or a register number,
    or the DWARF expression of the two expression kinds."""

    kind: RuleKind
    arg: int | bytes = 0


@dataclass(frozen=True)
class Row:
    """The unwind rules in effect at one pc."""

    cfa_reg: int | None          # None when the CFA is an expression
    cfa_offset: int
    cfa_expr: bytes | None
    rules: dict[int, Rule]
    ra_reg: int
    signal_frame: bool


@dataclass
class Cie:
    code_align: int
    data_align: int
    ra_reg: int
    fde_enc: int
    signal_frame: bool
    has_aug_data: bool
    instructions: bytes
    address_size: int = 8


@dataclass
class Fde:
    cie: Cie
    pc_begin: int
    pc_end: int
    instructions: bytes


@dataclass
class _State:
    cfa_reg: int | None = None
    cfa_offset: int = 0
    cfa_expr: bytes | None = None
    rules: dict[int, Rule] = field(default_factory=dict)

    def copy(self) -> _State:
        return _State(self.cfa_reg, self.cfa_offset, self.cfa_expr, dict(self.rules))


def execute(cie: Cie, instructions: bytes, start_loc: int, target: int,
            initial: _State | None = None) -> _State:
    """Run CFA ``instructions`` from ``start_loc`` until the row covering ``target`` is built
    (``initial``: the CIE's row, which ``DW_CFA_restore`` goes back to)."""
    program = _Program(cie, instructions, initial)
    loc = start_loc
    ops = 0
    while program.pos < len(instructions):
        ops += 1
        if ops > MAX_CFA_OPS:
            raise CfiError("too many CFA instructions")
        advanced = program.step(loc)
        if advanced is not None:
            loc = advanced
            if loc > target:
                break
    return program.state


class _Program:
    """One run of CFA instructions: the row being built, the remembered rows, the position."""

    def __init__(self, cie: Cie, data: bytes, initial: _State | None) -> None:
        self.cie = cie
        self.data = data
        self.pos = 0
        self.state = initial.copy() if initial is not None else _State()
        self.init_rules = dict(initial.rules) if initial is not None else {}
        self.remembered: list[_State] = []

    def _uleb(self) -> int:
        v, self.pos = uleb(self.data, self.pos)
        return v

    def _sleb(self) -> int:
        v, self.pos = sleb(self.data, self.pos)
        return v

    def step(self, loc: int) -> int | None:
        """Run the instruction at ``pos``; for an advance (or ``set_loc``) return the new
        location, else None."""
        op = self.data[self.pos]
        self.pos += 1
        primary, low = op & _PRIMARY_MASK, op & _OPERAND_MASK
        if primary == DW_CFA_advance_loc:
            return loc + low * self.cie.code_align
        if primary == DW_CFA_offset:
            self._set(low, RuleKind.OFFSET, self._uleb() * self.cie.data_align)
        elif primary == DW_CFA_restore:
            self._restore(low)
        elif op in _ADVANCE_FORMATS:
            delta, self.pos = unpack(_ADVANCE_FORMATS[op], self.data, self.pos)
            return loc + delta * self.cie.code_align
        elif op == DW_CFA_set_loc:
            new_loc, self.pos = read_encoded(self.data, self.pos, self.cie.fde_enc & 0x0F)
            return new_loc
        elif op in _CFA_DEFINITIONS:
            self._define_cfa(op)
        elif op in (DW_CFA_remember_state, DW_CFA_restore_state):
            self._state_stack(op)
        elif op not in (DW_CFA_nop, DW_CFA_GNU_window_save):
            # GNU_window_save is AArch64's negate_ra_state (pointer authentication): not modelled
            self._register_rule(op)
        return None

    def _set(self, reg: int, kind: RuleKind, arg: int | bytes = 0) -> None:
        self.state.rules[reg] = Rule(kind, arg)

    def _restore(self, reg: int) -> None:
        if reg in self.init_rules:
            self.state.rules[reg] = self.init_rules[reg]
        else:
            self.state.rules.pop(reg, None)

    def _expression(self) -> bytes:
        n = self._uleb()
        if self.pos + n > len(self.data):
            raise CfiError("expression past the end")
        expr = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return expr

    def _define_cfa(self, op: int) -> None:
        """DW_CFA_def_cfa*: the rule for the CFA itself."""
        state, da = self.state, self.cie.data_align
        if op == DW_CFA_def_cfa:
            reg = self._uleb()
            state.cfa_reg, state.cfa_offset, state.cfa_expr = reg, self._uleb(), None
        elif op == DW_CFA_def_cfa_sf:
            reg = self._uleb()
            state.cfa_reg, state.cfa_offset, state.cfa_expr = reg, self._sleb() * da, None
        elif op == DW_CFA_def_cfa_register:
            state.cfa_reg, state.cfa_expr = self._uleb(), None
        elif op == DW_CFA_def_cfa_offset:
            state.cfa_offset = self._uleb()
        elif op == DW_CFA_def_cfa_offset_sf:
            state.cfa_offset = self._sleb() * da
        else:                                               # DW_CFA_def_cfa_expression
            n = self._uleb()
            state.cfa_expr, state.cfa_reg = bytes(self.data[self.pos:self.pos + n]), None
            self.pos += n

    def _state_stack(self, op: int) -> None:
        if op == DW_CFA_remember_state:
            if len(self.remembered) > MAX_REMEMBERED:
                raise CfiError("remember_state stack too deep")
            self.remembered.append(self.state.copy())
            return
        if not self.remembered:
            raise CfiError("restore_state with an empty stack")
        saved = self.remembered.pop()
        state = self.state
        state.cfa_reg, state.cfa_offset, state.cfa_expr = saved.cfa_reg, saved.cfa_offset, saved.cfa_expr
        state.rules = saved.rules

    def _register_rule(self, op: int) -> None:
        """The extended opcodes that set (or restore) one register's rule."""
        da = self.cie.data_align
        if op == DW_CFA_GNU_args_size:
            self._uleb()
            return
        if op not in _REGISTER_RULES:
            raise CfiError(f"unknown CFA opcode {op:#x}")
        reg = self._uleb()
        if op == DW_CFA_offset_extended:
            self._set(reg, RuleKind.OFFSET, self._uleb() * da)
        elif op == DW_CFA_offset_extended_sf:
            self._set(reg, RuleKind.OFFSET, self._sleb() * da)
        elif op == DW_CFA_GNU_negative_offset_extended:
            self._set(reg, RuleKind.OFFSET, -self._uleb() * da)
        elif op == DW_CFA_restore_extended:
            self._restore(reg)
        elif op == DW_CFA_undefined:
            self._set(reg, RuleKind.UNDEFINED)
        elif op == DW_CFA_same_value:
            self._set(reg, RuleKind.SAME)
        elif op == DW_CFA_register:
            self._set(reg, RuleKind.REGISTER, self._uleb())
        elif op == DW_CFA_expression:
            self._set(reg, RuleKind.EXPRESSION, self._expression())
        elif op == DW_CFA_val_expression:
            self._set(reg, RuleKind.VAL_EXPRESSION, self._expression())
        elif op == DW_CFA_val_offset:
            self._set(reg, RuleKind.VAL_OFFSET, self._uleb() * da)
        else:                                               # DW_CFA_val_offset_sf
            self._set(reg, RuleKind.VAL_OFFSET, self._sleb() * da)


_CFA_DEFINITIONS = frozenset({DW_CFA_def_cfa, DW_CFA_def_cfa_sf, DW_CFA_def_cfa_register,
                              DW_CFA_def_cfa_offset, DW_CFA_def_cfa_offset_sf,
                              DW_CFA_def_cfa_expression})
_REGISTER_RULES = frozenset({DW_CFA_offset_extended, DW_CFA_offset_extended_sf,
                             DW_CFA_GNU_negative_offset_extended, DW_CFA_restore_extended,
                             DW_CFA_undefined, DW_CFA_same_value, DW_CFA_register,
                             DW_CFA_expression, DW_CFA_val_expression, DW_CFA_val_offset,
                             DW_CFA_val_offset_sf})


# --- sections -----------------------------------------------------------------------------

class FrameSection:
    """One ``.eh_frame`` or ``.debug_frame`` section: CIE/FDE decoding by offset."""

    def __init__(self, data: bytes, addr: int, *, is_eh: bool) -> None:
        self.data = data
        self.addr = addr
        self.is_eh = is_eh
        self._cies: dict[int, Cie] = {}

    def _entry_header(self, offset: int) -> tuple[int, int, int, bool]:
        """(length of the contents, contents start, end, 64-bit DWARF) of the entry at ``offset``."""
        length, pos = unpack("<I", self.data, offset)
        is64 = False
        if length == 0xFFFFFFFF:
            length, pos = unpack("<Q", self.data, pos)
            is64 = True
        end = pos + length
        if end > len(self.data) or length < 4 and length != 0:
            raise CfiError("CFI entry past the end of the section")
        return length, pos, end, is64

    def entry_kind(self, offset: int) -> tuple[str, int, int]:
        """('cie'|'fde'|'end', id/pointer field value, end offset) of the entry at ``offset``."""
        length, pos, end, is64 = self._entry_header(offset)
        if length == 0:
            return "end", 0, end
        if is64:
            ident, _ = unpack("<Q", self.data, pos)
            is_cie = ident == (0 if self.is_eh else 0xFFFFFFFFFFFFFFFF)
        else:
            ident, _ = unpack("<I", self.data, pos)
            is_cie = ident == (0 if self.is_eh else 0xFFFFFFFF)
        return ("cie" if is_cie else "fde"), ident, end

    def cie(self, offset: int) -> Cie:
        """Decode (and cache) the CIE at ``offset``."""
        if offset in self._cies:
            return self._cies[offset]
        length, pos, end, is64 = self._entry_header(offset)
        if length == 0:
            raise CfiError("CIE pointer to a terminator")
        pos += 8 if is64 else 4
        version, pos = unpack("<B", self.data, pos)
        nul = self.data.find(b"\0", pos, end)
        if nul < 0:
            raise CfiError("unterminated CIE augmentation")
        aug = self.data[pos:nul].decode("latin-1")
        pos = nul + 1
        address_size = 8
        if not self.is_eh and version >= 4:
            address_size, pos = unpack("<B", self.data, pos)
            pos += 1                                       # segment selector size
        if aug.startswith("eh"):
            pos += 8                                       # ancient GCC eh_ptr
        code_align, pos = uleb(self.data, pos)
        data_align, pos = sleb(self.data, pos)
        if version == 1:
            ra_reg, pos = unpack("<B", self.data, pos)
        else:
            ra_reg, pos = uleb(self.data, pos)
        fde_enc = PE_ABSPTR
        signal = False
        has_z = aug.startswith("z")
        if has_z:
            aug_len, pos = uleb(self.data, pos)
            aug_end = pos + aug_len
            for ch in aug[1:]:
                if ch == "R":
                    fde_enc, pos = unpack("<B", self.data, pos)
                elif ch == "L":
                    pos += 1
                elif ch == "P":
                    penc, pos = unpack("<B", self.data, pos)
                    _, pos = read_encoded(self.data, pos, penc & 0x7F, section_addr=self.addr)
                elif ch == "S":
                    signal = True
                elif ch == "B":
                    pass
                else:
                    break                                  # unknown: the rest is skipped via aug_len
            pos = aug_end
        else:
            signal = "S" in aug
        if pos > end:
            raise CfiError("CIE header past its end")
        cie = Cie(code_align, data_align, ra_reg, fde_enc, signal, has_z,
                  bytes(self.data[pos:end]), address_size)
        self._cies[offset] = cie
        return cie

    def fde(self, offset: int) -> Fde:
        """Decode the FDE at ``offset`` (and its CIE)."""
        length, pos, end, is64 = self._entry_header(offset)
        if length == 0:
            raise CfiError("FDE offset points at a terminator")
        idpos = pos
        ident, pos = unpack("<Q" if is64 else "<I", self.data, pos)
        cie_off = idpos - ident if self.is_eh else ident
        if cie_off < 0 or cie_off >= len(self.data) or cie_off == offset:
            raise CfiError("FDE with a bad CIE pointer")
        cie = self.cie(cie_off)
        if self.is_eh:
            begin, pos = read_encoded(self.data, pos, cie.fde_enc, section_addr=self.addr)
            size, pos = read_encoded(self.data, pos, cie.fde_enc & 0x0F)
        else:
            fmt = "<Q" if cie.address_size == 8 else "<I"
            begin, pos = unpack(fmt, self.data, pos)
            size, pos = unpack(fmt, self.data, pos)
        if cie.has_aug_data:
            aug_len, pos = uleb(self.data, pos)
            pos += aug_len
        if pos > end:
            raise CfiError("FDE header past its end")
        return Fde(cie, begin, begin + size, bytes(self.data[pos:end]))

    def scan(self) -> list[tuple[int, int, int]]:
        """Every FDE as (pc_begin, pc_end, offset), sorted; stops at the first malformed entry."""
        out: list[tuple[int, int, int]] = []
        offset = 0
        while offset + 4 <= len(self.data):
            try:
                kind, _, end = self.entry_kind(offset)
                if kind == "end":
                    if self.is_eh:
                        break
                elif kind == "fde":
                    f = self.fde(offset)
                    if f.pc_end > f.pc_begin:
                        out.append((f.pc_begin, f.pc_end, offset))
            except CfiError:
                break
            if end <= offset:
                break
            offset = end
        out.sort()
        return out


class CfiTable:
    """The CFI of one ELF object, looked up by link-time pc."""

    def __init__(self, section: FrameSection, index: list[tuple[int, int]] | None = None) -> None:
        self.section = section
        if index is None:
            entries = section.scan()
            self._starts = [e[0] for e in entries]
            self._offsets = [e[2] for e in entries]
        else:
            self._starts = [e[0] for e in index]
            self._offsets = [e[1] for e in index]
        self._rows: dict[int, Row | None] = {}

    @classmethod
    def from_eh_frame(cls, eh_data: bytes, eh_addr: int, hdr_data: bytes | None = None,
                      hdr_addr: int = 0) -> "CfiTable":
        """CFI from ``.eh_frame``, indexed by ``.eh_frame_hdr``'s table when it is usable."""
        section = FrameSection(eh_data, eh_addr, is_eh=True)
        index = None
        if hdr_data is not None:
            try:
                index = _parse_eh_frame_hdr(hdr_data, hdr_addr, eh_addr)
            except CfiError:
                index = None
        return cls(section, index)

    @classmethod
    def from_debug_frame(cls, data: bytes) -> "CfiTable":
        """CFI from ``.debug_frame`` (indexed by a full scan)."""
        return cls(FrameSection(data, 0, is_eh=False))

    def __len__(self) -> int:
        return len(self._starts)

    def find_fde(self, pc: int) -> Fde | None:
        """The FDE covering ``pc``, or None."""
        i = bisect.bisect_right(self._starts, pc) - 1
        if i < 0:
            return None
        fde = self.section.fde(self._offsets[i])
        if fde.pc_begin <= pc < fde.pc_end:
            return fde
        return None

    def row_at(self, pc: int) -> Row | None:
        """The unwind row for ``pc`` (cached), or None when no FDE covers it."""
        if pc in self._rows:
            return self._rows[pc]
        fde = self.find_fde(pc)
        row = None
        if fde is not None:
            init = execute(fde.cie, fde.cie.instructions, fde.pc_begin, -1)
            state = execute(fde.cie, fde.instructions, fde.pc_begin, pc, init)
            row = Row(state.cfa_reg, state.cfa_offset, state.cfa_expr, state.rules,
                      fde.cie.ra_reg, fde.cie.signal_frame)
        if len(self._rows) > 4096:
            self._rows.clear()
        self._rows[pc] = row
        return row


def _parse_eh_frame_hdr(hdr: bytes, hdr_addr: int, eh_addr: int) -> list[tuple[int, int]]:
    """The ``.eh_frame_hdr`` search table as sorted (initial location, .eh_frame offset)."""
    if len(hdr) < 4 or hdr[0] != 1:
        raise CfiError("unknown .eh_frame_hdr version")
    ptr_enc, count_enc, table_enc = hdr[1], hdr[2], hdr[3]
    pos = 4
    _, pos = read_encoded(hdr, pos, ptr_enc, section_addr=hdr_addr, data_base=hdr_addr)
    if count_enc == PE_OMIT or table_enc == PE_OMIT:
        raise CfiError(".eh_frame_hdr without a search table")
    count, pos = read_encoded(hdr, pos, count_enc, section_addr=hdr_addr, data_base=hdr_addr)
    if table_enc == (PE_DATAREL | PE_SDATA4):
        # The common case (GNU ld, lld): pairs of int32 relative to the header's address.
        if pos + count * 8 > len(hdr):
            raise CfiError(".eh_frame_hdr table past the end")
        vals = struct.unpack_from(f"<{count * 2}i", hdr, pos)
        out = [(hdr_addr + vals[2 * i], hdr_addr + vals[2 * i + 1] - eh_addr) for i in range(count)]
    else:
        out = []
        for _ in range(count):
            loc, pos = read_encoded(hdr, pos, table_enc, section_addr=hdr_addr, data_base=hdr_addr)
            addr, pos = read_encoded(hdr, pos, table_enc, section_addr=hdr_addr, data_base=hdr_addr)
            out.append((loc, addr - eh_addr))
    if any(out[i][0] > out[i + 1][0] for i in range(len(out) - 1)):
        out.sort()
    return out
