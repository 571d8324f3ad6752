"""``crashkit oops collect``: one pass over the kernel logs, new reports into the spool.

Default sources are all that exist on the host (kmsg, journal, syslog, pstore, kdump);
``--source`` picks some, or names a log file. Every report found after the source's
cursor becomes a Kerneloops problem directory, or bumps ``count`` of the directory with
the same hash. A report already collected through another source (the same oops is in
kmsg, the journal and kern.log) is counted once. The kernel's refusals to pipe a core dump
(``over core_pipe_limit``, ``pipe failed``; kmsg and journal only) are counted as crashes
in the spool's CCpp directories, once each (:mod:`collectors.corehook.refusals`). A source that fails is logged and
reported in the summary; the others still run. Exit 0 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from coripper.errors import capture_internal_exceptions
from reporter.dumpdir import spool_path

from collectors.corehook.refusals import RefusalTally
from collectors.errors import CollectorError
from collectors.oops import parse
from collectors.oops.cursor import CursorStore
from collectors.oops.kerneloops_dir import HostInfo, OopsDirWriter, occurrence_key
from collectors.oops.sources import LogUnit, default_sources, make_source

log = logging.getLogger(__name__)

# Kinds that are not crashes: reported by ``oops scan`` but given no problem directory.
NOT_CRASHES = frozenset({"oom", "OOM", "oom-kill"})
UNAUTHENTICATED_KEY = "/unauthenticated"  # suffix of the occurrence key of an unauthenticated copy
#: What a damaged or unreadable log legitimately raises out of a source: reported as the
#: source's error, not as a bug (decompressors' own errors are turned into OSError by
#: :mod:`collectors.oops.sources.logfile`).
SOURCE_ERRORS: tuple[type[Exception], ...] = (OSError, CollectorError, EOFError, UnicodeError)

#: Sources whose kernel lines count the kernel's refusals of core dumps (issue 17).
REFUSAL_SOURCES = frozenset({"kmsg", "journal"})


@dataclass
class SourceSummary:
    """What collecting from one source did."""

    source: str
    logs: list[str] = field(default_factory=list)
    reports: int = 0          # reports found after the cursor
    new: int = 0              # problem directories created
    duplicate: int = 0        # existing directories whose count was bumped
    already_seen: int = 0     # the same occurrence was collected before (another source)
    skipped: int = 0          # not crashes (OOM kills)
    refusals: int = 0         # crashes the kernel refused to pipe to the hook, now counted
    dirs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class ReportHandler:
    """Turns reports into directories, once per occurrence (shared by collect and watch)."""

    writer: OopsDirWriter
    store: CursorStore

    def handle(self, report: Any, origin: str, summary: SourceSummary, *,
               unauthenticated: str | None) -> str | None:
        """Record one report; returns the directory created or bumped, if any.
        ``unauthenticated`` is the source's ``LogUnit.unauthenticated`` (None: kernel lines)."""
        summary.reports += 1
        if is_not_crash(report):
            summary.skipped += 1
            return None
        key = occurrence_key(report)
        # An unauthenticated copy is remembered apart, so it never hides the kernel's own copy
        # of the same report; it is itself dropped when either copy was collected.
        keys = [key] if unauthenticated is None else [key, key + UNAUTHENTICATED_KEY]
        if any(self.store.seen_occurrence(k) is not None for k in keys):
            summary.already_seen += 1
            return None
        result = self.writer.write(report, origin=origin, unauthenticated=unauthenticated)
        self.store.add_occurrence(keys[-1], os.path.basename(result.path))
        if result.created:
            summary.new += 1
        else:
            summary.duplicate += 1
        summary.dirs.append(result.path)
        log.info("%s: %s: %s %s", origin, report.title,
                 "new" if result.created else f"duplicate (count {result.count})", result.path)
        return result.path


def is_not_crash(report: Any) -> bool:
    """True for reports that are not crashes (OOM kills)."""
    return str(report.kind).lower().startswith("oom") or report.kind in NOT_CRASHES


def collect(sources: Iterable[Any], spool: str, *, host: HostInfo | None = None) -> list[SourceSummary]:
    """Collect from ``sources`` into ``spool``; never raises for a failing source."""
    os.makedirs(spool, mode=0o755, exist_ok=True)
    writer = OopsDirWriter(spool, host or HostInfo.from_root())
    summaries = []
    with CursorStore(spool) as store:
        handler = ReportHandler(writer, store)
        tally = RefusalTally(spool, store)
        for source in sources:
            summary = SourceSummary(source.name)
            summaries.append(summary)
            # One broken source must not stop the others: what a damaged or unreadable log
            # causes is one line in its summary; anything else is a bug of ours, logged with
            # its traceback, and re-raised under CRASHKIT_STRICT (the tests).
            with capture_internal_exceptions("oops source %s", source.name, logger=__name__,
                                             expected=SOURCE_ERRORS) as failure:
                section = store.section(source.name)
                for unit in source.units(section):
                    _collect_unit(unit, handler, summary, tally)
                    store.save()
            if failure.error is not None:
                msg = f"{source.name}: {_one_line(failure.error)}"
                log.warning("%s", msg)
                summary.errors.append(msg)
            store.save()
    return summaries


def counts_refusals(source: str, unauthenticated: str | None) -> bool:
    """Whether the kernel's refusals of core dumps are counted from this log: the kernel's
    own lines of /dev/kmsg and of the journal only (a forged line must not make up crashes,
    and kern.log repeats what kmsg holds)."""
    return source in REFUSAL_SOURCES and unauthenticated is None


def _collect_unit(unit: LogUnit, handler: ReportHandler, summary: SourceSummary,
                  tally: RefusalTally) -> None:
    summary.logs.append(unit.origin)
    lines = tally.watch(unit.lines) if counts_refusals(unit.source, unit.unauthenticated) else unit.lines
    for report in parse.scan_lines(lines):
        handler.handle(report, unit.origin, summary, unauthenticated=unit.unauthenticated)
    summary.refusals += tally.flush()
    summary.errors.extend(unit.errors)
    unit.finish()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return " ".join((str(exc) or type(exc).__name__).split())


def select_sources(specs: Sequence[str] | None) -> list[Any]:
    """Sources for the ``--source`` values; all existing ones when none are given.

    Raises ``ValueError`` for a value that is neither a source name nor a file.
    """
    if specs:
        chosen: list[Any] = []
        for spec in specs:
            src = make_source(spec)
            if not any(type(s) is type(src) and getattr(s, "path", None) == getattr(src, "path", None)
                       for s in chosen):
                chosen.append(src)
        return chosen
    found = []
    for src in default_sources():
        with capture_internal_exceptions("probing oops source %s", src.name, logger=__name__,
                                         expected=SOURCE_ERRORS) as failure:
            if src.exists():
                found.append(src)
        if failure.error is not None:    # probing must not kill the run either
            log.warning("%s: %s", src.name, _one_line(failure.error))
    return found


def run_collect(args: argparse.Namespace) -> int:
    """Handler of ``crashkit oops collect``."""
    sources = select_sources(getattr(args, "source", None))
    spool = spool_path(getattr(args, "spool", None))
    summaries = collect(sources, spool)
    if getattr(args, "json", False):
        out = {
            "spool": spool,
            "sources": [asdict(s) for s in summaries],
            "dirs": _created(summaries),
            "reports": sum(s.reports for s in summaries),
            "new": sum(s.new for s in summaries),
            "duplicate": sum(s.duplicate for s in summaries),
            "refusals": sum(s.refusals for s in summaries),
        }
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_summary(summaries, spool))
    return 0


def _created(summaries: list[SourceSummary]) -> list[str]:
    return sorted({d for s in summaries for d in s.dirs})


def format_summary(summaries: list[SourceSummary], spool: str) -> str:
    """Human-readable summary, one line per source plus the directories touched."""
    if not summaries:
        return "no kernel log source found"
    lines = []
    for s in summaries:
        text = (f"{s.source}: {s.reports} report(s), {s.new} new, {s.duplicate} duplicate, "
                f"{s.already_seen} already collected, {s.skipped} not crashes")
        if s.refusals:
            text += f", {s.refusals} crash(es) the kernel refused to dump counted"
        if s.errors:
            text += f"; errors: {'; '.join(s.errors)}"
        lines.append(text)
    for d in _created(summaries):
        lines.append(f"  {d}")
    return "\n".join(lines)
