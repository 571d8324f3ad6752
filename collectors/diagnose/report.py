"""The HTML report: one self-contained file (jinja2, autoescape on, inline CSS, no script,
no external resource) with the summary of what is wrong first, then crashes, kernel
reports, containers and VMs, and the raw sections linked from the manifest; plus a timeline
of crashes and kernel reports drawn as inline SVG on the server."""

from __future__ import annotations

import signal as signal_mod
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collectors.checks.base import SEVERITY, CheckRecord

LANES = ("crashes", "kernel reports")


@dataclass(frozen=True)
class Mark:
    x: float
    lane: int
    label: str
    r: float


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    marks: tuple[Mark, ...]
    ticks: tuple[tuple[float, str], ...]
    lanes: tuple[tuple[float, str], ...]
    start: float
    end: float


def timeline(crash_times: Sequence[tuple[float, str]], kernel_times: Sequence[tuple[float, str]],
             start: float, end: float, width: int = 900) -> Timeline:
    """Positions of the events between *start* and *end* (pure; the template draws them)."""
    left, right, lane_h, top = 120, 20, 34, 16
    span = max(end - start, 1.0)
    marks = []
    for lane, events in enumerate((crash_times, kernel_times)):
        for when, label in events:
            if start <= when <= end:
                x = left + (when - start) / span * (width - left - right)
                marks.append(Mark(round(x, 1), lane, label, 5.0))
    ticks = []
    for i in range(6):
        t = start + span * i / 5
        fmt = "%Y-%m-%d %H:%M" if span > 86400 else "%H:%M"
        ticks.append((round(left + (width - left - right) * i / 5, 1), time.strftime(fmt, time.localtime(t))))
    lanes = tuple((top + lane_h * i + lane_h / 2, name) for i, name in enumerate(LANES))
    return Timeline(width, top + lane_h * len(LANES) + 30, tuple(marks), tuple(ticks), lanes, start, end)


def signal_name(value: Any) -> str:
    try:
        return signal_mod.Signals(int(value)).name
    except (TypeError, ValueError):
        return "" if value is None else str(value)


def when(ts: Any) -> str:
    if ts is None:
        return ""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(ts)))
    except (TypeError, ValueError, OverflowError):
        return str(ts)


def summary(records: Sequence[CheckRecord]) -> list[CheckRecord]:
    """The checks that did not pass, worst first (fail, error, warn), in check order within."""
    bad = [r for r in records if r.status in ("fail", "error", "warn")]
    return sorted(bad, key=lambda r: -SEVERITY[r.status])


def instances(state: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []
    for tech, res in (state or {}).items():
        if isinstance(res, dict):
            for inst in res.get("instances") or ():
                out.append(inst)
            if res.get("status") == "error":
                out.append({"tech": tech, "id": "", "name": "(state not readable)", "state": "error",
                            "native_state": res.get("error"), "init_pid": None, "os": None})
    return out


def render(model: dict[str, Any]) -> str:
    """The report's HTML text for *model* (see :func:`build_model`); a template failure gives
    a minimal page naming it, so the bundle is never lost to the report."""
    import html

    from coripper.errors import capture_internal_exceptions

    # Our templates over our model: a failure is a bug (re-raised under CRASHKIT_STRICT), but
    # the bundle matters more than its report.
    with capture_internal_exceptions("the diagnose report", logger=__name__) as bug:
        return _render(model)
    exc = bug.error
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>crashkit diagnose</title></head>"
            f"<body><p>The report could not be rendered: {html.escape(f'{type(exc).__name__}: {exc}')}. "
            "The sections and manifest.json are in the bundle.</p></body></html>")


def _render(model: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("collectors.diagnose", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["when"] = when
    env.filters["signame"] = signal_name
    env.filters["mb"] = lambda n: f"{(n or 0) / 1e6:.2f} MB"
    return env.get_template("report.html.j2").render(**model)


def build_model(*, host: dict[str, str], checks: Sequence[CheckRecord], problems: list[dict[str, Any]],
                corrupt: list[dict[str, str]], kernel_reports: list[Any], state: dict[str, Any] | None,
                sections: list[dict[str, Any]], entries: list[dict[str, Any]], since: float,
                now: float) -> dict[str, Any]:
    """Everything the template shows, in its order."""
    crash_times: list[tuple[float, str]] = []
    for p in problems:
        for key in ("time", "last_occurrence"):
            if p.get(key):
                crash_times.append((float(p[key]), f"{p.get('executable') or p.get('name')} ({when(p[key])})"))
    kernel_times = [(t, f"{r.title} ({when(t)})") for r in kernel_reports for t in r.times]
    counts = {s: sum(1 for r in checks if r.status == s) for s in ("fail", "error", "warn", "pass", "skip")}
    by_section: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        by_section.setdefault(e["section"], []).append(e)
    unreadable = [e for e in entries if e.get("error") and not e.get("size")]
    return {"host": host, "summary": summary(checks), "counts": counts, "checks": checks,
            "problems": problems, "corrupt": corrupt, "kernel_reports": kernel_reports,
            "instances": instances(state), "sections": sections, "by_section": by_section,
            "unreadable": unreadable, "since": since, "now": now,
            "timeline": timeline(crash_times, kernel_times, since, now)}
