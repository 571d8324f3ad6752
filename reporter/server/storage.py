"""Recording reports and reading buckets: every statement the service runs against the database.

:func:`record` is one transaction per report. Idempotency is the database's: the report row
is inserted with ``ON CONFLICT DO NOTHING`` on its unique content hash and client id, and a
report that turns out to be a repeat rolls the whole transaction back, so no counter moves.
Buckets are created the same way (``ON CONFLICT DO NOTHING`` on ``(kind, duphash)``) and
counted with ``count = count + 1`` in SQL, so concurrent workers never lose an increment.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, and_, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reporter.server.db import (attachments, bucket_days, bucket_hosts, bucket_versions, buckets,
                                is_sqlite, reports)

DAY = 86400
MAX_VALUE = 255
SORT_COLUMNS = {
    "last_seen": buckets.c.last_seen, "first_seen": buckets.c.first_seen,
    "count": buckets.c.count, "hosts": buckets.c.host_count, "title": buckets.c.title,
    "kind": buckets.c.kind, "id": buckets.c.id,
}


@dataclass(frozen=True)
class NewReport:
    """Everything stored about one accepted report."""

    source: str
    kind: str
    duphash: str
    title: str
    content_hash: str
    blob_key: str
    blob_size: int
    archive_format: str
    received_at: float
    elements_json: str
    occurred_at: float
    client_id: str | None = None
    bthash: str | None = None
    duphash_sent: str | None = None
    component: str | None = None
    executable: str | None = None
    crash_function: str | None = None
    host: str | None = None
    crash_time: float | None = None
    reason: str | None = None
    package: str | None = None
    kernel: str | None = None
    architecture: str | None = None
    os: str | None = None
    container: str | None = None
    token: str | None = None
    name: str | None = None
    versions: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Recorded:
    """Outcome of :func:`record`."""

    report_id: int
    bucket_id: int
    duplicate: bool      # this exact report (content or client id) was stored before
    known: bool          # the bucket had reports before this one (FAF's "result")


def migrate(engine: Engine, lock_dir: str | None = None) -> None:
    """Bring the schema to the newest Alembic revision; safe when several workers start at once.

    PostgreSQL serializes the upgrade with a transaction-level advisory lock; SQLite with
    an flock next to the database (``BEGIN IMMEDIATE`` alone does not cover Alembic's
    version-table check).
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    lock_fd = None
    if is_sqlite(engine) and lock_dir:
        os.makedirs(lock_dir, exist_ok=True)
        lock_fd = os.open(os.path.join(lock_dir, "migrate.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    try:
        with engine.begin() as conn:
            if not is_sqlite(engine):
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724511201)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _insert(conn: Connection, table: Table) -> Any:
    """A dialect insert with ``on_conflict_*`` support."""
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    return postgresql.insert(table)


def _clip(value: str | None, limit: int = MAX_VALUE) -> str | None:
    return None if value is None else value[:limit]


def record(engine: Engine, new: NewReport) -> Recorded:
    """Store *new* and count it in its bucket, exactly once (see the module docstring)."""
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            bucket_id, known = _ensure_bucket(conn, new)
            report_id = _insert_report(conn, new, bucket_id)
            if report_id is None:
                trans.rollback()
                return _existing(conn, new)
            _count(conn, new, bucket_id, report_id)
            trans.commit()
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
    return Recorded(report_id, bucket_id, duplicate=False, known=known)


def _ensure_bucket(conn: Connection, new: NewReport) -> tuple[int, bool]:
    stmt: Insert = _insert(conn, buckets).values(
        kind=new.kind, duphash=new.duphash, title=new.title[:1000], component=new.component,
        executable=new.executable, crash_function=new.crash_function, count=0, host_count=0,
        first_seen=new.occurred_at, last_seen=new.occurred_at)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["kind", "duphash"]))  # type: ignore[attr-defined]
    row = conn.execute(select(buckets.c.id, buckets.c.count).where(
        buckets.c.kind == new.kind, buckets.c.duphash == new.duphash)).one()
    return int(row.id), int(row[1]) > 0


def _insert_report(conn: Connection, new: NewReport, bucket_id: int) -> int | None:
    stmt = _insert(conn, reports).values(
        bucket_id=bucket_id, source=new.source, client_id=new.client_id,
        content_hash=new.content_hash, bthash=new.bthash, duphash_sent=new.duphash_sent,
        kind=new.kind, host=_clip(new.host), received_at=new.received_at, crash_time=new.crash_time,
        reason=new.reason, executable=new.executable, component=new.component, package=new.package,
        kernel=new.kernel, architecture=_clip(new.architecture, 64), os=new.os,
        container=new.container, token=_clip(new.token, 64), blob_key=new.blob_key,
        blob_size=new.blob_size, archive_format=new.archive_format, name=new.name,
        elements=new.elements_json)
    row = conn.execute(stmt.on_conflict_do_nothing().returning(reports.c.id)).first()
    return None if row is None else int(row.id)


def _existing(conn: Connection, new: NewReport) -> Recorded:
    cond = reports.c.content_hash == new.content_hash
    if new.client_id is not None:
        cond = or_(cond, reports.c.client_id == new.client_id)
    row = conn.execute(select(reports.c.id, reports.c.bucket_id).where(cond).limit(1)).first()
    conn.rollback()
    if row is None:  # pruned in between: as far as the client knows, it was stored once
        return Recorded(0, 0, duplicate=True, known=True)
    return Recorded(int(row.id), int(row.bucket_id), duplicate=True, known=True)


def _count(conn: Connection, new: NewReport, bucket_id: int, report_id: int) -> None:
    t = new.occurred_at
    b = buckets.c
    conn.execute(update(buckets).where(b.id == bucket_id).values(
        count=b.count + 1,
        last_seen=case((b.last_seen < t, t), else_=b.last_seen),
        first_seen=case((b.first_seen > t, t), else_=b.first_seen),
        representative_id=func.coalesce(b.representative_id, report_id)))
    host = _clip(new.host) or "unknown"
    ins = _insert(conn, bucket_hosts).values(bucket_id=bucket_id, host=host, count=1,
                                             first_seen=t, last_seen=t)
    if conn.execute(ins.on_conflict_do_nothing().returning(bucket_hosts.c.host)).first() is not None:
        conn.execute(update(buckets).where(b.id == bucket_id).values(host_count=b.host_count + 1))
    else:
        h = bucket_hosts.c
        conn.execute(update(bucket_hosts).where(h.bucket_id == bucket_id, h.host == host).values(
            count=h.count + 1, last_seen=case((h.last_seen < t, t), else_=h.last_seen),
            first_seen=case((h.first_seen > t, t), else_=h.first_seen)))
    day = _insert(conn, bucket_days).values(bucket_id=bucket_id, day=int(t // DAY), count=1)
    conn.execute(day.on_conflict_do_update(index_elements=["bucket_id", "day"],
                                           set_={"count": bucket_days.c.count + 1}))
    for dimension, value in sorted(set(new.versions)):
        ver = _insert(conn, bucket_versions).values(bucket_id=bucket_id, dimension=dimension,
                                                    value=value[:MAX_VALUE], count=1)
        conn.execute(ver.on_conflict_do_update(index_elements=["bucket_id", "dimension", "value"],
                                               set_={"count": bucket_versions.c.count + 1}))


def add_attachment(engine: Engine, bthash: str, kind: str, data: str, when: float,
                   token: str | None) -> None:
    """Store a FAF attachment (bug number, email, comment, URL) for a bthash."""
    with engine.begin() as conn:
        conn.execute(attachments.insert().values(bthash=bthash, type=kind, data=data,
                                                 received_at=when, token=token))


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class BucketQuery:
    """Filters, order and page of the bucket list."""

    kind: str | None = None
    host: str | None = None
    q: str | None = None
    sort: str = "last_seen"
    descending: bool = True
    limit: int = 50
    offset: int = 0


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_buckets(engine: Engine, query: BucketQuery) -> tuple[list[dict[str, Any]], int]:
    """One page of buckets and the number of buckets matching the filters."""
    conds = []
    if query.kind:
        conds.append(buckets.c.kind == query.kind)
    if query.host:
        conds.append(exists().where(bucket_hosts.c.bucket_id == buckets.c.id,
                                    bucket_hosts.c.host == query.host))
    if query.q:
        pattern = f"%{_like_escape(query.q.lower())}%"
        conds.append(or_(func.lower(buckets.c.title).like(pattern, escape="\\"),
                         func.lower(func.coalesce(buckets.c.executable, "")).like(pattern, escape="\\"),
                         func.lower(func.coalesce(buckets.c.component, "")).like(pattern, escape="\\")))
    where = and_(*conds) if conds else None
    column = SORT_COLUMNS.get(query.sort, buckets.c.last_seen)
    order = [column.desc() if query.descending else column.asc(),
             buckets.c.id.desc() if query.descending else buckets.c.id.asc()]
    stmt = select(buckets).order_by(*order).limit(query.limit).offset(query.offset)
    count_stmt = select(func.count()).select_from(buckets)
    if where is not None:
        stmt = stmt.where(where)
        count_stmt = count_stmt.where(where)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        total = int(conn.execute(count_stmt).scalar_one())
    return rows, total


def bucket_kinds(engine: Engine) -> list[str]:
    """The kinds present, for the filter menu."""
    with engine.connect() as conn:
        return [str(k) for k in conn.execute(select(buckets.c.kind).distinct().order_by(buckets.c.kind)).scalars()]


def get_bucket(engine: Engine, bucket_id: int, *, recent: int = 20) -> dict[str, Any] | None:
    """A bucket with its hosts, versions, per-day counts and recent reports."""
    with engine.connect() as conn:
        row = conn.execute(select(buckets).where(buckets.c.id == bucket_id)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        h = bucket_hosts.c
        out["hosts"] = [dict(r._mapping) for r in conn.execute(
            select(h.host, h.count, h.first_seen, h.last_seen).where(h.bucket_id == bucket_id)
            .order_by(h.count.desc(), h.host).limit(200))]
        v = bucket_versions.c
        versions: dict[str, list[dict[str, Any]]] = {}
        for r in conn.execute(select(v.dimension, v.value, v.count).where(v.bucket_id == bucket_id)
                              .order_by(v.dimension, v.count.desc(), v.value)):
            versions.setdefault(str(r.dimension), []).append({"value": r.value, "count": int(r[2])})
        out["versions"] = versions
        d = bucket_days.c
        out["days"] = [(int(r[0]), int(r[1])) for r in conn.execute(
            select(d.day, d.count).where(d.bucket_id == bucket_id).order_by(d.day))]
        out["reports"] = [dict(r._mapping) for r in conn.execute(
            select(*_SUMMARY).where(reports.c.bucket_id == bucket_id)
            .order_by(reports.c.id.desc()).limit(recent))]
        out["stored_reports"] = int(conn.execute(
            select(func.count()).select_from(reports).where(reports.c.bucket_id == bucket_id)).scalar_one())
    return out


_SUMMARY: Sequence[Any] = (reports.c.id, reports.c.source, reports.c.host, reports.c.received_at,
                           reports.c.crash_time, reports.c.reason, reports.c.kernel,
                           reports.c.package, reports.c.blob_size)


def get_report(engine: Engine, report_id: int) -> dict[str, Any] | None:
    """One report row."""
    with engine.connect() as conn:
        row = conn.execute(select(reports).where(reports.c.id == report_id)).first()
        return None if row is None else dict(row._mapping)


def bucket_for_bthash(engine: Engine, bthash: str) -> int | None:
    """The bucket of the newest report with this bthash."""
    with engine.connect() as conn:
        value = conn.execute(select(reports.c.bucket_id).where(reports.c.bthash == bthash)
                             .order_by(reports.c.id.desc()).limit(1)).scalar()
    return None if value is None else int(value)


def totals(engine: Engine) -> dict[str, int]:
    """Counters for /metrics: reports ever counted, reports stored, buckets, stored bytes."""
    with engine.connect() as conn:
        counted = conn.execute(select(func.coalesce(func.sum(buckets.c.count), 0))).scalar_one()
        nbuckets = conn.execute(select(func.count()).select_from(buckets)).scalar_one()
        stored, size = conn.execute(select(func.count(), func.coalesce(func.sum(reports.c.blob_size), 0))
                                    .select_from(reports)).one()
    return {"reports_counted": int(counted), "buckets": int(nbuckets), "reports_stored": int(stored),
            "stored_bytes": int(size)}
