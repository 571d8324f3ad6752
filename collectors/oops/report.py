"""One kernel report as a typed record, and reading its details from the report's lines.

:func:`build_report` is the second half of :mod:`collectors.oops.parse`: the scanner
delimits a report (which lines belong to it); this module extracts what the lines say
(kernel version, CPU/PID/comm, hardware, modules, RIP, the main call trace, taint, the
guilty function, title and ABRT duphash). Pure: lines in, a frozen dataclass out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from collectors.oops.frames import KernelFrame, format_frame, parse_frame, parse_ip_line
from collectors.oops.koops_hash import abrt_duphash
from collectors.oops.taint import taint_meanings, tainted_letters
from collectors.oops.title import guilty_function, make_title

MAX_FRAMES = 256


@dataclass(frozen=True)
class KernelReport:
    """One kernel report found in a log."""

    kind: str
    title: str
    function: str | None
    start_line: int
    end_line: int
    kernel_version: str | None
    tainted: str
    taint_meanings: dict[str, str]
    cpu: int | None
    pid: int | None
    comm: str | None
    hardware: str | None
    modules: tuple[str, ...]
    rip: str | None
    frames: tuple[KernelFrame, ...]
    truncated: bool
    duphash: str | None
    text: str

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object ``crashkit oops scan --json`` prints (docs/oops.md)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "function": self.function,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "kernel_version": self.kernel_version,
            "tainted": self.tainted,
            "taint_meanings": dict(self.taint_meanings),
            "cpu": self.cpu,
            "pid": self.pid,
            "comm": self.comm,
            "hardware": self.hardware,
            "modules": list(self.modules),
            "rip": self.rip,
            "frames": [f.to_json_dict() for f in self.frames],
            "truncated": self.truncated,
            "duphash": self.duphash,
            "uuid": self.duphash,
            "text": self.text,
        }


# Regexes stay linear in the line's length (see parse.py): possessive quantifiers, and a
# search for a run of name characters starts only where such a run starts ("(?<![\w.$])"),
# else every character of a long run would start a scan to its end.
# Shared with the scanner: where a call trace starts; a line that looks like a frame.
TRACE_START = re.compile(r"(?i)call trace:|^backtrace:|^stack backtrace:")
FUNC_LIKE = re.compile(r"(?<![\w.$])[\w.$]++\+0x[0-9a-f]++/0x[0-9a-f]")
# Where the main trace of a report with several sections (KASAN, lockdep, NMI backtraces) ends.
_SECTION_BREAK = re.compile(
    r"^(?:Allocated by task|Freed by task|Last potentially related|Second to last potentially|The buggy address"
    r"|Memory state around|-> #\d|Sending NMI|NMI backtrace|Showing all locks|Mem-Info:|Tasks state"
    r"|(?:read|write)(?:\s\(marked\))? to 0x|value changed:|Uninit was (?:created|stored)|Local variable"
    r"|kfence-#|Reported by Kernel Concurrency)"
)

# Report details.
# The version: the run of non-blank characters after the marker ("(" never occurs in one; a
# scan that could cross "(" would run into every later "(" of a line made of them).
_VERSION = re.compile(r"(?:Tainted: [A-Z ]*+(?:-++ )?|Not tainted|kernel-|\()\s*+(\d++\.\d++(?:\.\d++)?+[^\s)#(]*+)\)? #")
_CPU_PID_COMM = re.compile(r"CPU: (\d++) (?:UID: \d++ )?PID: (\d++) Comm: (\S++)")
_PID_COMM = re.compile(r"Pid: (\d++), comm: (\S++)")
_WARN_CPU_PID = re.compile(r"WARNING: CPU: (\d++) PID: (\d++) at")
_PROCESS = re.compile(r"Process (\S++) \(pid: (\d++)")
_EIP_CPU = re.compile(r"EFLAGS: [0-9a-f]++ CPU: (\d++)")
# The comm may hold ":" and "(": the last ":PID blocked" / the first ")" after the first marker.
_HUNG = re.compile(r"^(?>.*?INFO: task )(.+):(\d++) blocked for more than")
_OOM_VICTIM = re.compile(r"^(?>.*?Kill(?:ed)? process (\d++) \()([^)]*+)\)")
_OOM_INVOKER = re.compile(r"(?<!\S)(\S++) invoked oom-killer:")
_HARDWARE = re.compile(r"Hardware name: (.*)")
_MODULES = re.compile(r"Modules linked in:(.*)")
_MODULE_CONT = re.compile(r"^\s*+[\w-]++(?:\([A-Z+-]++\))*+(?:\s++[\w-]++(?:\([A-Z+-]++\))*+)*+"
                          r"(?:\s++\[last unloaded: [^\]]*+\])?\s*+$")
_KASAN_ACCESS = re.compile(r"^(Read|Write) of size \d")
_LOCK_AT = re.compile(r"\bat: (?:\[<[0-9a-f]++>\]\s*+)?([A-Za-z_][\w.$]*+)(?:\+0x| \S+:\d)")
_WARN_FUNC = re.compile(r"(?:WARNING: (?:at|CPU: \d++ PID: \d++ at) \S++ |^Badness at )([A-Za-z_][\w.$]*+)"
                        r"\+0x[0-9a-f]++/0x[0-9a-f]++(?: \[(\S+)\])?")
_HEADER_FUNC = re.compile(r"(?:BUG: K[A-Z]+SAN: [\w -]+? in |UBSAN: [\w -]+? in |BUG: KFENCE: [\w -]+ in "
                          r"|is corrupted in: ?)([A-Za-z_][\w.$]*+)\+0x")
_KCSAN_FUNC = re.compile(r"BUG: KCSAN: [\w-]++ in ([A-Za-z_][\w.$]*+)")
_MODULE_NAME = re.compile(r"[\w-]+")


def build_report(kind: str, detail: str, start: int, lines: list[tuple[int, str]], *,
                 truncated: bool, boot_version: str | None) -> KernelReport:
    """The :class:`KernelReport` for one delimited report: ``lines`` are its ``(line number,
    text)`` pairs, ``kind``/``detail`` what its first line matched (:mod:`.kinds`), ``start``
    its first line number; ``boot_version`` is used when the report does not name a kernel
    version."""
    texts = [t for _, t in lines]
    text = "\n".join(t.rstrip() for t in texts) + "\n"
    stripped = [t.strip() for t in texts]
    first = stripped[0]

    version = None
    cpu = pid = None
    comm = hardware = None
    modules: list[str] = []
    rip: KernelFrame | None = None
    header_funcs: list[str] = []
    extra: dict[str, str] = {}
    frames: list[KernelFrame] = []
    collecting = False
    collected_done = False
    after_irq = 0
    in_irq = False
    has_trace_header = any(TRACE_START.search(s) for s in stripped)
    lockdep_gate = kind == "lockdep"
    lock_at_open = False
    nmi_end = 0
    for i, s in enumerate(stripped):
        if version is None and ("Tainted" in s or "tainted" in s or "#" in s):
            m = _VERSION.search(s)
            if m and ("Pid" in s or "comm" in s or "CPU" in s or "Comm" in s or "EFLAGS" in s or i < 4):
                version = m.group(1)
        if cpu is None or pid is None or comm is None:
            for rx in (_CPU_PID_COMM, _WARN_CPU_PID):
                m = rx.search(s)
                if m:
                    cpu = cpu if cpu is not None else int(m.group(1))
                    pid = pid if pid is not None else int(m.group(2))
                    if rx is _CPU_PID_COMM and comm is None:
                        comm = m.group(3)
            m = _PID_COMM.search(s)
            if m:
                pid = pid if pid is not None else int(m.group(1))
                comm = comm or m.group(2)
            m = _PROCESS.search(s)
            if m:
                comm = comm or m.group(1)
                pid = pid if pid is not None else int(m.group(2))
            m = _EIP_CPU.search(s)
            if m and cpu is None:
                cpu = int(m.group(1))
            m = _HUNG.search(s)
            if m:
                comm = comm or m.group(1)
                pid = pid if pid is not None else int(m.group(2))
        if hardware is None:
            m = _HARDWARE.search(s)
            if m:
                hardware = m.group(1).strip()
        if not modules:
            m = _MODULES.search(s)
            if m:
                modules = _module_names(m.group(1))
                for cont in stripped[i + 1:i + 4]:
                    if _MODULE_CONT.match(cont) and not FUNC_LIKE.search(cont) and ":" not in cont.replace("[last unloaded:", ""):
                        modules += _module_names(cont)
                    else:
                        break
        if rip is None:
            f = parse_ip_line(s)
            if f is not None:
                rip = f
        m = _WARN_FUNC.search(s)
        if m and i < 3:
            header_funcs.append(m.group(1))
        m = _HEADER_FUNC.search(s)
        if m and i < 3:
            header_funcs.append(m.group(1))
        if kind == "kasan" and "access" not in extra:
            m = _KASAN_ACCESS.match(s)
            if m:
                extra["access"] = m.group(1)
        if kind == "lockdep" and lock_at_open:
            # The lock being taken names the culprit: the "at:" lines right after "is trying to
            # acquire lock:" (circular/recursive) or "takes:" (inconsistent lock state); a
            # symbolised report lists the inlined lock wrappers first, one "at:" line each.
            m = _LOCK_AT.search(s)
            if m:
                header_funcs.append(m.group(1))
            elif header_funcs or s.startswith(("but ", "{", "other info", "stack backtrace")):
                lock_at_open = False
        if kind == "lockdep" and not lock_at_open and not header_funcs and (
                "is trying to acquire" in s or s.endswith("takes:")):
            lock_at_open = True
        if kind == "oom":
            m = _OOM_VICTIM.search(s)
            if m:
                extra["victim"] = m.group(2)
                if "Memory cgroup" in s:
                    extra["memcg"] = "1"
            m = _OOM_INVOKER.search(s)
            if m:
                extra.setdefault("invoker", m.group(1))
        # Frames of the main trace.
        if collected_done:
            continue
        if lockdep_gate:
            if s.startswith("stack backtrace:"):
                lockdep_gate = False
            continue
        if TRACE_START.search(s):
            if collecting and frames:
                collected_done = True
                continue
            collecting = True
            continue
        if collecting or not has_trace_header:
            if frames and _SECTION_BREAK.match(s):
                collected_done = True
                continue
            if s.startswith(("<IRQ>", "<NMI>", "<SOFTIRQ>")):
                in_irq = True
            if in_irq and s.startswith(("<EOI>", "</IRQ>", "<<EOE>>", "</NMI>", "</SOFTIRQ>")):
                in_irq = False
                if not after_irq:
                    after_irq = len(frames)
                if s.startswith("</NMI>") and not nmi_end:
                    nmi_end = len(frames)
            if s.startswith(("RIP:", "EIP:", "Code:", "Modules linked in:")):
                continue
            f = parse_frame(s)
            if f is not None and len(frames) < MAX_FRAMES:
                frames.append(f)
    if version is None:
        version = boot_version
    letters = tainted_letters(text)
    # A hard lockup is detected in NMI: the NMI section is machinery, the interrupted code
    # (possibly an IRQ handler) is the culprit.
    irq_end = nmi_end if kind == "hard-lockup" and nmi_end else after_irq
    func = guilty_function(kind, header_funcs, rip, frames, irq_end, detail)
    if kind == "kcsan":
        m = _KCSAN_FUNC.search(first)
        if m:
            func = m.group(1)
    title = make_title(kind, first, detail, func, extra)
    return KernelReport(
        kind=kind,
        title=title,
        function=func,
        start_line=start,
        end_line=lines[-1][0],
        kernel_version=version,
        tainted=letters,
        taint_meanings=taint_meanings(letters),
        cpu=cpu,
        pid=pid,
        comm=comm,
        hardware=hardware,
        modules=tuple(modules),
        rip=format_frame(rip) if rip is not None else None,
        frames=tuple(frames),
        truncated=truncated,
        duphash=abrt_duphash(text),
        text=text,
    )


def _module_names(text: str) -> list[str]:
    out = []
    for tok in text.split():
        if tok.startswith("[last") or tok.startswith("["):
            break
        name = tok.split("(", 1)[0]
        if name and _MODULE_NAME.fullmatch(name):
            out.append(name)
    return out
