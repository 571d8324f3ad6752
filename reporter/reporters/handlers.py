"""What a delivered report leaves in its problem directory (docs/formats/libreport.md §2, §4.3).

* upload: ``upload: URL=<target without credentials>``;
* uReport: ``uReport: BTHASH=<bthash>``, ``ABRT Server: URL=<server>/reports/bthash/<bthash>``,
  one line per ``reported_to`` item of the reply (``URL=`` for type url, ``BTHASH=`` for
  bthash), one per solution with a URL, and the solutions' text in ``not-reportable``;
  ``result: true`` means the server already knew the problem;
* Sentry: ``Sentry: URL=<server> MSG=event <event_id>``.

The same code runs right after a direct delivery and when a flush delivers a queued entry,
so the directory ends up the same either way. A directory deleted meanwhile is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reporter.dumpdir import DumpDir
from reporter.errors import ProblemDirError
from reporter.outbox import Entry
from reporter.reported_to import ReportResult

if TYPE_CHECKING:  # delivery imports requests: not for a reporter that has nothing to send
    from reporter.reporters.delivery import Outcome

Log = Callable[[str], None]


@dataclass
class Delivered:
    """What the reply said, beyond "stored"."""

    known: bool = False
    message: str = ""
    bthash: str | None = None
    lines: list[str] = field(default_factory=list)
    not_reportable: str | None = None


def concat_path(base: str, name: str) -> str:
    """libreport's ``concat_path_file``: one ``/`` between *base* and *name*."""
    return base.rstrip("/") + "/" + name.lstrip("/")


def _line(label: str, *, url: str | None = None, bthash: str | None = None, msg: str | None = None,
          workflow: str | None = None, when: float | None = None) -> str:
    return ReportResult(label=label, time=int(when) if when else None, url=url, bthash=bthash,
                        workflow=workflow or None, msg=msg).format()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def ureport_reply(doc: Any, server: str) -> Delivered:
    """The lines and facts of a FAF ``/reports/new/`` success reply (pure)."""
    out = Delivered()
    if not isinstance(doc, dict):
        return out
    out.known = doc.get("result") is True or str(doc.get("result")).lower() == "true"
    out.message = str(doc.get("message") or "")
    bthash = doc.get("bthash")
    if isinstance(bthash, str) and bthash:
        out.bthash = bthash
        out.lines.append(f"uReport: BTHASH={bthash}")
        out.lines.append(f"ABRT Server: URL={concat_path(concat_path(server, 'reports/bthash/'), bthash)}")
    for item in doc.get("reported_to") or []:
        if not isinstance(item, dict):
            continue
        reporter, value, kind = item.get("reporter"), item.get("value"), item.get("type")
        if not isinstance(reporter, str) or not isinstance(value, str) or not reporter or ":" in reporter:
            continue
        prefix = {"url": "URL=", "bthash": "BTHASH="}.get(str(kind).lower(), "") if kind else ""
        out.lines.append(_one_line(f"{reporter}: {prefix}{value}"))
    solutions = [s for s in doc.get("solutions") or [] if isinstance(s, dict)
                 and isinstance(s.get("cause"), str) and isinstance(s.get("note"), str)]
    if solutions:
        if len(solutions) == 1:
            text = f"Your problem seems to be caused by {solutions[0]['cause']}\n\n{solutions[0]['note']}\n"
        else:
            text = "Your problem seems to be caused by one of the following:\n" + "".join(
                f"\n* {s['cause']}\n\n{s['note']}\n" for s in solutions)
        out.not_reportable = text
        for s in solutions:
            if isinstance(s.get("url"), str) and s["url"] and ":" not in s["cause"]:
                out.lines.append(_one_line(f"{s['cause']}: URL={s['url']}"))
    return out


def result_of(entry: Entry, outcome: Outcome) -> Delivered:
    """What a delivered *entry* adds to its directory (pure)."""
    ctx = entry.context
    workflow = ctx.get("workflow")
    if entry.kind == "upload":
        return Delivered(lines=[_line("upload", url=ctx.get("public_url") or entry.url, workflow=workflow)])
    if entry.kind == "ureport":
        return ureport_reply(outcome.json(), ctx.get("server", ""))
    if entry.kind == "sentry":
        return Delivered(lines=[_line("Sentry", url=ctx.get("server"), workflow=workflow,
                                      msg=f"event {ctx.get('event_id', entry.id)}")])
    return Delivered()


def apply(entry: Entry, outcome: Outcome, log: Log | None = None) -> Delivered:
    """Write what *entry*'s delivery means into its problem directory, if it still exists."""
    done = result_of(entry, outcome)
    if entry.dump_dir and (done.lines or done.not_reportable):
        try:
            with DumpDir.open(entry.dump_dir, timeout=30) as dd:
                for line in done.lines:
                    dd.add_reported_to(line)
                if done.not_reportable:
                    dd.save_text("not-reportable", done.not_reportable)
                if entry.kind == "ureport":
                    dd.save_int("ureports_counter", (dd.load_int("ureports_counter") or 0) + 1)
        except (ProblemDirError, OSError) as exc:
            if log is not None:
                log(f"{entry.dump_dir}: delivered, but the directory can't be updated: {exc}")
    return done


def stamp() -> float:
    """Now (a seam for tests)."""
    return time.time()
