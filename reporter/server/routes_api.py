"""The read API (``/api/v1``), ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from sqlalchemy import text

from reporter.server import storage
from reporter.server.app import state_of
from reporter.server.errors import NotFound
from reporter.server.models import BucketDetail, BucketList, Error, Health, ReportDetail

router = APIRouter()
READ_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": Error} for s in (400, 401, 404, 429)}
MEDIA = {"tar.gz": "application/gzip", "tar.xz": "application/x-xz", "tar.zst": "application/zstd",
         "tar.bz2": "application/x-bzip2", "tar": "application/x-tar", "json": "application/json"}
Kind = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_-]+$")]
Text = Annotated[str | None, Query(max_length=255)]
Sort = Annotated[str, Query(pattern="^(last_seen|first_seen|count|hosts|title|kind|id)$")]
Order = Annotated[str, Query(pattern="^(asc|desc)$")]


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A bucket row as the API's bucket summary."""
    return {"id": row["id"], "title": row["title"], "kind": row["kind"], "count": row["count"],
            "first_seen": row["first_seen"], "last_seen": row["last_seen"], "hosts": row["host_count"]}


def day_text(day: int) -> str:
    """A unix day number as YYYY-MM-DD (UTC)."""
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


@router.get("/api/v1/buckets", response_model=BucketList, responses=READ_ERRORS, summary="List buckets")
def list_buckets(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50,
                 offset: Annotated[int, Query(ge=0, le=1 << 40)] = 0, kind: Kind = None, host: Text = None,
                 q: Text = None, sort: Sort = "last_seen", order: Order = "desc") -> dict[str, Any]:
    """Buckets with filters: ``kind``, ``host`` (reported from), ``q`` (text in title, executable, component)."""
    st = state_of(request)
    st.check_read(request)
    rows, total = storage.list_buckets(st.reader, storage.BucketQuery(
        kind=kind, host=host, q=q, sort=sort, descending=order == "desc", limit=limit, offset=offset))
    return {"buckets": [summary(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def bucket_json(b: dict[str, Any]) -> dict[str, Any]:
    """A bucket with its details as the API returns it."""
    return {**summary(b), "duphash": b["duphash"], "component": b["component"], "executable": b["executable"],
            "crash_function": b["crash_function"], "representative_id": b["representative_id"],
            "stored_reports": b["stored_reports"], "host_counts": b["hosts"], "versions": b["versions"],
            "days": [{"day": day_text(d), "count": c} for d, c in b["days"]], "reports": b["reports"]}


@router.get("/api/v1/buckets/{bucket_id}", response_model=BucketDetail, responses=READ_ERRORS, summary="One bucket")
def get_bucket(request: Request, bucket_id: int) -> dict[str, Any]:
    """A bucket: counts, hosts, versions, per-day counts and its recent reports."""
    st = state_of(request)
    st.check_read(request)
    b = storage.get_bucket(st.reader, bucket_id)
    if b is None:
        raise NotFound(f"no bucket {bucket_id}")
    return bucket_json(b)


def report_json(r: dict[str, Any]) -> dict[str, Any]:
    """A report row as the API returns it."""
    keys = ("id", "bucket_id", "source", "kind", "host", "received_at", "crash_time", "reason", "executable",
            "component", "package", "kernel", "architecture", "os", "container", "bthash", "duphash_sent",
            "token", "name", "content_hash", "blob_size", "archive_format")
    out = {k: r[k] for k in keys}
    out["elements"] = json.loads(r["elements"])
    out["bundle_url"] = f"/api/v1/reports/{r['id']}/bundle"
    return out


@router.get("/api/v1/reports/{report_id}", response_model=ReportDetail, responses=READ_ERRORS, summary="One report")
def get_report(request: Request, report_id: int) -> dict[str, Any]:
    """A report with every element's name and size and the text of the small ones."""
    st = state_of(request)
    st.check_read(request)
    r = storage.get_report(st.reader, report_id)
    if r is None:
        raise NotFound(f"no report {report_id}")
    return report_json(r)


@router.get("/api/v1/reports/{report_id}/bundle", responses={**READ_ERRORS, 200: {
    "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in sorted(set(MEDIA.values()))},
    "description": "the archive or uReport as received"}},
    response_class=StreamingResponse, summary="Download a report's archive")
def get_bundle(request: Request, report_id: int) -> Response:
    """The archive (or uReport JSON) exactly as it was received."""
    st = state_of(request)
    st.check_read(request)
    r = storage.get_report(st.reader, report_id)
    if r is None:
        raise NotFound(f"no report {report_id}")
    fmt = r["archive_format"]
    filename = f"report-{report_id}.{fmt}"
    return StreamingResponse(st.blobs.iter_chunks(r["blob_key"]), media_type=MEDIA.get(fmt, "application/octet-stream"),
                             headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                      "Content-Length": str(r["blob_size"])})


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}}, summary="Liveness and database check")
def healthz(request: Request) -> Response:
    """``{"status": "ok"}`` when the database answers."""
    st = state_of(request)
    try:
        with st.reader.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not healthy"
        return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get("/metrics", response_class=PlainTextResponse, responses={401: {"model": Error}},
            summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    """This worker's counters and the database totals, in Prometheus text format."""
    st = state_of(request)
    st.check_read(request)
    body = st.metrics.render(storage.totals(st.reader))
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")
