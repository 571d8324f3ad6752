"""Kernel reports for the bundle: read every kernel log source through the oops collector
without touching its cursors, and fold the occurrences into one entry per report (pure
helpers for the line times and the folding)."""

from __future__ import annotations

import calendar
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_MONO = re.compile(r"^(?:<\d+>)?\[\s*(\d+)\.(\d+)\]")
_SHORT = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                                       "Oct", "Nov", "Dec"), 1)}
MAX_TEXT = 64 << 10


def line_time(line: str, boot_time: float | None, now: float) -> float | None:
    """Unix time of a log line from its prefix: ``[sec.usec]`` since *boot_time*, a syslog
    ``Mon DD HH:MM:SS`` (this year, or last year if that is in the future) or ISO 8601 (UTC
    when no zone is given; good enough for a timeline)."""
    m = _MONO.match(line)
    if m:
        return boot_time + int(m.group(1)) + int(m.group(2)) / 10 ** len(m.group(2)) if boot_time else None
    m = _ISO.match(line)
    if m:
        return float(calendar.timegm(tuple(int(g) for g in m.groups()) + (0, 0, 0)))
    m = _SHORT.match(line)
    if m and m.group(1) in _MONTHS:
        year = time.localtime(now).tm_year
        for y in (year, year - 1):
            ts = time.mktime((y, _MONTHS[m.group(1)], int(m.group(2)), int(m.group(3)), int(m.group(4)),
                              int(m.group(5)), 0, 0, -1))
            if ts <= now + 86400:
                return ts
    return None


@dataclass
class FoldedReport:
    """One kernel report with every occurrence of it folded in."""

    key: str
    title: str
    kind: str
    text: str
    tainted: str = ""
    count: int = 0
    first_seen: float | None = None
    last_seen: float | None = None
    sources: set[str] = field(default_factory=set)
    times: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "kind": self.kind, "count": self.count,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "sources": sorted(self.sources),
                "tainted": self.tainted, "times": self.times[:1000], "text": self.text}


def fold(occurrences: Iterable[tuple[Any, str, float | None]]) -> list[FoldedReport]:
    """``(KernelReport, origin, time)`` occurrences, already de-duplicated across sources, to
    one :class:`FoldedReport` per duphash (title when there is none), most frequent first."""
    out: dict[str, FoldedReport] = {}
    for report, origin, when in occurrences:
        key = report.duphash or report.title
        f = out.get(key)
        if f is None:
            f = out[key] = FoldedReport(key, report.title, report.kind, report.text[:MAX_TEXT], report.tainted)
        f.count += 1
        f.sources.add(origin.split(" ")[0] if origin.startswith(("journal", "pstore")) else origin)
        if when is not None:
            f.times.append(when)
            f.first_seen = when if f.first_seen is None else min(f.first_seen, when)
            f.last_seen = when if f.last_seen is None else max(f.last_seen, when)
    return sorted(out.values(), key=lambda f: (-f.count, f.title))


def collect_reports(boot_time: float | None, since: float, now: float | None = None) -> tuple[list[FoldedReport], list[str]]:
    """Every source that exists, read from the start (no cursor is stored); returns the folded
    reports seen since *since* (or of unknown time) and the sources' errors."""
    from collectors.oops.kerneloops_dir import occurrence_key
    from collectors.oops.parse import scan_lines
    from collectors.oops.sources import default_sources
    from collectors.oops.sources.logfile import READ_ERRORS
    from coripper.errors import capture_internal_exceptions

    now = time.time() if now is None else now
    seen: set[str] = set()
    occ: list[tuple[Any, str, float | None]] = []
    errors: list[str] = []
    for src in default_sources():
        # One broken source must not lose the others: what a damaged log or a failing tool
        # raises is that source's error; anything else is a bug (re-raised under the tests).
        with capture_internal_exceptions("kernel log source %s", src.name, expected=READ_ERRORS,
                                         logger=__name__) as failed:
            if src.exists():
                for unit in src.units({}):
                    lines = list(unit.lines)
                    fallback = _mtime(unit.origin) if src.name in ("pstore", "kdump") else None
                    for r in scan_lines(lines):
                        key = occurrence_key(r)
                        if key in seen:
                            continue
                        seen.add(key)
                        raw = lines[r.start_line - 1] if 0 < r.start_line <= len(lines) else ""
                        when = line_time(raw, boot_time if src.name == "kmsg" else None, now) or fallback
                        if when is None or when >= since:
                            occ.append((r, unit.origin, when))
                    errors.extend(unit.errors)
        if failed.error is not None:
            exc = failed.error
            errors.append(f"{src.name}: {' '.join(str(exc).split()) or type(exc).__name__}")
    return fold(occ), errors


def _mtime(origin: str) -> float | None:
    path = origin.split(" ", 1)[-1]
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
