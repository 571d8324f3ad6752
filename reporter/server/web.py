"""Server-rendered pages (jinja2, autoescaped): bucket list, bucket page, report page.

No JavaScript is needed; ``static/app.js`` only submits the filter form when a select
changes. The Content-Security-Policy allows scripts and styles from ``/static`` only.
"""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from reporter.server import storage
from reporter.server.app import state_of
from reporter.server.errors import NotFound
from reporter.server.routes_api import day_text
from reporter.server.svg import occurrence_chart

HERE = os.path.dirname(os.path.abspath(__file__))
router = APIRouter(include_in_schema=False)
PER_PAGE = 50
SORTS = ("last_seen", "first_seen", "count", "hosts", "title", "kind")
SHOWN_JSON = ("host_checks.json", "container_state.json")


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


ENV = Environment(loader=FileSystemLoader(os.path.join(HERE, "templates")),
                  autoescape=select_autoescape(default=True, default_for_string=True))
ENV.filters["when"] = _when
ENV.filters["size"] = _size


def render(name: str, **context: Any) -> str:
    """Render a template (autoescaped)."""
    return ENV.get_template(name).render(**context)


def render_error(status: int, reason: str) -> str:
    """The HTML page of a refused request."""
    return render("error.html", status=status, reason=reason)


def mount_static(app: FastAPI) -> None:
    """Serve ``static/`` at ``/static``."""
    app.mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static")


@router.get("/", response_class=HTMLResponse)
def bucket_list(request: Request, kind: Annotated[str | None, Query(max_length=32)] = None,
                host: Annotated[str | None, Query(max_length=255)] = None,
                q: Annotated[str | None, Query(max_length=255)] = None,
                sort: str = "last_seen", order: str = "desc",
                page: Annotated[int, Query(ge=1, le=1 << 30)] = 1) -> HTMLResponse:
    """The bucket list: sortable columns, kind/host/text filters, pages of 50."""
    st = state_of(request)
    st.check_read(request)
    sort = sort if sort in SORTS else "last_seen"
    descending = order != "asc"
    rows, total = storage.list_buckets(st.reader, storage.BucketQuery(
        kind=kind or None, host=host or None, q=q or None, sort=sort, descending=descending,
        limit=PER_PAGE, offset=(page - 1) * PER_PAGE))
    filters = {k: v for k, v in (("kind", kind), ("host", host), ("q", q)) if v}

    def link(**changes: Any) -> str:
        params = {**filters, "sort": sort, "order": "desc" if descending else "asc", "page": page, **changes}
        return "/?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})

    def sort_link(column: str) -> str:
        flip = "asc" if (column == sort and descending) else "desc"
        return link(sort=column, order=flip, page=1)

    pages = max(1, (total + PER_PAGE - 1) // PER_PAGE)
    html = render("buckets.html", rows=rows, total=total, page=page, pages=pages, filters=filters,
                  kinds=storage.bucket_kinds(st.reader), sort=sort, descending=descending,
                  sort_link=sort_link, prev_link=link(page=page - 1) if page > 1 else None,
                  next_link=link(page=page + 1) if page < pages else None)
    return HTMLResponse(html)


def _frames(report: dict[str, Any] | None) -> tuple[list[dict[str, Any]], str | None]:
    """Crash-thread frames (core) or the oops/backtrace text of a report, for the bucket page."""
    if report is None:
        return [], None
    elements = {e["name"]: e for e in json.loads(report["elements"])}
    text = None
    if "core_backtrace" in elements and elements["core_backtrace"].get("text"):
        try:
            doc = json.loads(elements["core_backtrace"]["text"])
            return _crash_frames(doc), None
        except (ValueError, TypeError):
            pass
    if "ureport.json" in elements and elements["ureport.json"].get("text"):
        try:
            problem = json.loads(elements["ureport.json"]["text"]).get("problem", {})
        except (ValueError, AttributeError):
            problem = {}
        if problem.get("type") == "core":
            return _crash_frames(problem), None
        if problem.get("type") == "kerneloops":
            return [], problem.get("raw_oops") or json.dumps(problem.get("frames", []), indent=1)
        if problem.get("type") == "python":
            return [{"function_name": f.get("function_name"), "file_name": f"{f.get('file_name')}:{f.get('file_line')}"}
                    for f in problem.get("stacktrace", []) if isinstance(f, dict)], None
    for name in ("backtrace", "dmesg"):
        if name in elements and elements[name].get("text"):
            text = elements[name]["text"]
            break
    return [], text


def _crash_frames(doc: dict[str, Any]) -> list[dict[str, Any]]:
    threads = [t for t in doc.get("stacktrace") or [] if isinstance(t, dict)]
    crash = next((t for t in threads if t.get("crash_thread")), threads[0] if threads else {})
    return [f for f in crash.get("frames") or [] if isinstance(f, dict)][:64]


@router.get("/buckets/{bucket_id}", response_class=HTMLResponse)
def bucket_page(request: Request, bucket_id: int) -> HTMLResponse:
    """A bucket: representative report, frames or oops text, occurrence chart, hosts and versions."""
    st = state_of(request)
    st.check_read(request)
    b = storage.get_bucket(st.reader, bucket_id)
    if b is None:
        raise NotFound(f"no bucket {bucket_id}")
    rep = storage.get_report(st.reader, b["representative_id"]) if b["representative_id"] else None
    if rep is None and b["reports"]:
        rep = storage.get_report(st.reader, b["reports"][0]["id"])
    frames, oops = _frames(rep)
    chart = Markup(occurrence_chart(b["days"]))  # built from numbers and escaped dates only
    days = [(day_text(d), c) for d, c in b["days"][-14:]]
    return HTMLResponse(render("bucket.html", b=b, rep=rep, frames=frames, oops=oops, chart=chart, days=days))


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def report_page(request: Request, report_id: int) -> HTMLResponse:
    """A report: every element, host checks and container state, download link."""
    st = state_of(request)
    st.check_read(request)
    r = storage.get_report(st.reader, report_id)
    if r is None:
        raise NotFound(f"no report {report_id}")
    elements = json.loads(r["elements"])
    shown = []
    for name in SHOWN_JSON:
        e = next((x for x in elements if x["name"] == name), None)
        if e is not None and e.get("text") is not None:
            try:
                shown.append((name, json.dumps(json.loads(e["text"]), indent=2, ensure_ascii=False)))
            except ValueError:
                shown.append((name, e["text"]))
    return HTMLResponse(render("report.html", r=r, elements=elements, shown=shown))
