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
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

# Pointer encodings (LSB "DWARF Extensions", DW_EH_PE_*).
PE_OMIT = 0xFF
PE_ABSPTR, PE_ULEB128, PE_UDATA2, PE_UDATA4, PE_UDATA8 = 0x00, 0x01, 0x02, 0x03, 0x04
PE_SLEB128, PE_SDATA2, PE_SDATA4, PE_SDATA8 = 0x09, 0x0A, 0x0B, 0x0C
PE_PCREL, PE_TEXTREL, PE_DATAREL, PE_FUNCREL, PE_ALIGNED, PE_INDIRECT = 0x10, 0x20, 0x30, 0x40, 0x50, 0x80

MASK64 = (1 << 64) - 1
MAX_EXPR_STEPS = 1000
MAX_CFA_OPS = 100_000


class CfiError(Exception):
    """Malformed CFI (caught by the unwinder, which then falls back or stops)."""


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 at ``pos``; return (value, new position)."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise CfiError("LEB128 past the end")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos
        if shift > 70:
            raise CfiError("LEB128 too long")


def sleb(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a signed LEB128 at ``pos``; return (value, new position)."""
    result, end = uleb(data, pos)
    if data[end - 1] & 0x40:        # sign bit of the last byte (DWARF 5, 7.6)
        result -= 1 << (7 * (end - pos))
    return result, end


def _unpack(fmt: str, data: bytes, pos: int) -> tuple[int, int]:
    size = struct.calcsize(fmt)
    if pos < 0 or pos + size > len(data):
        raise CfiError("read past the end of the section")
    return struct.unpack_from(fmt, data, pos)[0], pos + size


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
        value, pos = _unpack(_PE_STRUCT[fmt], data, pos)
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

@dataclass(frozen=True)
class Rule:
    """How to recover a register in the caller: kind is one of
    ``undefined``, ``same``, ``offset`` (saved at CFA+arg), ``val_offset`` (CFA+arg),
    ``register`` (in register arg), ``expression`` / ``val_expression`` (DWARF expression arg)."""

    kind: str
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

    def copy(self) -> "_State":
        return _State(self.cfa_reg, self.cfa_offset, self.cfa_expr, dict(self.rules))


def execute(cie: Cie, instructions: bytes, start_loc: int, target: int,
            initial: _State | None = None) -> _State:
    """Run CFA ``instructions`` from ``start_loc`` until the row covering ``target`` is built."""
    state = initial.copy() if initial is not None else _State()
    init_rules = dict(initial.rules) if initial is not None else {}
    stack: list[_State] = []
    loc = start_loc
    pos = 0
    data = instructions
    ca, da = cie.code_align, cie.data_align
    ops = 0
    while pos < len(data):
        ops += 1
        if ops > MAX_CFA_OPS:
            raise CfiError("too many CFA instructions")
        op = data[pos]
        pos += 1
        high, low = op & 0xC0, op & 0x3F
        if high == 0x40:                                   # DW_CFA_advance_loc
            loc += low * ca
            if loc > target:
                break
            continue
        if high == 0x80:                                   # DW_CFA_offset
            off, pos = uleb(data, pos)
            state.rules[low] = Rule("offset", off * da)
            continue
        if high == 0xC0:                                   # DW_CFA_restore
            _restore(state, init_rules, low)
            continue
        if op == 0x00:                                     # nop
            continue
        if op in (0x02, 0x03, 0x04):                       # advance_loc1/2/4
            fmt = {0x02: "<B", 0x03: "<H", 0x04: "<I"}[op]
            delta, pos = _unpack(fmt, data, pos)
            loc += delta * ca
            if loc > target:
                break
        elif op == 0x01:                                   # set_loc
            loc, pos = read_encoded(data, pos, cie.fde_enc & 0x0F)
            if loc > target:
                break
        elif op in (0x05, 0x11, 0x2F):                     # offset_extended(_sf), GNU_negative_offset_extended
            reg, pos = uleb(data, pos)
            if op == 0x11:
                off, pos = sleb(data, pos)
                state.rules[reg] = Rule("offset", off * da)
            else:
                off, pos = uleb(data, pos)
                state.rules[reg] = Rule("offset", (off if op == 0x05 else -off) * da)
        elif op == 0x06:                                   # restore_extended
            reg, pos = uleb(data, pos)
            _restore(state, init_rules, reg)
        elif op == 0x07:                                   # undefined
            reg, pos = uleb(data, pos)
            state.rules[reg] = Rule("undefined")
        elif op == 0x08:                                   # same_value
            reg, pos = uleb(data, pos)
            state.rules[reg] = Rule("same")
        elif op == 0x09:                                   # register
            reg, pos = uleb(data, pos)
            reg2, pos = uleb(data, pos)
            state.rules[reg] = Rule("register", reg2)
        elif op == 0x0A:                                   # remember_state
            if len(stack) > 64:
                raise CfiError("remember_state stack too deep")
            stack.append(state.copy())
        elif op == 0x0B:                                   # restore_state
            if not stack:
                raise CfiError("restore_state with an empty stack")
            saved = stack.pop()
            state.cfa_reg, state.cfa_offset, state.cfa_expr = saved.cfa_reg, saved.cfa_offset, saved.cfa_expr
            state.rules = saved.rules
        elif op in (0x0C, 0x12):                           # def_cfa, def_cfa_sf
            reg, pos = uleb(data, pos)
            if op == 0x0C:
                off, pos = uleb(data, pos)
            else:
                off, pos = sleb(data, pos)
                off *= da
            state.cfa_reg, state.cfa_offset, state.cfa_expr = reg, off, None
        elif op == 0x0D:                                   # def_cfa_register
            reg, pos = uleb(data, pos)
            state.cfa_reg, state.cfa_expr = reg, None
        elif op in (0x0E, 0x13):                           # def_cfa_offset(_sf)
            if op == 0x0E:
                off, pos = uleb(data, pos)
            else:
                off, pos = sleb(data, pos)
                off *= da
            state.cfa_offset = off
        elif op == 0x0F:                                   # def_cfa_expression
            n, pos = uleb(data, pos)
            state.cfa_expr, state.cfa_reg = bytes(data[pos:pos + n]), None
            pos += n
        elif op in (0x10, 0x16):                           # expression, val_expression
            reg, pos = uleb(data, pos)
            n, pos = uleb(data, pos)
            if pos + n > len(data):
                raise CfiError("expression past the end")
            state.rules[reg] = Rule("expression" if op == 0x10 else "val_expression",
                                    bytes(data[pos:pos + n]))
            pos += n
        elif op in (0x14, 0x15):                           # val_offset(_sf)
            reg, pos = uleb(data, pos)
            off, pos = (uleb if op == 0x14 else sleb)(data, pos)
            state.rules[reg] = Rule("val_offset", off * da)
        elif op == 0x2E:                                   # GNU_args_size
            _, pos = uleb(data, pos)
        elif op == 0x2D:                                   # GNU_window_save / AARCH64_negate_ra_state
            pass                                           # pointer authentication: not modelled
        else:
            raise CfiError(f"unknown CFA opcode {op:#x}")
    return state


def _restore(state: _State, init_rules: dict[int, Rule], reg: int) -> None:
    if reg in init_rules:
        state.rules[reg] = init_rules[reg]
    else:
        state.rules.pop(reg, None)


# --- DWARF expressions --------------------------------------------------------------------

def evaluate(expr: bytes, read_reg: Callable[[int], int | None],
             read_mem: Callable[[int, int], bytes | None], push: int | None = None) -> int:
    """Evaluate a DWARF expression of the kind CFI uses (stack machine, no pieces)."""
    stack: list[int] = [] if push is None else [push & MASK64]
    pos = steps = 0

    def pop() -> int:
        if not stack:
            raise CfiError("DWARF expression stack underflow")
        return stack.pop()

    def reg(n: int) -> int:
        v = read_reg(n)
        if v is None:
            raise CfiError(f"register {n} unknown")
        return v

    def deref(addr: int, size: int) -> int:
        raw = read_mem(addr, size)
        if raw is None:
            raise CfiError(f"memory at {addr:#x} unreadable")
        return int.from_bytes(raw, "little")

    while pos < len(expr):
        steps += 1
        if steps > MAX_EXPR_STEPS or len(stack) > 1000:
            raise CfiError("DWARF expression too long")
        op = expr[pos]
        pos += 1
        if 0x30 <= op <= 0x4F:
            stack.append(op - 0x30)
        elif 0x70 <= op <= 0x8F:
            off, pos = sleb(expr, pos)
            stack.append((reg(op - 0x70) + off) & MASK64)
        elif op == 0x92:
            r, pos = uleb(expr, pos)
            off, pos = sleb(expr, pos)
            stack.append((reg(r) + off) & MASK64)
        elif op == 0x03:
            v, pos = _unpack("<Q", expr, pos)
            stack.append(v)
        elif op == 0x06:
            stack.append(deref(pop(), 8))
        elif op == 0x94:
            size, pos = _unpack("<B", expr, pos)
            if not 1 <= size <= 8:
                raise CfiError("bad deref_size")
            stack.append(deref(pop(), size))
        elif 0x08 <= op <= 0x0F:
            fmt = {0x08: "<B", 0x09: "<b", 0x0A: "<H", 0x0B: "<h", 0x0C: "<I", 0x0D: "<i",
                   0x0E: "<Q", 0x0F: "<q"}[op]
            v, pos = _unpack(fmt, expr, pos)
            stack.append(v & MASK64)
        elif op == 0x10:
            v, pos = uleb(expr, pos)
            stack.append(v & MASK64)
        elif op == 0x11:
            v, pos = sleb(expr, pos)
            stack.append(v & MASK64)
        elif op == 0x12:
            v = pop()
            stack += [v, v]
        elif op == 0x13:
            pop()
        elif op == 0x14:
            if len(stack) < 2:
                raise CfiError("DWARF expression stack underflow")
            stack.append(stack[-2])
        elif op == 0x15:
            i, pos = _unpack("<B", expr, pos)
            if i >= len(stack):
                raise CfiError("DWARF expression pick out of range")
            stack.append(stack[-1 - i])
        elif op == 0x16:
            a = pop()
            b = pop()
            stack += [a, b]
        elif op == 0x17:
            a = pop()
            b = pop()
            c = pop()
            stack += [a, c, b]
        elif op == 0x23:
            v, pos = uleb(expr, pos)
            stack.append((pop() + v) & MASK64)
        elif op in _BINARY:
            b = pop()
            a = pop()
            stack.append(_BINARY[op](a, b) & MASK64)
        elif op in (0x19, 0x1F, 0x20):
            a = pop()
            sa = a - (1 << 64) if a >> 63 else a
            stack.append({0x19: abs(sa), 0x1F: -sa, 0x20: ~a}[op] & MASK64)
        elif op == 0x2F:
            off, pos = _unpack("<h", expr, pos)
            pos += off
        elif op == 0x28:
            off, pos = _unpack("<h", expr, pos)
            if pop() != 0:
                pos += off
        elif op == 0x96:
            pass
        else:
            raise CfiError(f"unsupported DWARF expression opcode {op:#x}")
        if pos < 0:
            raise CfiError("DWARF expression branch out of range")
    if not stack:
        raise CfiError("DWARF expression left an empty stack")
    return stack[-1]


def _signed(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _div(a: int, b: int) -> int:
    if b == 0:
        raise CfiError("division by zero in DWARF expression")
    sa, sb = _signed(a), _signed(b)
    q = abs(sa) // abs(sb)
    return q if (sa < 0) == (sb < 0) else -q


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise CfiError("division by zero in DWARF expression")
    return a % b


_BINARY: dict[int, Callable[[int, int], int]] = {
    0x1A: lambda a, b: a & b,
    0x1B: _div,
    0x1C: lambda a, b: a - b,
    0x1D: _mod,
    0x1E: lambda a, b: a * b,
    0x21: lambda a, b: a | b,
    0x22: lambda a, b: a + b,
    0x24: lambda a, b: a << b if b < 64 else 0,
    0x25: lambda a, b: a >> b if b < 64 else 0,
    0x26: lambda a, b: _signed(a) >> min(b, 63),
    0x27: lambda a, b: a ^ b,
    0x29: lambda a, b: int(_signed(a) == _signed(b)),
    0x2A: lambda a, b: int(_signed(a) >= _signed(b)),
    0x2B: lambda a, b: int(_signed(a) > _signed(b)),
    0x2C: lambda a, b: int(_signed(a) <= _signed(b)),
    0x2D: lambda a, b: int(_signed(a) < _signed(b)),
    0x2E: lambda a, b: int(_signed(a) != _signed(b)),
}


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
        length, pos = _unpack("<I", self.data, offset)
        is64 = False
        if length == 0xFFFFFFFF:
            length, pos = _unpack("<Q", self.data, pos)
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
            ident, _ = _unpack("<Q", self.data, pos)
            is_cie = ident == (0 if self.is_eh else 0xFFFFFFFFFFFFFFFF)
        else:
            ident, _ = _unpack("<I", self.data, pos)
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
        version, pos = _unpack("<B", self.data, pos)
        nul = self.data.find(b"\0", pos, end)
        if nul < 0:
            raise CfiError("unterminated CIE augmentation")
        aug = self.data[pos:nul].decode("latin-1")
        pos = nul + 1
        address_size = 8
        if not self.is_eh and version >= 4:
            address_size, pos = _unpack("<B", self.data, pos)
            pos += 1                                       # segment selector size
        if aug.startswith("eh"):
            pos += 8                                       # ancient GCC eh_ptr
        code_align, pos = uleb(self.data, pos)
        data_align, pos = sleb(self.data, pos)
        if version == 1:
            ra_reg, pos = _unpack("<B", self.data, pos)
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
                    fde_enc, pos = _unpack("<B", self.data, pos)
                elif ch == "L":
                    pos += 1
                elif ch == "P":
                    penc, pos = _unpack("<B", self.data, pos)
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
        ident, pos = _unpack("<Q" if is64 else "<I", self.data, pos)
        cie_off = idpos - ident if self.is_eh else ident
        if cie_off < 0 or cie_off >= len(self.data) or cie_off == offset:
            raise CfiError("FDE with a bad CIE pointer")
        cie = self.cie(cie_off)
        if self.is_eh:
            begin, pos = read_encoded(self.data, pos, cie.fde_enc, section_addr=self.addr)
            size, pos = read_encoded(self.data, pos, cie.fde_enc & 0x0F)
        else:
            fmt = "<Q" if cie.address_size == 8 else "<I"
            begin, pos = _unpack(fmt, self.data, pos)
            size, pos = _unpack(fmt, self.data, pos)
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
