"""Per-thread stack unwinding over a core: DWARF CFI first, then heuristics.

Start from the thread's ``NT_PRSTATUS`` registers. For each frame find the module holding the
pc and its CFI row (for every frame after the first, and not after a signal frame, the lookup
uses pc - 1: a return address may be the first byte of the next function, as gdb and libdwfl
do). Without CFI: a signal trampoline (``__restore_rt`` / vdso sigreturn, recognised by its
code) restores the registers saved in the ``ucontext`` on the stack; otherwise, on x86-64,
gdb's prologue analysis (:func:`_amd64_prologue`: rbp-based after ``push %rbp; mov %rsp,%rbp``,
else the return address on top of the stack, which also covers a call through a bad pointer);
on aarch64 the frame pointer chain (``x29``), and for the first frame the link register.
Unwinding stops at an undefined return address (the outermost frame), a zero pc, unreadable
memory, a repeated (pc, sp), a stack pointer that moves down (from frame 1 on), or 256
frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coripper.unwinder.cfi import Row, RuleKind
from coripper.unwinder.coremem import CoreMemory
from coripper.unwinder.dwarfexpr import evaluate
from coripper.errors import CfiError
from coripper.unwinder.modules import Module, ModuleMap

MAX_FRAMES = 256
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Arch:
    """DWARF register numbering of one machine, and where pc/sp/fp live."""

    name: str
    regnames: Mapping[int, str]      # DWARF number -> NT_PRSTATUS register name
    pc: int                          # our column for the pc
    sp: int
    fp: int
    lr: int | None                   # link register (aarch64)
    sigreturn_code: bytes            # the trampoline's instructions (rt_sigreturn syscall)
    ucontext_regs: tuple[int, ...]   # offset from sp of the saved regs; DWARF numbers in order
    ucontext_offset: int


_X86_NAMES = ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip"]

X86_64 = Arch(
    name="x86_64",
    regnames=dict(enumerate(_X86_NAMES)),
    pc=16, sp=7, fp=6, lr=None,
    # mov $15, %rax; syscall  (glibc __restore_rt)
    sigreturn_code=bytes.fromhex("48c7c00f0000000f05"),
    # struct ucontext: uc_flags, uc_link, uc_stack (24) -> uc_mcontext.gregs at 40:
    # r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip (arch/x86/include/uapi/asm/sigcontext.h)
    ucontext_regs=(8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16),
    ucontext_offset=40,
)

AARCH64 = Arch(
    name="aarch64",
    regnames={**{i: f"x{i}" for i in range(31)}, 31: "sp", 32: "pc"},
    pc=32, sp=31, fp=29, lr=30,
    # mov x8, #139; svc #0  (__kernel_rt_sigreturn / glibc __default_rt_sa_restorer)
    sigreturn_code=bytes.fromhex("681180d2010000d4"),
    # struct rt_sigframe { siginfo (128); ucontext } with uc_mcontext at 176, whose
    # fault_address (8) precedes regs[31], sp, pc (arch/arm64/kernel/signal.c)
    ucontext_regs=tuple(range(33)),
    ucontext_offset=128 + 176 + 8,
)

ARCHES = {"x86_64": X86_64, "aarch64": AARCH64}


@dataclass(frozen=True)
class Frame:
    """One frame: its pc (a return address for callers), stack pointer and how it was found."""

    pc: int
    sp: int
    method: str                      # "registers", "cfi", "signal", "prologue", "frame-pointer",
    #                                  "bad-pc", "link-register"
    module: Module | None
    lookup_pc: int                   # pc, or pc - 1 for return addresses (symbol/CFI lookups)


@dataclass(frozen=True)
class ThreadStack:
    frames: tuple[Frame, ...]
    stop_reason: str                 # "outermost", "zero-pc", "unreadable", "loop", "max-frames", "no-unwind-info"


def initial_registers(arch: Arch, regs: Mapping[str, int]) -> dict[int, int]:
    """NT_PRSTATUS registers by name -> DWARF-numbered registers."""
    return {num: regs[name] & MASK64 for num, name in arch.regnames.items() if name in regs}


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _load_saved(regs: dict[int, int], reg: int, addr: int, memory: CoreMemory, ra_reg: int) -> None:
    """Set ``reg`` from the 8 bytes at ``addr``; unreadable: drop it (stop if it is the RA)."""
    v = memory.read_u64(addr)
    if v is None:
        if reg == ra_reg:
            raise _Stop("unreadable")
        regs.pop(reg, None)
    else:
        regs[reg] = v


def _apply_row(arch: Arch, row: Row, regs: dict[int, int], memory: CoreMemory) -> dict[int, int]:
    def read_reg(n: int) -> int | None:
        return regs.get(n)

    if row.cfa_expr is not None:
        cfa = evaluate(row.cfa_expr, read_reg, memory.read)
    else:
        if row.cfa_reg is None or row.cfa_reg not in regs:
            raise _Stop("no-unwind-info")
        cfa = (regs[row.cfa_reg] + row.cfa_offset) & MASK64
    new = dict(regs)
    new[arch.sp] = cfa
    ra_known = True
    for reg, rule in row.rules.items():
        match rule.kind:
            case RuleKind.UNDEFINED:
                new.pop(reg, None)
                if reg == row.ra_reg:
                    ra_known = False
            case RuleKind.SAME:
                pass
            case RuleKind.OFFSET:
                _load_saved(new, reg, (cfa + int(rule.arg)) & MASK64, memory, row.ra_reg)
            case RuleKind.VAL_OFFSET:
                new[reg] = (cfa + int(rule.arg)) & MASK64
            case RuleKind.REGISTER:
                if int(rule.arg) in regs:
                    new[reg] = regs[int(rule.arg)]
                else:
                    new.pop(reg, None)
            case RuleKind.EXPRESSION:
                assert isinstance(rule.arg, bytes)
                addr = evaluate(rule.arg, read_reg, memory.read, push=cfa)
                _load_saved(new, reg, addr, memory, row.ra_reg)
            case RuleKind.VAL_EXPRESSION:
                assert isinstance(rule.arg, bytes)
                new[reg] = evaluate(rule.arg, read_reg, memory.read, push=cfa)
    if not ra_known:
        raise _Stop("outermost")
    if row.ra_reg not in new:
        raise _Stop("no-unwind-info")
    new[arch.pc] = new[row.ra_reg]
    return new


def _sigreturn(arch: Arch, regs: dict[int, int], memory: CoreMemory) -> dict[int, int] | None:
    code = memory.read(regs[arch.pc], len(arch.sigreturn_code))
    if code != arch.sigreturn_code:
        return None
    base = regs[arch.sp] + arch.ucontext_offset
    raw = memory.read(base, 8 * len(arch.ucontext_regs))
    if raw is None:
        raise _Stop("unreadable")
    new = dict(regs)
    for i, reg in enumerate(arch.ucontext_regs):
        new[reg] = int.from_bytes(raw[8 * i:8 * i + 8], "little")
    return new


def _frame_pointer(arch: Arch, regs: dict[int, int], memory: CoreMemory) -> dict[int, int]:
    fp = regs.get(arch.fp)
    sp = regs[arch.sp]
    if fp is None or fp < sp or fp & 7:
        raise _Stop("no-unwind-info")
    saved_fp = memory.read_u64(fp)
    ret = memory.read_u64(fp + 8)
    if saved_fp is None or ret is None:
        raise _Stop("unreadable")
    new = {arch.fp: saved_fp, arch.sp: fp + 16, arch.pc: ret}
    if arch.lr is not None:
        new[arch.lr] = ret
    return new


def unwind_thread(arch: Arch, registers: Mapping[str, int], memory: CoreMemory,
                  modules: ModuleMap, max_frames: int = MAX_FRAMES) -> ThreadStack:
    """Unwind one thread from its NT_PRSTATUS registers. Never raises on bad data."""
    regs = initial_registers(arch, registers)
    frames: list[Frame] = []
    seen: set[tuple[int, int]] = set()
    method = "registers"
    exact_pc = True                     # frame 0 and frames interrupted by a signal
    reason = "max-frames"
    while len(frames) < max_frames:
        pc, sp = regs.get(arch.pc), regs.get(arch.sp)
        if pc is None or sp is None:
            reason = "unreadable"
            break
        if pc == 0 and frames:
            reason = "zero-pc"
            break
        if (pc, sp) in seen:
            reason = "loop"
            break
        seen.add((pc, sp))
        lookup = pc if exact_pc else pc - 1
        module = modules.find(lookup)
        frames.append(Frame(pc, sp, method, module, lookup))
        try:
            new = None
            row = None
            if module is not None:
                try:
                    row = module.tables.row_at(lookup - module.bias)
                except CfiError:
                    row = None
            if row is not None:
                if row.signal_frame and not exact_pc:
                    # A signal trampoline is entered at its first byte, not returned into:
                    # name it at the exact pc (gdb and libdwfl do the same).
                    frames[-1] = Frame(pc, sp, method, module, pc)
                new = _apply_row(arch, row, regs, memory)
                method, next_exact = "cfi", row.signal_frame
            else:
                next_exact = False
                try:
                    new = _sigreturn(arch, regs, memory)
                except CfiError:
                    new = None
                if new is not None:
                    frames[-1] = Frame(pc, sp, method, module, pc)
                    method, next_exact = "signal", True
                elif arch is X86_64:
                    new = _amd64_prologue(regs, memory, _function_start(module, lookup))
                    method = "bad-pc" if module is None and len(frames) == 1 else "prologue"
                elif len(frames) == 1 and (module is None or arch.lr is not None):
                    # innermost frame without CFI: a call through a bad pointer, or (aarch64)
                    # code that has not saved lr yet, e.g. a PLT stub (ld emits no CFI for
                    # .plt there): the caller is in lr, as gdb's prologue analyzer assumes
                    new = _bad_pc(arch, regs, memory)
                    method = "bad-pc" if module is None else "link-register"
                else:
                    new = _frame_pointer(arch, regs, memory)
                    method = "frame-pointer"
        except _Stop as stop:
            reason = stop.reason
            break
        except CfiError:
            reason = "unreadable"
            break
        if method == "cfi" and row is not None and row.signal_frame:
            method = "signal"
        new_sp = new.get(arch.sp)
        # Callers live higher on the stack; only a signal frame may switch stacks (sigaltstack).
        # As gdb (frame.c, UNWIND_INNER_ID), the check compares frame bases (each frame's sp is
        # its callee's CFA), so it starts with frame 1: frame 0's sp is a register, not a base.
        # ld.so's aarch64 resolver returns through a CFA 16 bytes below it (docs/backtrace.md).
        if new_sp is None or (new_sp < sp and method != "signal" and len(frames) > 1):
            reason = "loop"
            break
        regs = new
        exact_pc = next_exact
    return ThreadStack(tuple(frames), reason)


def _bad_pc(arch: Arch, regs: dict[int, int], memory: CoreMemory) -> dict[int, int]:
    new = dict(regs)
    if arch.lr is not None:
        if arch.lr not in regs:
            raise _Stop("unreadable")
        new[arch.pc] = regs[arch.lr]
        return new
    ret = memory.read_u64(regs[arch.sp])
    if ret is None:
        raise _Stop("unreadable")
    new[arch.pc] = ret
    new[arch.sp] = regs[arch.sp] + 8
    return new


_ENDBR64 = b"\xf3\x0f\x1e\xfa"
_MOV_RSP_RBP = (b"\x48\x89\xe5", b"\x48\x8b\xec")


def _function_start(module: Module | None, lookup_pc: int) -> int | None:
    if module is None:
        return None
    sym = module.tables.symbols.lookup(lookup_pc - module.bias)
    return sym.value + module.bias if sym is not None else None


def _amd64_prologue(regs: dict[int, int], memory: CoreMemory, start: int | None) -> dict[int, int]:
    """An x86-64 frame without CFI, unwound as gdb's prologue analyzer does
    (amd64-tdep.c, ``amd64_analyze_prologue`` / ``amd64_frame_cache``): from the start of the
    function (its symbol; none: a frameless frame), after an ``endbr64``, a ``push %rbp``
    that has run saves rbp at the frame base, and a ``mov %rsp,%rbp`` after it makes rbp the
    base; otherwise the frame is "frameless" and its return address is at the top of the
    stack (rsp, or rsp + 8 after the push). gdb does not follow the rbp chain otherwise."""
    pc, sp = regs[X86_64.pc], regs[X86_64.sp]
    base = (sp - 8) & MASK64                 # frameless: return address at sp
    rbp_saved = False
    p = start
    if p is not None and pc > p:
        if p + 4 <= pc and memory.read(p, 4) == _ENDBR64:
            p += 4
        if pc > p and memory.read(p, 1) == b"\x55":        # push %rbp (has run)
            rbp_saved, base = True, sp
            if pc > p + 1 and memory.read(p + 1, 3) in _MOV_RSP_RBP:
                rbp = regs.get(X86_64.fp)
                if rbp is None:
                    raise _Stop("no-unwind-info")
                if rbp == 0:
                    raise _Stop("outermost")        # gdb: a zero frame base ends the stack
                base = rbp
    ret = memory.read_u64(base + 8)
    if ret is None:
        raise _Stop("unreadable")
    new = dict(regs)
    new[X86_64.pc], new[X86_64.sp] = ret, (base + 16) & MASK64
    if rbp_saved:
        _load_saved(new, X86_64.fp, base, memory, X86_64.pc)
    return new
