"""Parse kernel stack-trace lines and instruction-pointer lines into frames.

Covers the layouts of arch/x86/kernel/dumpstack.c (with and without ``[<addr>]``),
arm ``(func) from (caller)``, arm64 / s390 / powerpc ``[sp] [ip] func (unreliable)``,
address-only frames, and symbolised syzkaller-style ``func file:line [inline]`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from collectors.oops import possessive


@dataclass(frozen=True)
class KernelFrame:
    """One stack frame of a kernel report."""

    function: str | None
    offset: int | None
    size: int | None
    module: str | None
    reliable: bool
    address: int | None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form (addresses as hex strings)."""
        return {
            "function": self.function,
            "offset": self.offset,
            "size": self.size,
            "module": self.module,
            "reliable": self.reliable,
            "address": None if self.address is None else f"0x{self.address:x}",
        }


# Every quantifier below that is followed by something it cannot match is possessive
# (``*+``, ``++``): with plain ones, "<IRQ>" plus 4000 blanks made FRAME_RE try every way
# of sharing the blanks between its five ``\s*`` and took a second per line
# (tests/security/test_oops_redos.py tries every regex of the package this way).
# Context switch markers that can precede a frame on the same line.
_CTX = r"(?:<(?:/?(?:IRQ|NMI|TASK|SOFTIRQ|EOI|MCE)|<EOE>>?|#DF|#MC|EOE)>\s*+)*+"
_FUNC = r"(?P<func>[A-Za-z_.$][\w.$]*+)\+0x(?P<off>[0-9a-fA-F]++)/0x(?P<size>[0-9a-fA-F]++)"
_MOD = r"(?:\s++\[(?P<mod>[\w-]++)(?: [0-9a-f]++)?\])?"
FRAME_RE = possessive.compile(
    r"^\s*+" + _CTX + r"\(?\s*+(?:\[<?(?P<addr>[0-9a-fA-F]{4,16}+)>?\]\s*+)?"
    r"(?:\[(?P<ip>[0-9a-fA-F]{4,16}+)\]\s*+)?(?P<q>\?\s++)?\(?" + _FUNC + r"\)?" + _MOD
    + r"(?P<rest>.*)$"
)
# arm: "[<c0014318>] (dump_backtrace_log_lvl) from [<c001457c>] (show_stack+0x24/0x2c)"
ARM_RE = possessive.compile(
    r"^\s*+\[<(?P<addr>[0-9a-f]++)>\]\s++\((?P<func>[A-Za-z_.$][\w.$]*+)(?:\+0x(?P<off>[0-9a-f]++)/0x(?P<size>[0-9a-f]++))?"
    r"(?:\s++\[(?P<mod>[\w-]++)\])?\)\s++from\s"
)
ADDR_ONLY_RE = possessive.compile(r"^\s*+" + _CTX + r"\(?\[<?(?P<addr>[0-9a-fA-F]{4,16}+)>?\]\s++(?:\[[0-9a-fA-F]{4,16}+\]\s++)?(?:\?\s++)?"
                          r"0x(?P<a2>[0-9a-fA-F]++)\s*+(?:\(unreliable\))?\s*+$")
INLINE_RE = possessive.compile(r"^\s*+(?P<func>[A-Za-z_][\w.$]*+) [\w./-]++:\d++(?::\d++)? \[inline\]\s*+$")


@lru_cache(maxsize=1024)  # a report's lines are parsed while scanning, for its frames and for its hash
def parse_frame(text: str) -> KernelFrame | None:
    """Parse one stack line; None when the line is not a frame."""
    m = FRAME_RE.match(text)
    if m:
        func = m.group("func")
        reliable = m.group("q") is None and "(unreliable)" not in m.group("rest")
        if func.startswith(".") and len(func) > 1:
            func = func[1:]  # ppc64 ELFv1 function descriptors print ".name"
        addr = m.group("ip") or m.group("addr")
        return KernelFrame(func, int(m.group("off"), 16), int(m.group("size"), 16), m.group("mod"), reliable,
                           int(addr, 16) if addr else None)
    m = ARM_RE.match(text)
    if m:
        off = m.group("off")
        return KernelFrame(m.group("func"), int(off, 16) if off else None,
                           int(m.group("size"), 16) if m.group("size") else None, m.group("mod"), True,
                           int(m.group("addr"), 16))
    m = ADDR_ONLY_RE.match(text)
    if m:
        return KernelFrame(None, None, None, None, False, int(m.group("a2"), 16))
    m = INLINE_RE.match(text)
    if m:
        return KernelFrame(m.group("func"), None, None, None, True, None)
    return None


# Instruction-pointer lines: where the CPU was when the report was made.
_IP_RES = [
    # x86_64 old: "RIP: 0010:[<ffffffff8110cd32>]  [<ffffffff8110cd32>] func+0x/0x [mod]"
    possessive.compile(r"^\s*+RIP: [0-9a-f]{4}:\[<[0-9a-f]++>\]\s++\[<(?P<addr>[0-9a-f]++)>\]\s++(?P<q>\?\s++)?" + _FUNC + _MOD),
    # x86_64 new: "RIP: 0010:func+0x/0x [mod]"
    possessive.compile(r"^\s*+RIP: [0-9a-f]{4}:(?P<q>)" + _FUNC + _MOD),
    # i386: "EIP: [<f88dec25>] func+0x/0x [mod] SS:ESP", "EIP is at func+0x/0x [mod]", "IP: [<>] :mod:func"
    possessive.compile(r"^\s*+EIP: (?:[0-9a-f]{4}:)?\[<(?P<addr>[0-9a-f]++)>\]\s++(?P<q>\?\s++)?" + _FUNC + _MOD),
    possessive.compile(r"^\s*+[ER]?IP is at (?P<q>)" + _FUNC + _MOD),
    possessive.compile(r"^\s*+IP: \[<(?P<addr>[0-9a-f]++)>\]\s++(?P<q>\?\s++)?(?::[\w-]++:)?" + _FUNC + _MOD),
    possessive.compile(r"^\s*+EIP: [0-9a-f]{4}:(?P<q>)" + _FUNC + _MOD),
    # arm/arm64: "PC is at func+0x/0x [mod]", "pc : func+0x/0x [mod]", "pc : [<addr>] ... "
    possessive.compile(r"^\s*+PC is at (?P<q>)" + _FUNC + _MOD),
    possessive.compile(r"^\s*+pc : (?:\[<(?P<addr>[0-9a-f]++)>\]\s++)?(?P<q>)" + _FUNC + _MOD),
    # powerpc: "NIP [c0000000000b2b18] func+0x/0x [mod]"
    possessive.compile(r"^\s*+NIP \[(?P<addr>[0-9a-f]++)\] (?P<q>)\.?" + _FUNC + _MOD),
    # s390: "Krnl PSW : 0704c00180000000 000000000043d4b2 (func+0x2a/0x1b4)"
    possessive.compile(r"^\s*+Krnl PSW : [0-9a-f]++ (?P<addr>[0-9a-f]++) \((?P<q>)" + _FUNC + _MOD + r"\)"),
    # x86_64 old trailer: "RIP  [<ffffffffa006c13c>] func+0x/0x [mod]"
    possessive.compile(r"^\s*+RIP\s++\[<(?P<addr>[0-9a-f]++)>\]\s++(?P<q>\?\s++)?" + _FUNC + _MOD),
]


def parse_ip_line(text: str) -> KernelFrame | None:
    """Parse an instruction-pointer line (RIP:, EIP:, IP:, PC is at, pc :, NIP, Krnl PSW)."""
    for rx in _IP_RES:
        m = rx.match(text)
        if m:
            gd = m.groupdict()
            addr = gd.get("addr")
            func = m.group("func")
            if func.startswith(".") and len(func) > 1:
                func = func[1:]
            return KernelFrame(func, int(m.group("off"), 16), int(m.group("size"), 16), m.group("mod"),
                               not m.group("q"), int(addr, 16) if addr else None)
    return None


def format_frame(frame: KernelFrame) -> str:
    """``func+0xOFF/0xSIZE [module]`` (the ``rip`` field of a report)."""
    text = frame.function or (f"0x{frame.address:x}" if frame.address is not None else "?")
    if frame.offset is not None and frame.size is not None:
        text += f"+0x{frame.offset:x}/0x{frame.size:x}"
    if frame.module:
        text += f" [{frame.module}]"
    return text
