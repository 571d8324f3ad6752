"""Crashes the kernel refused to pipe to the hook, counted from the kernel's own log lines.

With a ``core_pipe_limit``, or when the hook cannot be run at all, the kernel skips the dump
and says so in its log, naming the pid (in the crashing task's own pid namespace) and comm:

* ``coredump: 4242(crasher): over core_pipe_limit, skipping core dump`` (Linux 6.10 and
  later: every failure of fs/coredump.c has this shape), ``...: |/path pipe failed``, ...;
* before that, ``Pid 4242(crasher) over core_pipe_limit`` followed by ``Skipping core dump``,
  and ``Core dump to |/path pipe failed``;
* ``vfs_coredump: 4 callbacks suppressed``: the newer messages are rate-limited (10 per 5 s);
  this line says how many were not printed, without naming them.

:func:`parse_refusal` reads one line (pure). :func:`account` turns refusals into counted
crashes: in the newest problem directory of the same program (``comm``: the executable's
first 15 bytes), else in a minimal directory whose ``reason`` says why there is no core;
suppressed refusals go to one directory of unknown programs. Each is also added to
``counted_without_core`` (:mod:`.shedding`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from collectors.corehook import dedup, hooklog
from collectors.corehook.shedding import count_without_core
from reporter import elements
from reporter.dumpdir import DumpDir, iter_problem_dirs

_NEW = re.compile(r"coredump: (\d++)\((.{0,16}?)\): (.{1,200}+)$")
_OLD_LIMIT = re.compile(r"Pid (\d++)\((.{0,16}?)\) over core_pipe_limit$")
_OLD_PIPE = re.compile(r"Core dump to (\|\S{1,200}+) pipe failed$")
_SUPPRESSED = re.compile(r"(?<![\w.])(\w{1,80}+): (\d++) callbacks suppressed$")
#: Messages of fs/coredump.c that are not refusals of a dump (they follow one).
_NOT_A_REFUSAL = ("Skipping core dump", "Aborting core")
REFUSAL_ELEMENT = "crash_signature_refusal"
COMM_LEN = 15


@dataclass(frozen=True)
class Refusal:
    """One crash the kernel did not pipe (pid and comm when named), or *suppressed* > 0
    crashes it did not even name."""

    reason: str
    pid: int | None = None
    comm: str | None = None
    suppressed: int = 0


def parse_refusal(line: str) -> Refusal | None:
    """The refusal a kernel log message (without its prefix) reports, if any (pure)."""
    text = line.strip()
    m = _NEW.search(text)
    if m:
        return Refusal(m.group(3), int(m.group(1)), m.group(2))
    m = _OLD_LIMIT.search(text)
    if m:
        return Refusal("over core_pipe_limit", int(m.group(1)), m.group(2))
    m = _OLD_PIPE.search(text)
    if m:
        return Refusal(f"core dump to {m.group(1)} pipe failed")
    m = _SUPPRESSED.search(text)
    if m and "coredump" in m.group(1) and int(m.group(2)) > 0:
        return Refusal("refusals the kernel did not print", suppressed=int(m.group(2)))
    return None


def _comm_of(path: str) -> str:
    try:
        fd = os.open(os.path.join(path, "executable"), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        exe = os.read(fd, 4096).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)
    return os.path.basename(exe)[:COMM_LEN]


def _newest_of(spool: str, comm: str) -> str | None:
    best: tuple[int, str] | None = None
    for path in iter_problem_dirs(spool):
        if _comm_of(path) != comm:
            continue
        with DumpDir.open(path, readonly=True) as dd:
            when = dd.load_int("last_occurrence") or dd.time() or 0
        if best is None or when > best[0]:
            best = (when, path)
    return best[1] if best else None


def _minimal(refusal: Refusal, when: float) -> dict[str, bytes]:
    who = refusal.comm or "unknown program"
    out = {"time": elements.format_number(int(when)), "last_occurrence": elements.format_number(int(when)),
           "type": b"CCpp", "analyzer": b"CCpp", "uid": b"0", "kernel": os.uname().release.encode(),
           "reason": f"{who} killed".encode(), "kernel_refusal": refusal.reason.encode()}
    if refusal.pid is not None:
        out["pid"] = elements.format_number(refusal.pid)
    if refusal.comm is not None:
        out["comm"] = refusal.comm.encode()
    return out


_KMSG_STAMP = re.compile(r"^<\d{1,4}>\[\s*(\d{1,12})\.(\d{1,9})\]")
_SYSLOG_STAMP = re.compile(r"^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(\.\d{1,9})? ")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def boot_realtime() -> float:
    """The wall-clock time this boot's kernel log stamps count from (CLOCK_MONOTONIC's zero)."""
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def line_time(line: str, boot: float | None = None, now: float | None = None) -> tuple[float, str] | None:
    """Wall-clock time of a kernel log line and a mark that names the line exactly: a
    ``<L>[sec.usec]`` (kmsg, ``dmesg --raw``) stamp counted from *boot* (default: this boot;
    mark ``k<stamp>``), or a journal ``short-precise`` / syslog ``Mon DD HH:MM:SS[.frac]``
    local time in the last year (mark :func:`journal_mark`); ``None`` without either."""
    m = _KMSG_STAMP.match(line)
    if m:
        start = boot_realtime() if boot is None else boot
        return start + float(f"{m.group(1)}.{m.group(2)}"), f"k{m.group(1)}.{m.group(2)}"
    m = _SYSLOG_STAMP.match(line)
    if m is None or m.group(1) not in _MONTHS:
        return None
    now = time.time() if now is None else now
    year = time.localtime(now).tm_year
    fields = (_MONTHS.index(m.group(1)) + 1, int(m.group(2)), int(m.group(3)), int(m.group(4)),
              int(m.group(5)))
    try:
        when = time.mktime((year, *fields, 0, 0, -1))
        if when > now + 86400:  # December's line read in January
            when = time.mktime((year - 1, *fields, 0, 0, -1))
    except (OverflowError, ValueError):
        return None
    when += float(m.group(6)) if m.group(6) else 0.0
    return when, journal_mark(when)


def journal_mark(when: float) -> str:
    """The mark of a journal entry logged at *when* (its realtime in microseconds; pure)."""
    return f"j{round(when * 1e6)}"


def refusal_key(refusal: Refusal) -> str:
    """What tells two refusals apart besides their time (pure)."""
    return f"{refusal.pid}\0{refusal.comm}\0{refusal.reason}\0{refusal.suppressed}"


#: Refusals that are not crashes to count: the kernel's recursion guard for core-dump
#: helpers (the hook's own crashes, which it never counts either).
NOT_COUNTED = ("RLIMIT_CORE is set to 1",)


class RefusalStore(Protocol):
    """Where counted refusals are remembered (:class:`collectors.oops.cursor.CursorStore`)."""

    def seen_refusal(self, key: str, when: float, mark: str) -> bool: ...

    def add_refusal(self, key: str, when: float, mark: str) -> None: ...


class RefusalTally:
    """Refusals found in kernel log lines, counted once each: the same line read again (the
    cursor was not saved before the collector stopped) has the same mark; the same refusal
    read through the other source (the journal holds what /dev/kmsg held, on another clock)
    has the same key and a time close to its own (*store* decides)."""

    def __init__(self, spool: str, store: RefusalStore) -> None:
        self.spool = spool
        self.store = store
        self.pending: list[tuple[Refusal, float, str]] = []

    def see(self, line: str, when: float | None = None, boot: float | None = None) -> None:
        """Note *line* if it is a refusal; *when*: the realtime of its journal entry, else
        its time is read from its stamp (kmsg stamps count from *boot*)."""
        if "core" not in line and "Core" not in line:
            return  # the common case, before any regular expression
        refusal = parse_refusal(line)
        if refusal is None or any(text in refusal.reason for text in NOT_COUNTED):
            return
        stamp = (when, journal_mark(when)) if when is not None else line_time(line, boot)
        if stamp is None:
            now = time.time()
            stamp = now, journal_mark(now)
        self.pending.append((refusal, *stamp))

    def watch(self, lines: Iterable[str]) -> Iterator[str]:
        """*lines*, passed on unchanged, each seen by :meth:`see`."""
        boot = boot_realtime()
        for line in lines:
            self.see(line, boot=boot)
            yield line

    def flush(self) -> int:
        """Count the refusals seen since the last flush that *store* does not know yet."""
        counted = 0
        for refusal, when, mark in self.pending:
            key = refusal_key(refusal)
            if self.store.seen_refusal(key, when, mark):
                continue
            counted += account(self.spool, [refusal], when)
            self.store.add_refusal(key, when, mark)
        self.pending.clear()
        return counted


def account(spool: str, refusals: list[Refusal], when: float | None = None) -> int:
    """Count each refusal as a crash (module docstring); returns how many were counted."""
    now = time.time() if when is None else when
    counted = 0
    for refusal in refusals:
        occurrences = refusal.suppressed or 1
        why = f"the kernel refused it: {refusal.reason}"
        target = _newest_of(spool, refusal.comm) if refusal.comm else None
        if target is not None:
            dedup.bump(target, now, by=occurrences, without_core=occurrences)
        else:
            key = hashlib.sha1(f"refusal\0{refusal.comm or ''}".encode("utf-8", "replace")).hexdigest()
            name = f"ccpp-{elements.iso_date(int(now))}-refused"
            target, _ = count_without_core(spool, key, now, why, name,
                                           functools.partial(_minimal, refusal, now),
                                           element=REFUSAL_ELEMENT, by=occurrences)
        hooklog.log(f"kernel refused the core of {refusal.comm or 'unknown programs'}"
                    f" ({occurrences}x: {refusal.reason}): counted in {target}")
        counted += occurrences
    return counted
