"""One kernel report as a typed record, and reading its details from the report's lines.

:func:`build_report` is the second half of :mod:`collectors.oops.parse`: the scanner
delimits a report (which lines belong to it); this module extracts what the lines say
(kernel version, CPU/PID/comm, hardware, modules, RIP, the main call trace, taint, the
guilty function, title and ABRT duphash). Pure: lines in, a frozen dataclass out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collectors.oops.frames import KernelFrame, format_frame, parse_frame, parse_ip_line
from collectors.oops.headlines import header_of
from collectors.oops.koops_hash import abrt_duphash
from collectors.oops.taint import taint_meanings, tainted_letters
from collectors.oops.title import fallback_function, fallback_title, headline_title
from collectors.oops import possessive

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
TRACE_START = possessive.compile(r"(?i)call trace:|^backtrace:|^stack backtrace:")
FUNC_LIKE = possessive.compile(r"(?<![\w.$])[\w.$]++\+0x[0-9a-f]++/0x[0-9a-f]")
# Where the main trace of a report with several sections (KASAN, lockdep, NMI backtraces) ends.
_SECTION_BREAK = possessive.compile(
    r"^(?:Allocated by task|Freed by task|Last potentially related|Second to last potentially|The buggy address"
    r"|Memory state around|-> #\d|Sending NMI|NMI backtrace|Showing all locks|Mem-Info:|Tasks state"
    r"|(?:read|write)(?:\s\(marked\))? to 0x|value changed:|Uninit was (?:created|stored)|Local variable"
    r"|kfence-#|Reported by Kernel Concurrency)"
)

# Report details.
# The version: the run of non-blank characters after the marker ("(" never occurs in one; a
# scan that could cross "(" would run into every later "(" of a line made of them).
_VERSION = possessive.compile(r"(?:Tainted: [A-Z ]*+(?:-++ )?|Not tainted|kernel-|\()\s*+(\d++\.\d++(?:\.\d++)?+[^\s)#(]*+)\)? #")
_CPU_PID_COMM = possessive.compile(r"CPU: (\d++) (?:UID: \d++ )?PID: (\d++) Comm: (\S++)")
_PID_COMM = possessive.compile(r"Pid: (\d++), comm: (\S++)")
_WARN_CPU_PID = possessive.compile(r"WARNING: CPU: (\d++) PID: (\d++) at")
_PROCESS = possessive.compile(r"Process (\S++) \(pid: (\d++)")
_EIP_CPU = possessive.compile(r"EFLAGS: [0-9a-f]++ CPU: (\d++)")
# The comm may hold ":" and "(": the last ":PID blocked" / the first ")" after the first marker.
_HUNG = possessive.compile(r"^(?>.*?INFO: task )(.+):(\d++) blocked (?:in I/O wait )?for more than")
_OOM_VICTIM = possessive.compile(r"^(?>.*?Kill(?:ed)? process (\d++) \()([^)]*+)\)")
_OOM_INVOKER = possessive.compile(r"(?<!\S)(\S++) invoked oom-killer:")
_HARDWARE = possessive.compile(r"Hardware name: (.*)")
_MODULES = possessive.compile(r"Modules linked in:(.*)")
_MODULE_CONT = possessive.compile(r"^\s*+[\w-]++(?:\([A-Z+-]++\))*+(?:\s++[\w-]++(?:\([A-Z+-]++\))*+)*+"
                          r"(?:\s++\[last unloaded: [^\]]*+\])?\s*+$")
_MODULE_NAME = possessive.compile(r"[\w-]+")
_IRQ_ENTER = ("<IRQ>", "<NMI>", "<SOFTIRQ>")
_NOT_FRAMES = ("RIP:", "EIP:", "Code:", "Modules linked in:")


def extract_version(stripped: Sequence[str], boot_version: str | None) -> str | None:
    """Kernel version from the ``CPU: ... Tainted: ... 6.1.0 #1`` style line (else the
    boot's ``Linux version``)."""
    for i, s in enumerate(stripped):
        if "Tainted" in s or "tainted" in s or "#" in s:
            m = _VERSION.search(s)
            if m and ("Pid" in s or "comm" in s or "CPU" in s or "Comm" in s or "EFLAGS" in s or i < 4):
                return m.group(1)
    return boot_version


def extract_task(stripped: Sequence[str]) -> tuple[int | None, int | None, str | None]:
    """``(cpu, pid, comm)`` of the task the report was made in; each the first one named."""
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    for s in stripped:
        if cpu is not None and pid is not None and comm is not None:
            break
        for rx, has_comm in ((_CPU_PID_COMM, True), (_WARN_CPU_PID, False)):
            m = rx.search(s)
            if m:
                cpu = cpu if cpu is not None else int(m.group(1))
                pid = pid if pid is not None else int(m.group(2))
                if has_comm and comm is None:
                    comm = m.group(3)
        for rx in (_PID_COMM, _HUNG):
            m = rx.search(s)
            if m:
                pid = pid if pid is not None else int(m.group(2) if rx is _HUNG else m.group(1))
                comm = comm or (m.group(1) if rx is _HUNG else m.group(2))
        m = _PROCESS.search(s)
        if m:
            comm = comm or m.group(1)
            pid = pid if pid is not None else int(m.group(2))
        m = _EIP_CPU.search(s)
        if m and cpu is None:
            cpu = int(m.group(1))
    return cpu, pid, comm


def extract_hardware(stripped: Sequence[str]) -> str | None:
    """The ``Hardware name:`` (DMI) of the machine."""
    for s in stripped:
        m = _HARDWARE.search(s)
        if m:
            return m.group(1).strip()
    return None


def extract_modules(stripped: Sequence[str]) -> list[str]:
    """Module names of ``Modules linked in:``, with its continuation lines."""
    for i, s in enumerate(stripped):
        m = _MODULES.search(s)
        if not m:
            continue
        modules = _module_names(m.group(1))
        for cont in stripped[i + 1:i + 4]:
            if _MODULE_CONT.match(cont) and not FUNC_LIKE.search(cont) and ":" not in cont.replace("[last unloaded:", ""):
                modules += _module_names(cont)
            else:
                break
        return modules
    return []


def extract_rip(stripped: Sequence[str]) -> KernelFrame | None:
    """The first instruction-pointer line (RIP:, EIP:, pc :, NIP, PSW...) as a frame."""
    for s in stripped:
        f = parse_ip_line(s)
        if f is not None:
            return f
    return None


def extract_frames(kind: str, stripped: Sequence[str]) -> list[KernelFrame]:
    """The frames of the report's main call trace: from the first ``Call Trace:`` (for
    lockdep, the one after ``stack backtrace:``) to the next section or trace."""
    frames: list[KernelFrame] = []
    has_trace_header = any(TRACE_START.search(s) for s in stripped)
    gate = kind == "lockdep"
    collecting = False
    for s in stripped:
        if gate:
            gate = not s.startswith("stack backtrace:")
            continue
        if TRACE_START.search(s):
            if collecting and frames:
                break
            collecting = True
            continue
        if not (collecting or not has_trace_header):
            continue
        if frames and _SECTION_BREAK.match(s):
            break
        if s.startswith(_NOT_FRAMES):
            continue
        f = parse_frame(s)
        if f is not None:
            frames.append(f)
            if len(frames) >= MAX_FRAMES:
                break
    return frames


def extract_oom(stripped: Sequence[str]) -> dict[str, str]:
    """What an OOM report's title names: the victim, a memcg kill, the invoking task."""
    extra: dict[str, str] = {}
    for s in stripped:
        m = _OOM_VICTIM.search(s)
        if m:
            extra["victim"] = m.group(2)
            if "Memory cgroup" in s:
                extra["memcg"] = "1"
        m = _OOM_INVOKER.search(s)
        if m:
            extra.setdefault("invoker", m.group(1))
    return extra


def extract_title(kind: str, stripped: Sequence[str], window: Sequence[str], rip: KernelFrame | None,
                  frames: Sequence[KernelFrame]) -> tuple[str, str | None]:
    """``(title, guilty function)``: from the report's first headline and the lines after
    it (``window``, which starts at that headline; empty: the report has none), else by
    the fallback rules of :mod:`collectors.oops.title`."""
    header = header_of(window[0]) if window else None
    function = fallback_function(rip, frames)
    if header is not None:
        found = headline_title(window, header)
        # a title without a function (a panic message, say) still has a culprit in its stack
        return found.title, found.function or function
    extra = extract_oom(stripped) if kind == "oom" else {}
    return fallback_title(kind, stripped[0] if stripped else "", function, extra), function


def default_window(texts: Sequence[str]) -> list[str]:
    """The lines a report's title is read from when the scanner kept no title window: its
    own lines from its first headline (:func:`collectors.oops.headlines.header_of`) on."""
    first = next((i for i, t in enumerate(texts) if header_of(t) is not None), len(texts))
    return list(texts[first:])


def build_report(kind: str, detail: str, start: int, lines: list[tuple[int, str]], *,
                 truncated: bool, boot_version: str | None, window: Sequence[str] | None = None) -> KernelReport:
    """The :class:`KernelReport` for one delimited report: ``lines`` are its ``(line number,
    text)`` pairs, ``kind``/``detail`` what its first line matched (:mod:`.kinds`), ``start``
    its first line number; ``window`` the lines its title is read from
    (:class:`collectors.oops.window.TitleWindow`; default: its own lines from its first
    headline on); ``boot_version``
    is used when the report does not name a kernel version."""
    texts = [t for _, t in lines]
    text = "\n".join(t.rstrip() for t in texts) + "\n"
    stripped = [t.strip() for t in texts]
    rip = extract_rip(stripped)
    frames = extract_frames(kind, stripped)
    if window is None:
        window = default_window(texts)
    title, function = extract_title(kind, stripped, window, rip, frames)
    cpu, pid, comm = extract_task(stripped)
    letters = tainted_letters(text)
    return KernelReport(
        kind=kind,
        title=title,
        function=function,
        start_line=start,
        end_line=lines[-1][0],
        kernel_version=extract_version(stripped, boot_version),
        tainted=letters,
        taint_meanings=taint_meanings(letters),
        cpu=cpu,
        pid=pid,
        comm=comm,
        hardware=extract_hardware(stripped),
        modules=tuple(extract_modules(stripped)),
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
