"""The DWARF expression machine, as call frame information uses it (DWARF 5 §2.5).

CFI rules ``DW_CFA_def_cfa_expression``, ``DW_CFA_expression`` and ``DW_CFA_val_expression``
carry expressions: a stack machine over 64-bit values that reads registers and memory (the
x86-64 PLT's CFA, signal frames of hand-written assembly). No pieces, no location
descriptions, no calls. Hostile input raises :class:`CfiError` only, and every run is bounded
(``MAX_EXPR_STEPS`` operations, a stack of at most 1000 values).
"""

from __future__ import annotations

from collections.abc import Callable

from elftools.dwarf.dwarf_expr import DW_OP_name2opcode as _OPCODES

from coripper.unwinder.dwarfread import MASK64, sleb, uleb, unpack
from coripper.errors import CfiError

MAX_EXPR_STEPS = 1000
MAX_STACK = 1000

DW_OP_addr = _OPCODES["DW_OP_addr"]
DW_OP_deref = _OPCODES["DW_OP_deref"]
DW_OP_deref_size = _OPCODES["DW_OP_deref_size"]
DW_OP_constu = _OPCODES["DW_OP_constu"]
DW_OP_consts = _OPCODES["DW_OP_consts"]
DW_OP_dup = _OPCODES["DW_OP_dup"]
DW_OP_drop = _OPCODES["DW_OP_drop"]
DW_OP_over = _OPCODES["DW_OP_over"]
DW_OP_pick = _OPCODES["DW_OP_pick"]
DW_OP_swap = _OPCODES["DW_OP_swap"]
DW_OP_rot = _OPCODES["DW_OP_rot"]
DW_OP_abs = _OPCODES["DW_OP_abs"]
DW_OP_neg = _OPCODES["DW_OP_neg"]
DW_OP_not = _OPCODES["DW_OP_not"]
DW_OP_plus_uconst = _OPCODES["DW_OP_plus_uconst"]
DW_OP_skip = _OPCODES["DW_OP_skip"]
DW_OP_bra = _OPCODES["DW_OP_bra"]
DW_OP_lit0 = _OPCODES["DW_OP_lit0"]
DW_OP_lit31 = _OPCODES["DW_OP_lit31"]
DW_OP_breg0 = _OPCODES["DW_OP_breg0"]
DW_OP_breg31 = _OPCODES["DW_OP_breg31"]
DW_OP_bregx = _OPCODES["DW_OP_bregx"]
DW_OP_nop = _OPCODES["DW_OP_nop"]

#: DW_OP_const1u .. DW_OP_const8s: the struct format of their operand.
_FIXED_CONSTANTS = {_OPCODES["DW_OP_const1u"]: "<B", _OPCODES["DW_OP_const1s"]: "<b",
                    _OPCODES["DW_OP_const2u"]: "<H", _OPCODES["DW_OP_const2s"]: "<h",
                    _OPCODES["DW_OP_const4u"]: "<I", _OPCODES["DW_OP_const4s"]: "<i",
                    _OPCODES["DW_OP_const8u"]: "<Q", _OPCODES["DW_OP_const8s"]: "<q"}


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


#: Operations on the two top values (``a`` below ``b``); comparisons are signed (DWARF 5 §2.5.1.4).
_BINARY: dict[int, Callable[[int, int], int]] = {
    _OPCODES["DW_OP_and"]: lambda a, b: a & b,
    _OPCODES["DW_OP_div"]: _div,
    _OPCODES["DW_OP_minus"]: lambda a, b: a - b,
    _OPCODES["DW_OP_mod"]: _mod,
    _OPCODES["DW_OP_mul"]: lambda a, b: a * b,
    _OPCODES["DW_OP_or"]: lambda a, b: a | b,
    _OPCODES["DW_OP_plus"]: lambda a, b: a + b,
    _OPCODES["DW_OP_shl"]: lambda a, b: a << b if b < 64 else 0,
    _OPCODES["DW_OP_shr"]: lambda a, b: a >> b if b < 64 else 0,
    _OPCODES["DW_OP_shra"]: lambda a, b: _signed(a) >> min(b, 63),
    _OPCODES["DW_OP_xor"]: lambda a, b: a ^ b,
    _OPCODES["DW_OP_eq"]: lambda a, b: int(_signed(a) == _signed(b)),
    _OPCODES["DW_OP_ge"]: lambda a, b: int(_signed(a) >= _signed(b)),
    _OPCODES["DW_OP_gt"]: lambda a, b: int(_signed(a) > _signed(b)),
    _OPCODES["DW_OP_le"]: lambda a, b: int(_signed(a) <= _signed(b)),
    _OPCODES["DW_OP_lt"]: lambda a, b: int(_signed(a) < _signed(b)),
    _OPCODES["DW_OP_ne"]: lambda a, b: int(_signed(a) != _signed(b)),
}

_STACK_OPS = frozenset({DW_OP_dup, DW_OP_drop, DW_OP_over, DW_OP_pick, DW_OP_swap, DW_OP_rot})
_UNARY = frozenset({DW_OP_abs, DW_OP_neg, DW_OP_not})


def evaluate(expr: bytes, read_reg: Callable[[int], int | None],
             read_mem: Callable[[int, int], bytes | None], push: int | None = None) -> int:
    """Evaluate ``expr`` with ``push`` (the CFA, for register rules) as the initial stack;
    return the value on top at the end. ``read_reg`` gives a DWARF register or None,
    ``read_mem`` little-endian bytes at an address or None."""
    machine = _Machine(expr, read_reg, read_mem, push)
    steps = 0
    while machine.pos < len(expr):
        steps += 1
        if steps > MAX_EXPR_STEPS or len(machine.stack) > MAX_STACK:
            raise CfiError("DWARF expression too long")
        machine.step()
        if machine.pos < 0:
            raise CfiError("DWARF expression branch out of range")
    if not machine.stack:
        raise CfiError("DWARF expression left an empty stack")
    return machine.stack[-1]


class _Machine:
    """The stack and the position of one evaluation."""

    def __init__(self, expr: bytes, read_reg: Callable[[int], int | None],
                 read_mem: Callable[[int, int], bytes | None], push: int | None) -> None:
        self.expr = expr
        self.read_reg = read_reg
        self.read_mem = read_mem
        self.stack: list[int] = [] if push is None else [push & MASK64]
        self.pos = 0

    def step(self) -> None:
        """Run the operation at ``pos``."""
        op = self.expr[self.pos]
        self.pos += 1
        if DW_OP_lit0 <= op <= DW_OP_lit31:
            self.stack.append(op - DW_OP_lit0)
        elif DW_OP_breg0 <= op <= DW_OP_breg31 or op == DW_OP_bregx:
            self._register(op)
        elif op in _FIXED_CONSTANTS or op in (DW_OP_addr, DW_OP_constu, DW_OP_consts):
            self._constant(op)
        elif op in (DW_OP_deref, DW_OP_deref_size):
            self._deref(op)
        elif op in _STACK_OPS:
            self._stack_op(op)
        elif op in _BINARY:
            b = self.pop()
            a = self.pop()
            self.stack.append(_BINARY[op](a, b) & MASK64)
        elif op in _UNARY:
            self._unary(op)
        elif op == DW_OP_plus_uconst:
            v = self._uleb()
            self.stack.append((self.pop() + v) & MASK64)
        elif op in (DW_OP_skip, DW_OP_bra):
            off = self._fixed("<h")
            if op == DW_OP_skip or self.pop() != 0:
                self.pos += off
        elif op != DW_OP_nop:
            raise CfiError(f"unsupported DWARF expression opcode {op:#x}")

    def pop(self) -> int:
        """The top of the stack, removed."""
        if not self.stack:
            raise CfiError("DWARF expression stack underflow")
        return self.stack.pop()

    def _uleb(self) -> int:
        v, self.pos = uleb(self.expr, self.pos)
        return v

    def _sleb(self) -> int:
        v, self.pos = sleb(self.expr, self.pos)
        return v

    def _fixed(self, fmt: str) -> int:
        v, self.pos = unpack(fmt, self.expr, self.pos)
        return v

    def _register(self, op: int) -> None:
        """DW_OP_bregN / DW_OP_bregx: a register plus a signed offset."""
        reg = op - DW_OP_breg0 if op != DW_OP_bregx else self._uleb()
        off = self._sleb()
        value = self.read_reg(reg)
        if value is None:
            raise CfiError(f"register {reg} unknown")
        self.stack.append((value + off) & MASK64)

    def _constant(self, op: int) -> None:
        if op == DW_OP_addr:
            v = self._fixed("<Q")
        elif op == DW_OP_constu:
            v = self._uleb()
        elif op == DW_OP_consts:
            v = self._sleb()
        else:
            v = self._fixed(_FIXED_CONSTANTS[op])
        self.stack.append(v & MASK64)

    def _deref(self, op: int) -> None:
        size = 8 if op == DW_OP_deref else self._fixed("<B")
        if not 1 <= size <= 8:
            raise CfiError("bad deref_size")
        addr = self.pop()
        raw = self.read_mem(addr, size)
        if raw is None:
            raise CfiError(f"memory at {addr:#x} unreadable")
        self.stack.append(int.from_bytes(raw, "little"))

    def _stack_op(self, op: int) -> None:
        stack = self.stack
        if op == DW_OP_dup:
            v = self.pop()
            stack += [v, v]
        elif op == DW_OP_drop:
            self.pop()
        elif op == DW_OP_over:
            if len(stack) < 2:
                raise CfiError("DWARF expression stack underflow")
            stack.append(stack[-2])
        elif op == DW_OP_pick:
            i = self._fixed("<B")
            if i >= len(stack):
                raise CfiError("DWARF expression pick out of range")
            stack.append(stack[-1 - i])
        elif op == DW_OP_swap:
            a = self.pop()
            b = self.pop()
            stack += [a, b]
        else:                                   # DW_OP_rot
            a = self.pop()
            b = self.pop()
            c = self.pop()
            stack += [a, c, b]

    def _unary(self, op: int) -> None:
        a = self.pop()
        if op == DW_OP_not:
            self.stack.append(~a & MASK64)
        else:
            sa = _signed(a)
            self.stack.append((abs(sa) if op == DW_OP_abs else -sa) & MASK64)
