"""Find kernel reports (oopses, BUGs, WARNINGs, panics, lockups, sanitizer and lockdep
reports, OOM kills) in log text. Pure: lines or bytes in, frozen dataclasses out.

Delimiting follows ABRT (docs/formats/libreport.md §5.3) and improves on it: reports end at
``---[ end trace``/``---[ end Kernel panic``/sanitizer ``====`` lines or where the call
trace stops; a ``Kernel panic`` that follows a report joins it; ``Oops:``/trap lines
after a ``BUG:`` line continue it; printk caller ids keep interleaved CPUs apart; a
reboot or the end of input cuts an open report off (``truncated``).

This module only delimits reports (the state machine below); what a delimited report
says (version, CPU/PID, frames, guilty function, title, hash) is read by
:func:`collectors.oops.report.build_report`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from collectors.oops import kinds as K
from collectors.oops.frames import KernelFrame, parse_frame
from collectors.oops.headlines import header_of
from collectors.oops.lines import MAX_LINE_CHARS, strip_prefix
from collectors.oops.prefilter import (
    BOOT_WORDS, QUESTIONABLE_WORDS, WINDOW_WORDS, anchor_lines, chunk_words, has_anchor)
from collectors.oops.report import FUNC_LIKE, TRACE_START, KernelReport, build_report
from collectors.oops.window import TitleWindow
from collectors.oops import possessive

__all__ = ["KernelFrame", "KernelReport", "scan_lines", "scan_text", "scan_stream"]

MAX_REPORT_LINES = 2000  # a call trace that never ends is cut here (truncated)
HEADER_LIMIT = 60  # lines before a call trace; ABRT uses 40 (§5.3 step 4)
BODY_LIMIT = {"kasan": 600, "kmsan": 600, "kcsan": 400, "kfence": 400, "lockdep": 400, "oom": MAX_REPORT_LINES}
PANIC_JOIN_WINDOW = 40  # lines after a report within which a "Kernel panic" still belongs to it
# Panic messages that are the consequence of a preceding report (kernel/exit.c make_task_dead,
# kernel/panic.c check_panic_on_warn, kernel/hung_task.c, kernel/watchdog*.c, mce); any other
# panic ("VFS: Unable to mount root fs") is a report of its own even right after another one.
_PANIC_CONSEQUENCE = possessive.compile(
    r"Fatal exception|panic_on_warn|panic_on_oops|Attempted to kill (?:init|the idle task)"
    r"|Aiee, killing interrupt handler|hung_task: blocked tasks|softlockup: hung tasks|[Hh]ard LOCKUP"
    r"|(?i:machine check)|Fatal hardware error|RCU Stall|rcu_(?:(?!rcu_).)*?stall|Out of memory"
    r"|System is deadlocked on memory"
    r"|Oops|Fatal trap|Fatal exception in interrupt"
)


# ---------------------------------------------------------------------------------------
# Line predicates used while a report is open. Every regex of this package stays linear in
# the line's length (tests/security/test_oops_redos.py): quantifiers followed by something
# they cannot match are possessive, a ".*X" after a literal is searched from the literal's
# first occurrence only ("^(?>.*?LIT)"), and a scan never runs into the next place the
# pattern could start ("rcu_(?:(?!rcu_).)*?stall", "[^()]" instead of "[^)]").

_ABRT_TRACE_START = possessive.compile(r"^\(?\[<[0-9a-f]++>\](?>.*?\+0x).*/0x")
_EQUALS_END = possessive.compile(r"^={20,}+\s*+$")
_END_TRACE = possessive.compile(r"^-++\[ end trace")
_END_PANIC = possessive.compile(r"^-++\[ end (?:Kernel panic|trace)? ?.*Kernel panic")
_CONT_PREFIX = possessive.compile(
    r"^(?:<(?:/?(?:IRQ|NMI|TASK|SOFTIRQ|EOI|MCE)|<EOE>>?|#DF|#MC|EOE)>"
    r"|Code: |RIP: |RIP |EIP: |RSP: |RSP <|ESP: |Last Breaking-Event-Address:|Modules linked in:"
    r"|Hardware name:|Backtrace:|Call [Tt]race:|Exception stack|irq event stamp:|hardirqs last|softirqs last"
    r"|Instruction dump:|Krnl |LR =|--- Exception|--- interrupt|--- \[end|NIP |LR \[|PC is at|LR is at"
    r"|pc : |lr : |sp : |Stack:|Kernel Offset:|CR2: |Unable to access opcode bytes|\? |\(\[<|\[<"
    r"|note: |Dumping ftrace buffer|\(ftrace buffer empty\)|Fixing recursive fault|Rebooting in"
    r"|Shutting down cpus|SMP: stopping|---\[ end|\[[0-9a-f]{8,16}\] )"
)
_CONT_ANY = possessive.compile(r"Comm:|Hardware name:|--- Exception|LR =|<IRQ>|<EOI>|<NMI>|<<EOE>>|<#DF>")
_REGS = possessive.compile(r"^(?:[A-Za-z][A-Za-z0-9_]{0,8}\s?:\s*+[<(]?[0-9a-fA-F]{2,}|r\d{1,2}:[0-9a-f]{8}"
                   r"|[a-z]{1,3}\d{0,2}\s*+: [0-9a-f]{8,})")
# Words of hex (at least 2 digits, a <..> or (..) marks the faulting byte), as in stack and
# code dumps. Possessive quantifiers keep it linear: "(?:[<(]?[0-9a-f]{2,16}[>)]?\s*)+$"
# backtracked exponentially on a long dump line with one stray character at its end.
_HEX_WORD = r"(?:[<(]?[0-9a-fA-F]{2,}+[>)]?)++"
_HEX_DUMP = possessive.compile(rf"^{_HEX_WORD}(?:\s++{_HEX_WORD})*+\s*+$")
_AFTER_END = possessive.compile(
    r"^(?:(?:RIP|EIP|RSP|ESP|Code|CR2|FS|CS|DR\d|PKRU|R[A-Z0-9]{1,3}|pc|lr|sp|x\d++)\s?:"
    r"|Kernel panic - not syncing|Kernel Offset:|-++\[ end Kernel panic|Rebooting in|note: "
    r"|Fixing recursive fault|Dumping ftrace buffer|\s*+\(ftrace buffer empty\)|Shutting down cpus"
    r"|SMP: stopping|oom_reaper: reaped process|Unable to access opcode|---\[ end)"
)
_MCE_ANY = possessive.compile(r"(?i)machine check")
_OOM_END = possessive.compile(r"(?:Out of memory|Memory cgroup out of memory)(?: \([^()]*+\))?: Killed process"
                      r"|^Killed process \d")

# Kinds without a call trace: which lines still belong to them (kernel/workqueue.c
# show_all_workqueues(), arch/x86/kernel/cpu/mce/core.c print_mce()).
_HEADER_ONLY = {
    "workqueue-lockup": possessive.compile(r"^(?:Showing busy workqueues|workqueue \S+: flags=|pool \d+:|\s)"),
    "mce": possessive.compile(r"(?i)hardware error|machine check|^(?:bank \d++:|mce:|kernel panic|tsc |rip |mcg"
                      r"|processor |cpu \d++:|kernel offset|-++\[ end kernel panic)"),
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
    window: TitleWindow | None = None
    truncated: bool = False  # set when the report is closed

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
        # Reports whose title window is still collecting, and closed ones waiting for it.
        self.windows: list[TitleWindow] = []
        self.closed: list[_Builder] = []

    @property
    def idle(self) -> bool:
        return not self.open

    # -- line handling --------------------------------------------------------------------
    def feed(self, lineno: int, raw: str, maybe_anchored: bool = True) -> None:
        """Take one input line (``maybe_anchored`` False: the caller knows it holds no
        anchor, :data:`collectors.oops.kinds.ANCHORS`)."""
        ln = strip_prefix(raw)
        if not ln.kernel:
            return  # other programs' syslog lines and kmsg dictionaries never end a report
        text = ln.text
        stripped = text.strip()
        if not stripped:
            return  # ABRT ignores empty lines too (§5.1)
        self.lineno = lineno
        anchored = maybe_anchored and has_anchor(stripped)
        header = header_of(stripped) if anchored else None
        if self.windows:
            self._offer(lineno, text, ln.caller, ln.stamped, header is not None)
        boot = K.BOOT_RE.match(stripped)
        if boot:
            for key in list(self.open):
                self._close(key, truncated=not self._complete(self.open[key]))
            self.recent.clear()
            self._end_windows()
            if boot.group(1):
                self.boot_version = boot.group(1)
            if header is None or header.kind != "reboot":
                return
        key = ln.caller
        marker = K.classify(stripped, header) if anchored else None
        b = self.open.get(key)
        if b is not None:
            if self._continue(b, key, lineno, text, stripped, marker):
                if header is not None:
                    self._anchor(b, lineno, text, ln.stamped)
                return
        if marker is None:
            return
        if marker.kind == "panic" or (marker.kind == "mce" and stripped.startswith("Kernel panic")):
            prev = self.recent.get(key)
            if (prev is not None and lineno - prev[1] <= PANIC_JOIN_WINDOW and key not in self.open
                    and _PANIC_CONSEQUENCE.search(stripped)):
                builder = prev[0]
                self.done = [r for r in self.done if r.start_line != builder.start]
                self.closed = [b for b in self.closed if b is not builder]
                builder.state = "after"
                builder.add(lineno, text)
                self.open[key] = builder
                del self.recent[key]
                if header is not None:
                    self._anchor(builder, lineno, text, ln.stamped)
                return
        self._start(key, lineno, text, marker, header is not None, ln.stamped)

    def _start(self, key: str | None, lineno: int, text: str, marker: K.Marker, headline: bool,
               stamped: bool) -> None:
        b = _Builder(marker.kind, marker.detail, lineno, key)
        if marker.kind in K.SANITIZER_BODY or marker.kind == "oom":
            b.state = "body"
        b.trace_gate = marker.kind not in K.LOCKDEP_BODY
        b.add(lineno, text)
        self.open[key] = b
        if headline:
            self._anchor(b, lineno, text, stamped)
        self.recent.pop(key, None)
        if marker.kind == "oom" and _OOM_END.search(text.strip()):
            b.state = "after"
            b.ended_naturally = True
        elif marker.kind in K.ONE_LINE:
            b.ended_naturally = True
            self._close(key, truncated=False)

    # -- title windows ----------------------------------------------------------------------
    def _anchor(self, b: _Builder, lineno: int, text: str, stamped: bool) -> None:
        """Start ``b``'s title window at this headline line, unless it has one already."""
        if b.window is not None and (b.window.anchored or b.window.done) or b.kind in K.OWN_TITLE:
            return
        b.window = TitleWindow(b.caller)
        b.window.anchor(lineno, text[:MAX_LINE_CHARS], stamped)
        self.windows.append(b.window)

    def _offer(self, lineno: int, text: str, caller: str | None, stamped: bool, headline: bool) -> None:
        text = text[:MAX_LINE_CHARS]
        for w in self.windows:
            w.offer(lineno, text, caller, stamped, headline)
        if any(w.done for w in self.windows):
            self.windows = [w for w in self.windows if not w.done]
            self._finalize()

    def offer_plain(self, linenos: Sequence[int], texts: Sequence[str], special: bool,
                    questionable: bool = True) -> None:
        """What :meth:`feed` does with each line ``texts[i]`` (line number ``linenos[i]``)
        while no report is open, for lines with a printk timestamp, no caller id and nothing
        that starts or ends a report (``_offer_run`` picks them): offer them to the title
        windows (``special``, ``questionable``: see :meth:`TitleWindow.offer_plain`)."""
        last = 0
        for w in self.windows:
            closed = w.offer_plain(linenos, texts, special, questionable)
            last = max(last, linenos[-1] if closed is None else closed)
        self.lineno = last  # the last line fed: after it every window was done
        if any(w.done for w in self.windows):
            self.windows = [w for w in self.windows if not w.done]
            self._finalize()

    def _end_windows(self) -> None:
        for w in self.windows:
            w.done = True
        self.windows = []
        self._finalize()

    def _finalize(self) -> None:
        """Build the closed reports whose title window is complete."""
        ready = [b for b in self.closed if b.window is None or b.window.done]
        if not ready:
            return
        self.closed = [b for b in self.closed if not (b.window is None or b.window.done)]
        for b in ready:
            window = b.window.lines if b.window is not None else []
            self.done.append(build_report(b.kind, b.detail, b.start, b.lines, truncated=b.truncated,
                                          boot_version=self.boot_version, window=window))

    def _continue(self, b: _Builder, key: str | None, lineno: int, text: str, s: str,
                  marker: K.Marker | None) -> bool:
        """Offer a line to the open report; False when the report ended before this line."""
        if len(b.lines) >= MAX_REPORT_LINES:
            self._close(key, truncated=True)
            return False
        state = b.state
        step = (self._in_body if state == "body" else self._in_after if state == "after"
                else self._in_header if state == "header" else self._in_trace)
        return step(b, key, lineno, text, s, marker)

    def _in_body(self, b: _Builder, key: str | None, lineno: int, text: str, s: str,
                 marker: K.Marker | None) -> bool:
        """A sanitizer's or an OOM kill's body: to its "====" line, end marker or line limit."""
        if b.kind == "oom":
            return self._in_oom_body(b, key, lineno, text, s, marker)
        b.add(lineno, text)
        if _EQUALS_END.match(s) and len(b.lines) > 2:
            b.ended_naturally = True
            self._close(key, truncated=False)
        elif _END_TRACE.match(s):
            b.state, b.ended_naturally = "after", True
        elif len(b.lines) > BODY_LIMIT.get(b.kind, HEADER_LIMIT):
            self._close(key, truncated=True)
        return True

    def _in_oom_body(self, b: _Builder, key: str | None, lineno: int, text: str, s: str,
                     marker: K.Marker | None) -> bool:
        """An OOM kill's body: to its "Killed process" line; a panic that follows takes it over."""
        if marker is not None and marker.kind == "panic":
            b.kind, b.detail, b.state = "panic", marker.detail, "header"
            b.add(lineno, text)
            return True
        if marker is not None and not marker.weak and marker.kind != "oom" and not _MCE_ANY.search(s):
            self._close(key, truncated=True)
            return False
        b.add(lineno, text)
        if _OOM_END.search(s):
            b.state, b.ended_naturally = "after", True
        return True

    def _in_after(self, b: _Builder, key: str | None, lineno: int, text: str, s: str,
                  marker: K.Marker | None) -> bool:
        """After the end marker: register and code dumps and the panic lines still belong."""
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

    def _in_header(self, b: _Builder, key: str | None, lineno: int, text: str, s: str,
                   marker: K.Marker | None) -> bool:
        """Before the call trace: a marker may end the report, join it or upgrade its kind."""
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
        elif TRACE_START.search(s) or _ABRT_TRACE_START.match(s):
            b.state = "trace"
        elif b.header_count > HEADER_LIMIT:
            # ABRT §5.3 step 4: no call trace in sight, keep only the start line.
            self._close(key, truncated=False, one_line=True)
        return True

    def _in_trace(self, b: _Builder, key: str | None, lineno: int, text: str, s: str,
                  marker: K.Marker | None) -> bool:
        """In the call trace: to its end marker or the first line that is not part of a trace."""
        ends = _END_PANIC.match(s) or (b.kind == "ubsan" and _EQUALS_END.match(s))
        if _END_TRACE.match(s):
            b.add(lineno, text)
            b.state, b.ended_naturally = "after", True
            return True
        if ends:
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
        return parse_frame(s) is not None or bool(FUNC_LIKE.search(s) and s[:1] in "([")

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
        b.truncated = truncated
        self.closed.append(b)
        self.recent[key] = (b, b.lines[-1][0])
        self._finalize()

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
        self._end_windows()

    @property
    def settled(self) -> bool:
        """No report open and none waiting for its title window."""
        return not self.open and not self.closed

    def take(self) -> list[KernelReport]:
        """Finished reports, in input order; a report a following "Kernel panic" may still join
        is held back until the join window has passed (so it is never returned twice)."""
        joinable = {b.start for b, end in self.recent.values() if self.lineno - end <= PANIC_JOIN_WINDOW}
        out = sorted((r for r in self.done if r.start_line not in joinable), key=lambda r: r.start_line)
        self.done = [r for r in self.done if r.start_line in joinable]
        return out


# ---------------------------------------------------------------------------------------
# Entry points.

def scan_lines(lines: Iterable[str]) -> Iterator[KernelReport]:
    """Yield the reports found in ``lines`` (1-based line numbers), in input order."""
    sc = _Scanner()
    lineno = 0
    for lineno, line in enumerate(lines, 1):
        if sc.open or sc.windows or has_anchor(line[:MAX_LINE_CHARS]):
            sc.feed(lineno, line)
            if sc.done and sc.settled:
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
        if sc.done and sc.settled:
            yield from sc.take()
    if rest:
        lineno = _feed_block(sc, rest + b"\n", lineno)
    sc.finish()
    yield from sc.take()


def _feed_block(sc: _Scanner, block: bytes, lineno: int) -> int:
    """Feed one block of complete lines; returns the line count after it.

    Idle, the scanner only sees the lines the prefilter names; while only title windows
    are open, runs of plain ``[ seconds] text`` lines go to them in bulk
    (:meth:`_Scanner.offer_plain`); while a report is open, every line is fed.
    """
    cands = anchor_lines(block)
    ci = 0
    pos = 0
    end = len(block)
    while pos < end:
        if not sc.open:
            while ci < len(cands) and cands[ci] < pos:
                ci += 1
            nxt = cands[ci] if ci < len(cands) else end
            if not sc.windows:
                if nxt >= end:
                    return lineno + block.count(b"\n", pos)
                lineno += block.count(b"\n", pos, nxt)
                pos = nxt
            elif nxt > pos:
                pos, lineno = _offer_run(sc, block, pos, nxt, lineno)
                continue
        nl = block.find(b"\n", pos)
        if nl < 0:
            nl = end
        lineno += 1
        while ci < len(cands) and cands[ci] < pos:
            ci += 1
        anchored = ci < len(cands) and cands[ci] == pos
        sc.feed(lineno, block[pos:min(nl, pos + MAX_LINE_CHARS)].decode("utf-8", "replace"), anchored)
        pos = nl + 1
    return lineno


_RUN_BYTES = 16 << 10  # decoded at a time for the title windows (they take at most WINDOW_LINES lines)
# A line the bulk path may hand to the title windows: a printk timestamp, then text that is
# neither a caller id, a nested prefix nor (below) a console login prompt or a boot line.
_PLAIN = possessive.compile(r"\[ *+\d++\.\d++\] ?(?![\[<*])")
_BOOT_STARTS = ("Command line: ", "Kernel command line: ", "Booting ", "-- ")
# The same, for a whole stretch at once: the message, "" when it is blank (the scanner ignores
# a blank line; "[^\S\n]" is any blank but the line's end).
_PLAIN_LINE = possessive.compile(r"^\[ *+\d++\.\d++\] ?(?![\[<*])(.*\S.*|[^\S\n]*+)$", re.M)


def _offer_run(sc: _Scanner, block: bytes, pos: int, stop: int, lineno: int) -> tuple[int, int]:
    """Give the title windows the lines of ``block[pos:stop]`` (no anchor on any of them),
    about :data:`_RUN_BYTES` of them; returns the new ``(pos, lineno)``.

    Plain lines (``_PLAIN``, no ``\\r``, not longer than MAX_LINE_CHARS) are exactly what
    :meth:`_Scanner.feed` would reduce to a timestamped, caller-less kernel line that
    neither starts nor ends a report: they go to :meth:`_Scanner.offer_plain` together;
    any other line is fed on its own."""
    cut = stop if stop - pos <= _RUN_BYTES else block.rfind(b"\n", pos, pos + _RUN_BYTES) + 1
    if cut <= pos:
        cut = block.find(b"\n", pos, stop) + 1  # one line longer than _RUN_BYTES
    chunk = block[pos:cut]
    raws = chunk.split(b"\n")
    raws.pop()  # the chunk ends with a newline
    found = chunk_words(chunk)
    if "\r" in found or " login: " in found or max(map(len, raws)) > MAX_LINE_CHARS:
        for raw in raws:
            lineno += 1
            if sc.windows and not sc.open:
                sc.feed(lineno, raw[:MAX_LINE_CHARS].decode("utf-8", "replace"), False)
        return cut, lineno
    special = bool(found & WINDOW_WORDS)
    text = chunk.decode("utf-8", "replace")
    count = len(raws)
    if not found & BOOT_WORDS:
        msgs = _PLAIN_LINE.findall(text)
        if len(msgs) == count:  # all plain, the common case: hand them over at once
            questionable = bool(found & QUESTIONABLE_WORDS)
            if "" not in msgs:
                sc.offer_plain(range(lineno + 1, lineno + 1 + count), msgs, special, questionable)
            else:
                keep = [i for i, msg in enumerate(msgs) if msg]
                if keep:
                    sc.offer_plain([lineno + 1 + i for i in keep], [msgs[i] for i in keep], special, questionable)
            return cut, lineno + count
    lines = text.split("\n")
    lines.pop()
    _offer_mixed(sc, lines, lineno, special)
    return cut, lineno + count


def _offer_mixed(sc: _Scanner, lines: list[str], lineno: int, special: bool) -> None:
    """:func:`_offer_run` for lines of which some are not plain: runs of plain ones go to
    the windows together, the others through :meth:`_Scanner.feed`, until no window is open."""
    numbers: list[int] = []
    run: list[str] = []
    for i, line in enumerate(lines, lineno + 1):
        m = _PLAIN.match(line)
        if m is not None:
            msg = line[m.end():]
            stripped = msg.strip()
            if not stripped:
                continue  # the scanner ignores an empty line altogether
            if not stripped.startswith(_BOOT_STARTS):
                numbers.append(i)
                run.append(msg)
                continue
        if run:
            sc.offer_plain(numbers, run, special)
            numbers, run = [], []
            if not sc.windows:
                return  # idle again: the rest holds no anchor
        sc.feed(i, line, False)
        if not sc.windows:
            return
    if run:
        sc.offer_plain(numbers, run, special)
