"""A kernel oops as satyr's koops parser sees it, for the kerneloops uReport (§4.2, §5.6, §5.7).

Per line: leading blanks and a ``[secs.usec]`` time stamp skipped; ``Modules linked in:``
gives the module list; the first ``RIP:``/``EIP:`` line becomes frame 0; ``<IRQ>``,
``<NMI>``... open a special stack until ``<EOI>``/``<<EOE>>``; a frame line is an optional
``(``, an optional ``[<hex>]``/``[hex]`` address, an optional ``?`` (unreliable), then
``func+0xOFF/0xLEN``, an optional ``[module]`` and an optional ``from [<addr>] func+...``;
address-only frames are kept, unreliable. ``Tainted: `` letters give ``taint_flags``. The
reason is §5.7's: ``general protection fault in f``, ``kernel paging request at f``, else the
first line; `` [module]`` appended. Standard library only; collectors has its own oops
parser, but reporter may not import it (DESIGN.md).
"""

from __future__ import annotations

import re
from typing import Any

TAINT_NAMES = {"P": "module_proprietary", "F": "forced_module", "S": "smp_unsafe", "R": "forced_removal",
               "M": "mce", "B": "page_release", "U": "userspace", "D": "died_recently",
               "A": "acpi_overridden", "W": "warning", "C": "staging_driver", "I": "firmware_workaround",
               "O": "module_out_of_tree", "E": "unsigned_module", "L": "soft_lockup", "K": "live_patched"}
NORMALIZE_DROP = frozenset({
    "do_softirq", "do_vfs_ioctl", "dump_stack", "flush_kthread_worker", "gs_change", "irq_exit",
    "kernel_thread_helper", "kthread", "process_one_work", "system_call_fastpath", "warn_slowpath_common",
    "warn_slowpath_fmt", "warn_slowpath_fmt_taint", "warn_slowpath_null", "worker_thread"})

_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_SPECIAL_OPEN = re.compile(r"<(IRQ|NMI|SOFTIRQ|MCE|#DF|#MC|NMI_STACK|DB|STKFLT)>")
_SPECIAL_CLOSE = re.compile(r"<EOI>|<<EOE>>|<EOE>")
_FUNC = r"(?P<func>[A-Za-z0-9_.$]+)\+0x(?P<off>[0-9a-fA-F]+)/0x(?P<len>[0-9a-fA-F]+)"
_FRAME = re.compile(
    r"^\(?(?:\[<?(?P<addr>[0-9a-fA-F]+)>?\]\s*)?(?P<q>\?\s*)?\(?" + _FUNC + r"\)?"
    r"(?:\s*\[(?P<mod>[\w-]+)\])?"
    r"(?:\s*from\s*\[<?(?P<faddr>[0-9a-fA-F]+)>?\]\s*\(?(?P<ffunc>[A-Za-z0-9_.$]+)\+0x(?P<foff>[0-9a-fA-F]+)"
    r"/0x(?P<flen>[0-9a-fA-F]+)\)?(?:\s*\[(?P<fmod>[\w-]+)\])?)?")
_ADDR_ONLY = re.compile(r"^(?:\[<?[0-9a-fA-F]+>?\]\s*)?(?:\?\s*)?0x(?P<addr>[0-9a-fA-F]+)\b")
_IP = re.compile(r"^(?:RIP|EIP):\s*(?:[0-9a-f]{4}:)?(?:\[<?[0-9a-fA-F]+>?\]\s*)?(?P<rest>.*)$")


def _frame_from(m: re.Match[str], special: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    addr = int(m.group("addr"), 16) if m.group("addr") else 0
    if addr:
        out["address"] = addr
    out["reliable"] = m.group("q") is None
    func = m.group("func")
    out["function_name"] = func[1:] if func.startswith(".") and len(func) > 1 else func
    out["function_offset"] = int(m.group("off"), 16)
    out["function_length"] = int(m.group("len"), 16)
    if m.group("mod"):
        out["module_name"] = m.group("mod")
    if m.group("ffunc"):
        if m.group("faddr") and int(m.group("faddr"), 16):
            out["from_address"] = int(m.group("faddr"), 16)
        out["from_function_name"] = m.group("ffunc")
        out["from_function_offset"] = int(m.group("foff"), 16)
        out["from_function_length"] = int(m.group("flen"), 16)
        if m.group("fmod"):
            out["from_module_name"] = m.group("fmod")
    if special:
        out["special_stack"] = special
    return out


def _clean(line: str) -> str:
    return _TIMESTAMP.sub("", line.lstrip(" \t"))


def parse_modules(text: str) -> list[str]:
    """The ``Modules linked in:`` list (the first such line and its continuation)."""
    for raw in text.splitlines():
        line = _clean(raw)
        if line.startswith("Modules linked in:"):
            return re.findall(r"[^\s\[]+(?:\[[^\]]*\])?", line[len("Modules linked in:"):].strip())
    return []


def taint_flags(text: str) -> list[str]:
    """Names of the taint letters after ``Tainted: `` (spaces skipped; ``G`` has no name)."""
    at = text.find("Tainted: ")
    if at < 0:
        return []
    out: list[str] = []
    for c in text[at + len("Tainted: "):]:
        if c == " ":
            continue
        if not c.isupper():
            break
        name = TAINT_NAMES.get(c)
        if name and name not in out:
            out.append(name)
    return out


def parse_frames(text: str) -> list[dict[str, Any]]:
    """The frames satyr's koops parser finds, the instruction-pointer frame first."""
    frames: list[dict[str, Any]] = []
    ip_frame: dict[str, Any] | None = None
    special: str | None = None
    for raw in text.splitlines():
        line = _clean(raw)
        if not line:
            continue
        opened = _SPECIAL_OPEN.search(line)
        if opened:
            special = opened.group(1).lower()
            line = line[opened.end():].lstrip()
        if _SPECIAL_CLOSE.search(line):
            special = None
            continue
        ip = _IP.match(line)
        if ip:
            if ip_frame is None:
                m = _FRAME.match(ip.group("rest"))
                if m:
                    ip_frame = _frame_from(m, None)
            continue
        m = _FRAME.match(line)
        if m:
            frames.append(_frame_from(m, special))
            continue
        a = _ADDR_ONLY.match(line)
        if a and len(a.group("addr")) >= 8:
            frames.append({"address": int(a.group("addr"), 16), "reliable": False,
                           **({"special_stack": special} if special else {})})
    return ([ip_frame] if ip_frame else []) + frames


def reason(text: str, frames: list[dict[str, Any]]) -> str:
    """§5.7: the oops reason from its first line and the first normalised frame."""
    first = text.split("\n", 1)[0].strip()
    norm = [f for f in frames if f.get("function_name") and not (
        f["function_name"].split(".")[0] in NORMALIZE_DROP and not f.get("module_name"))]
    top = norm[0] if norm else None
    func = top["function_name"].split(".")[0] if top else "<unknown>"
    if "general protection fault: " in first:
        out = f"general protection fault in {func}"
    elif "kernel paging request at" in first:
        out = f"kernel paging request at {func}"
    else:
        return first
    if top and top.get("module_name"):
        out += f" [{top['module_name']}]"
    return out


def koops_problem(backtrace: str, kernel: str) -> tuple[dict[str, Any], str]:
    """The kerneloops-specific problem keys and the reason."""
    frames = parse_frames(backtrace)
    out: dict[str, Any] = {"raw_oops": backtrace, "version": kernel.split("\n", 1)[0],
                           "taint_flags": taint_flags(backtrace), "modules": parse_modules(backtrace),
                           "frames": frames}
    return out, reason(backtrace, frames)
