"""Find kernel reports (oopses, BUGs, WARNINGs, panics, lockups, sanitizer and lockdep
reports, OOM kills) in log text. Pure: lines or bytes in, frozen dataclasses out.

Delimiting follows ABRT (formats/libreport.md §5.3) and improves on it: reports end at
``---[ end trace``/``---[ end Kernel panic``/sanitizer ``====`` lines or where the call
trace stops; a ``Kernel panic`` that follows a report joins it; ``Oops:``/trap lines
after a ``BUG:`` line continue it; printk caller ids keep interleaved CPUs apart; a
reboot or the end of input cuts an open report off (``truncated``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from collectors.oops import kinds as K
from collectors.oops.frames import KernelFrame, format_frame, parse_frame, parse_ip_line
from collectors.oops.koops_hash import abrt_duphash
from collectors.oops.lines import MAX_LINE_CHARS, strip_prefix
from collectors.oops.taint import taint_meanings, tainted_letters
from collectors.oops.title import guilty_function, make_title

__all__ = ["KernelFrame", "KernelReport", "scan_lines", "scan_text", "scan_stream"]

MAX_REPORT_LINES = 2000  # a call trace that never ends is cut here (truncated)
MAX_FRAMES = 256
HEADER_LIMIT = 60  # lines before a call trace; ABRT uses 40 (§5.3 step 4)
BODY_LIMIT = {"kasan": 600, "kmsan": 600, "kcsan": 400, "kfence": 400, "lockdep": 400, "oom": MAX_REPORT_LINES}
PANIC_JOIN_WINDOW = 40  # lines after a report within which a "Kernel panic" still belongs to it
# Panic messages that are the consequence of a preceding report (kernel/exit.c make_task_dead,
# kernel/panic.c check_panic_on_warn, kernel/hung_task.c, kernel/watchdog*.c, mce); any other
# panic ("VFS: Unable to mount root fs") is a report of its own even right after another one.
_PANIC_CONSEQUENCE = re.compile(
    r"Fatal exception|panic_on_warn|panic_on_oops|Attempted to kill (?:init|the idle task)"
    r"|Aiee, killing interrupt handler|hung_task: blocked tasks|softlockup: hung tasks|[Hh]ard LOCKUP"
    r"|(?i:machine check)|Fatal hardware error|RCU Stall|rcu_.*stall|Out of memory|System is deadlocked on memory"
    r"|Oops|Fatal trap|Fatal exception in interrupt"
)


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

    def to_json_dict(self) -> dict:
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


# ---------------------------------------------------------------------------------------
# Line predicates used while a report is open.

_TRACE_START = re.compile(r"(?i)call trace:|^backtrace:|^stack backtrace:")
_ABRT_TRACE_START = re.compile(r"^\(?\[<[0-9a-f]+>\].*\+0x.*/0x")
_EQUALS_END = re.compile(r"^={20,}\s*$")
_END_TRACE = re.compile(r"^-+\[ end trace")
_END_PANIC = re.compile(r"^-+\[ end (?:Kernel panic|trace)? ?.*Kernel panic")
_CONT_PREFIX = re.compile(
    r"^(?:<(?:/?(?:IRQ|NMI|TASK|SOFTIRQ|EOI|MCE)|<EOE>>?|#DF|#MC|EOE)>"
    r"|Code: |RIP: |RIP |EIP: |RSP: |RSP <|ESP: |Last Breaking-Event-Address:|Modules linked in:"
    r"|Hardware name:|Backtrace:|Call [Tt]race:|Exception stack|irq event stamp:|hardirqs last|softirqs last"
    r"|Instruction dump:|Krnl |LR =|--- Exception|--- interrupt|--- \[end|NIP |LR \[|PC is at|LR is at"
    r"|pc : |lr : |sp : |Stack:|Kernel Offset:|CR2: |Unable to access opcode bytes|\? |\(\[<|\[<"
    r"|note: |Dumping ftrace buffer|\(ftrace buffer empty\)|Fixing recursive fault|Rebooting in"
    r"|Shutting down cpus|SMP: stopping|---\[ end|\[[0-9a-f]{8,16}\] )"
)
_CONT_ANY = re.compile(r"Comm:|Hardware name:|--- Exception|LR =|<IRQ>|<EOI>|<NMI>|<<EOE>>|<#DF>")
_REGS = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]{0,8}\s?:\s*[<(]?[0-9a-fA-F]{2,}|r\d{1,2}:[0-9a-f]{8}|[a-z]{1,3}\d{0,2}\s*: [0-9a-f]{8,})")
_HEX_DUMP = re.compile(r"^(?:[<(]?[0-9a-fA-F]{2,16}[>)]?\s*)+$")
_FUNC_LIKE = re.compile(r"[\w.$]+\+0x[0-9a-f]+/0x[0-9a-f]+")
_AFTER_END = re.compile(
    r"^(?:RIP|EIP|RSP|ESP|Code|CR2|FS|CS|DR\d|PKRU|R[A-Z0-9]{1,3}|pc|lr|sp|x\d+)\s?:"
    r"|^Kernel panic - not syncing|^Kernel Offset:|^-+\[ end Kernel panic|^Rebooting in|^note: "
    r"|^Fixing recursive fault|^Dumping ftrace buffer|^\s*\(ftrace buffer empty\)|^Shutting down cpus"
    r"|^SMP: stopping|^oom_reaper: reaped process|^Unable to access opcode|^---\[ end"
)
_SECTION_BREAK = re.compile(
    r"^(?:Allocated by task|Freed by task|Last potentially related|Second to last potentially|The buggy address"
    r"|Memory state around|-> #\d|Sending NMI|NMI backtrace|Showing all locks|Mem-Info:|Tasks state"
    r"|(?:read|write)(?:\s\(marked\))? to 0x|value changed:|Uninit was (?:created|stored)|Local variable"
    r"|kfence-#|Reported by Kernel Concurrency)"
)
_OOM_END = re.compile(r"(?:Out of memory|Memory cgroup out of memory)(?: \([^)]*\))?: Killed process|^Killed process \d+")

# Report details.
_VERSION = re.compile(r"(?:Tainted: [A-Z ]*(?:-+ )?|Not tainted|kernel-|\()\s*(\d+\.\d+(?:\.\d+)?[^\s)#]*)\)? #")
_CPU_PID_COMM = re.compile(r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (\S+)")
_PID_COMM = re.compile(r"Pid: (\d+), comm: (\S+)")
_WARN_CPU_PID = re.compile(r"WARNING: CPU: (\d+) PID: (\d+) at")
_PROCESS = re.compile(r"Process (\S+) \(pid: (\d+)")
_EIP_CPU = re.compile(r"EFLAGS: [0-9a-f]+ CPU: (\d+)")
_HUNG = re.compile(r"INFO: task (.+):(\d+) blocked for more than")
_OOM_VICTIM = re.compile(r"Kill(?:ed)? process (\d+) \(([^)]*)\)")
_OOM_INVOKER = re.compile(r"(\S+) invoked oom-killer:")
_HARDWARE = re.compile(r"Hardware name: (.*)")
_MODULES = re.compile(r"Modules linked in:(.*)")
_MODULE_CONT = re.compile(r"^\s*[\w-]+(?:\([A-Z+-]+\))*(?:\s+[\w-]+(?:\([A-Z+-]+\))*)*(?:\s+\[last unloaded: [^\]]*\])?\s*$")
_KASAN_ACCESS = re.compile(r"^(Read|Write) of size \d+")
_LOCK_AT = re.compile(r"\bat: (?:\[<[0-9a-f]+>\]\s*)?([A-Za-z_][\w.$]*)(?:\+0x| \S+:\d+)")
_WARN_FUNC = re.compile(r"(?:WARNING: (?:at|CPU: \d+ PID: \d+ at) \S+ |^Badness at )([A-Za-z_][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\S+)\])?")
_HEADER_FUNC = re.compile(r"(?:BUG: K[A-Z]+SAN: [\w -]+? in |UBSAN: [\w -]+? in |BUG: KFENCE: [\w -]+ in |is corrupted in: ?)([A-Za-z_][\w.$]*)\+0x")
_MCE_ANY = re.compile(r"(?i)machine check")
# Kinds without a call trace: which lines still belong to them (kernel/workqueue.c
# show_all_workqueues(), arch/x86/kernel/cpu/mce/core.c print_mce()).
_HEADER_ONLY = {
    "workqueue-lockup": re.compile(r"^(?:Showing busy workqueues|workqueue \S+: flags=|pool \d+:|\s)"),
    "mce": re.compile(r"(?i)hardware error|machine check|^bank \d+:|^mce:|^kernel panic|^tsc |^rip |^mcg"
                      r"|^processor |^cpu \d+:|^kernel offset|^-+\[ end kernel panic"),
}


@dataclass
class _Builder:
    kind: str
    detail: str
    start: int
    caller: str | None
    lines: list[tuple[int, str]] = field(default_factory=list)
    state: str = "header"  # header | body | trace | after
    header_count: int = 0
    trace_gate: bool = True  # lockdep: trace may only start after "stack backtrace:"
    ended_naturally: bool = False

    def add(self, lineno: int, text: str) -> None:
        self.lines.append((lineno, text[:MAX_LINE_CHARS]))


class _Scanner:
    """The report state machine; feed it every line (or only candidate lines while idle)."""

    def __init__(self) -> None:
        self.lineno = 0
        self.open: dict[str | None, _Builder] = {}
        self.recent: dict[str | None, tuple[_Builder, int]] = {}
        self.boot_version: str | None = None
        self.done: list[KernelReport] = []

    @property
    def idle(self) -> bool:
        return not self.open

    # -- line handling --------------------------------------------------------------------
    def feed(self, lineno: int, raw: str) -> None:
        ln = strip_prefix(raw)
        if not ln.kernel:
            return  # other programs' syslog lines and kmsg dictionaries never end a report
        text = ln.text
        stripped = text.strip()
        if not stripped:
            return  # ABRT ignores empty lines too (§5.1)
        self.lineno = lineno
        boot = K.BOOT_RE.match(stripped)
        if boot:
            for key in list(self.open):
                self._close(key, truncated=not self._complete(self.open[key]))
            self.recent.clear()
            if boot.group(1):
                self.boot_version = boot.group(1)
            return
        key = ln.caller
        marker = K.classify(stripped)
        b = self.open.get(key)
        if b is not None:
            if self._continue(b, key, lineno, text, stripped, marker):
                return
        if marker is None:
            return
        if marker.kind == "panic" or (marker.kind == "mce" and stripped.startswith("Kernel panic")):
            prev = self.recent.get(key)
            if (prev is not None and lineno - prev[1] <= PANIC_JOIN_WINDOW and key not in self.open
                    and _PANIC_CONSEQUENCE.search(stripped)):
                builder = prev[0]
                self.done = [r for r in self.done if r.start_line != builder.start]
                builder.state = "after"
                builder.add(lineno, text)
                self.open[key] = builder
                del self.recent[key]
                return
        self._start(key, lineno, text, marker)

    def _start(self, key: str | None, lineno: int, text: str, marker: K.Marker) -> None:
        b = _Builder(marker.kind, marker.detail, lineno, key)
        if marker.kind in K.SANITIZER_BODY or marker.kind == "oom":
            b.state = "body"
        b.trace_gate = marker.kind not in K.LOCKDEP_BODY
        b.add(lineno, text)
        self.open[key] = b
        self.recent.pop(key, None)
        if marker.kind == "oom" and _OOM_END.search(text.strip()):
            b.state = "after"
            b.ended_naturally = True

    def _continue(self, b: _Builder, key: str | None, lineno: int, text: str, s: str,
                  marker: K.Marker | None) -> bool:
        """Offer a line to the open report; False when the report ended before this line."""
        if len(b.lines) >= MAX_REPORT_LINES:
            self._close(key, truncated=True)
            return False
        st = b.state
        if st == "body":
            if marker is not None and marker.kind == "panic" and b.kind == "oom":
                b.kind, b.detail, b.state = "panic", marker.detail, "header"
                b.add(lineno, text)
                return True
            if b.kind == "oom":
                if marker is not None and not marker.weak and marker.kind != "oom" and not _MCE_ANY.search(s):
                    self._close(key, truncated=True)
                    return False
                b.add(lineno, text)
                if _OOM_END.search(s):
                    b.state, b.ended_naturally = "after", True
                return True
            b.add(lineno, text)
            if _EQUALS_END.match(s) and len(b.lines) > 2:
                b.ended_naturally = True
                self._close(key, truncated=False)
            elif _END_TRACE.match(s):
                b.state, b.ended_naturally = "after", True
            elif len(b.lines) > BODY_LIMIT.get(b.kind, HEADER_LIMIT):
                self._close(key, truncated=True)
            return True
        if st == "after":
            if marker is not None and not marker.weak and marker.kind not in ("panic", "mce", "stack-protector"):
                self._close(key, truncated=False)
                return False  # a new report right after the end marker ("BUG: Bad ..." looks like a register line)
            if _AFTER_END.search(s) or _REGS.match(s) or _HEX_DUMP.match(s):
                if marker is not None and marker.kind == "panic" and b.kind == "oom":
                    b.kind, b.detail = "panic", marker.detail
                b.add(lineno, text)
                if _END_PANIC.match(s):
                    self._close(key, truncated=False)
                return True
            self._close(key, truncated=False)
            return False
        if st == "header":
            only = _HEADER_ONLY.get(b.kind)
            if only is not None and not only.search(text) and not (marker is not None and self._absorbs(b, marker)):
                b.ended_naturally = True
                self._close(key, truncated=False)
                return False
            if marker is not None and not self._absorbs(b, marker):
                self._close(key, truncated=False, one_line=False)
                return False
            if marker is not None and marker.kind != b.kind and self._upgrades(b, marker):
                b.kind, b.detail = marker.kind, marker.detail
            b.add(lineno, text)
            b.header_count += 1
            if _END_TRACE.match(s):
                b.state, b.ended_naturally = "after", True
            elif _END_PANIC.match(s):
                b.ended_naturally = True
                self._close(key, truncated=False)
            elif not b.trace_gate:
                if s.startswith("stack backtrace:"):
                    b.trace_gate = True
                elif b.header_count > BODY_LIMIT.get(b.kind, HEADER_LIMIT):
                    self._close(key, truncated=True)
            elif _TRACE_START.search(s) or _ABRT_TRACE_START.match(s):
                b.state = "trace"
            elif b.header_count > HEADER_LIMIT:
                # ABRT §5.3 step 4: no call trace in sight, keep only the start line.
                self._close(key, truncated=False, one_line=True)
            return True
        # trace
        if _END_TRACE.match(s):
            b.add(lineno, text)
            b.state, b.ended_naturally = "after", True
            return True
        if _END_PANIC.match(s):
            b.add(lineno, text)
            b.ended_naturally = True
            self._close(key, truncated=False)
            return True
        if b.kind == "ubsan" and _EQUALS_END.match(s):
            b.add(lineno, text)
            b.ended_naturally = True
            self._close(key, truncated=False)
            return True
        if marker is None and self._is_trace_line(s):
            b.add(lineno, text)
            return True
        b.ended_naturally = True
        self._close(key, truncated=False)
        return False

    @staticmethod
    def _is_trace_line(s: str) -> bool:
        if _CONT_PREFIX.match(s) or _CONT_ANY.search(s) or _REGS.match(s) or _HEX_DUMP.match(s):
            return True
        if _EQUALS_END.match(s):
            return True  # i386 traces print "=======================" before Code:
        return parse_frame(s) is not None or bool(_FUNC_LIKE.search(s) and s[:1] in "([")

    @staticmethod
    def _absorbs(b: _Builder, m: K.Marker) -> bool:
        """Does a start marker inside an open report's header belong to that report?"""
        if m.weak:
            return True
        if m.kind in ("panic", "mce") and m.detail and b.kind in ("mce", "oom", "hung-task", "soft-lockup", "rcu-stall"):
            return True
        if m.kind == "mce" and b.kind == "mce":
            return True
        if m.die and b.kind in ("null-ptr-deref", "paging-request", "bug", "list-corruption", "kasan",
                                "stack-overflow", "double-fault", "refcount"):
            return True
        if b.kind == "gpf" and m.kind == "kasan":
            return True
        early = b.header_count <= 8
        if early and b.kind in ("warning", "bug") and m.kind in ("list-corruption", "refcount", "hard-lockup"):
            return True
        if early and b.kind in ("list-corruption", "refcount") and m.kind in ("warning", "bug", "oops", "invalid-opcode"):
            return True
        return False

    @staticmethod
    def _upgrades(b: _Builder, m: K.Marker) -> bool:
        return b.kind in ("warning", "bug") and m.kind in ("list-corruption", "refcount", "hard-lockup")

    def _close(self, key: str | None, *, truncated: bool, one_line: bool = False) -> None:
        b = self.open.pop(key)
        if one_line:
            b.lines = b.lines[:1]
        self.done.append(_build(b, truncated, self.boot_version))
        self.recent[key] = (b, b.lines[-1][0])

    @staticmethod
    def _complete(b: _Builder) -> bool:
        """Had the open report reached its natural end (so a cut here loses nothing)?"""
        return (b.state == "after" or b.ended_naturally or b.kind in _HEADER_ONLY
                or (b.state == "trace" and any(parse_frame(t.strip()) for _, t in b.lines)))

    def finish(self) -> None:
        """End of input: whatever is open was cut off unless its trace had already ended."""
        for key in list(self.open):
            self._close(key, truncated=not self._complete(self.open[key]))
        self.recent.clear()

    def take(self) -> list[KernelReport]:
        """Finished reports, in input order; a report a following "Kernel panic" may still join
        is held back until the join window has passed (so it is never returned twice)."""
        joinable = {b.start for b, end in self.recent.values() if self.lineno - end <= PANIC_JOIN_WINDOW}
        out = sorted((r for r in self.done if r.start_line not in joinable), key=lambda r: r.start_line)
        self.done = [r for r in self.done if r.start_line in joinable]
        return out


# ---------------------------------------------------------------------------------------
# Turning collected lines into a KernelReport.

def _build(b: _Builder, truncated: bool, boot_version: str | None) -> KernelReport:
    texts = [t for _, t in b.lines]
    text = "\n".join(t.rstrip() for t in texts) + "\n"
    stripped = [t.strip() for t in texts]
    kind, detail = b.kind, b.detail
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
    has_trace_header = any(_TRACE_START.search(s) for s in stripped)
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
                    if _MODULE_CONT.match(cont) and not _FUNC_LIKE.search(cont) and ":" not in cont.replace("[last unloaded:", ""):
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
        if _TRACE_START.search(s):
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
        m = re.search(r"BUG: KCSAN: [\w-]+ in ([A-Za-z_][\w.$]*)", first)
        if m:
            func = m.group(1)
    title = make_title(kind, first, detail, func, extra)
    return KernelReport(
        kind=kind,
        title=title,
        function=func,
        start_line=b.start,
        end_line=b.lines[-1][0],
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
        if name and re.fullmatch(r"[\w-]+", name):
            out.append(name)
    return out


# ---------------------------------------------------------------------------------------
# Entry points.

def scan_lines(lines: Iterable[str]) -> Iterator[KernelReport]:
    """Yield the reports found in ``lines`` (1-based line numbers), in input order."""
    sc = _Scanner()
    anchor = K.ANCHOR_RE.search
    lineno = 0
    for lineno, line in enumerate(lines, 1):
        if sc.open or anchor(line, 0, MAX_LINE_CHARS):
            sc.feed(lineno, line)
            if sc.done and not sc.open:
                yield from sc.take()
    sc.finish()
    yield from sc.take()


def scan_text(text: str) -> list[KernelReport]:
    """All reports in a log given as one string (lines end at "\\n" only, as in a file)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return list(scan_lines(lines))


_BLOCK = 4 << 20
_MAX_BUFFERED_LINE = 16 << 20
_ANCHORS_B = tuple(a.encode() for a in K.ANCHORS)


def scan_stream(fp: BinaryIO, block_size: int = _BLOCK) -> Iterator[KernelReport]:
    """Scan a binary stream without loading it whole (invalid UTF-8 is replaced).

    Blocks of whole lines are searched for anchor substrings; only lines with an anchor,
    and every line while a report is open, go through the per-line parser.
    """
    sc = _Scanner()
    lineno = 0  # lines consumed before the current block
    rest = b""
    skipping_long = False
    while True:
        data = fp.read(block_size)
        if not data:
            break
        if skipping_long:
            nl = data.find(b"\n")
            if nl < 0:
                continue
            data = data[nl + 1:]
            lineno += 1
            skipping_long = False
        buf = rest + data if rest else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            if len(buf) > _MAX_BUFFERED_LINE:
                # A line longer than we will ever look at: keep its head, drop the rest.
                rest = buf[:MAX_LINE_CHARS]
                _feed_block(sc, rest + b"\n", lineno)
                rest = b""
                skipping_long = True
            else:
                rest = buf
            continue
        block, rest = buf[:cut + 1], buf[cut + 1:]
        lineno = _feed_block(sc, block, lineno)
        if sc.done and not sc.open:
            yield from sc.take()
    if rest:
        lineno = _feed_block(sc, rest + b"\n", lineno)
    sc.finish()
    yield from sc.take()


def _feed_block(sc: _Scanner, block: bytes, lineno: int) -> int:
    """Feed one block of complete lines; returns the line count after it."""
    present = [a for a in _ANCHORS_B if a in block]
    cands: list[int] = []
    for a in present:
        pos = block.find(a)
        while pos >= 0:
            cands.append(pos)
            pos = block.find(a, pos + 1)
    cands.sort()
    ci = 0
    pos = 0
    end = len(block)
    while pos < end:
        if not sc.open:
            while ci < len(cands) and cands[ci] < pos:
                ci += 1
            if ci >= len(cands):
                return lineno + block.count(b"\n", pos)
            ls = block.rfind(b"\n", 0, cands[ci]) + 1
            if ls > pos:
                lineno += block.count(b"\n", pos, ls)
                pos = ls
        nl = block.find(b"\n", pos)
        if nl < 0:
            nl = end
        lineno += 1
        sc.feed(lineno, block[pos:min(nl, pos + MAX_LINE_CHARS)].decode("utf-8", "replace"))
        pos = nl + 1
    return lineno
