"""Recording reports and reading buckets: every statement the service runs against the database.

:func:`record` is one transaction per report. Idempotency is the database's: the report row
is inserted with ``ON CONFLICT DO NOTHING`` on its unique content hash and client id, and a
report that turns out to be a repeat rolls the whole transaction back, so no counter moves.
Buckets are created or counted by one upsert on ``(kind, duphash)`` (``ON CONFLICT DO UPDATE
SET count = count + 1``), so concurrent workers never lose an increment.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select

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


def _clip(value: str | None, limit: int = MAX_VALUE) -> str | None:
    return None if value is None else value[:limit]


class _Sql:
    """One statement of the write path, written once with ``:name`` parameters; :meth:`text_for`
    gives the driver's spelling (sqlite3 takes ``:name``, psycopg ``%(name)s``)."""

    def __init__(self, sql: str) -> None:
        self.sqlite = sql
        self.pyformat = re.sub(r":(\w+)", r"%(\1)s", sql)

    def text_for(self, sqlite: bool) -> str:
        """The statement for the connection's driver."""
        return self.sqlite if sqlite else self.pyformat


# The write path as plain SQL on the DBAPI cursor: the same text is valid on SQLite (>= 3.35) and
# PostgreSQL, and skipping SQLAlchemy's execution layer takes ~0.2 ms off every report. One report
# is five statements in the common case: the bucket upsert (created or counted, returning its
# id), the report insert, the host, day and (multi-row) version upserts.
_SQL_BUCKET = _Sql(
    "INSERT INTO buckets (kind, duphash, title, component, executable, crash_function, count, host_count, "
    "first_seen, last_seen) VALUES (:kind, :duphash, :title, :component, :executable, :crash_function, 1, 0, "
    ":t, :t) ON CONFLICT (kind, duphash) DO UPDATE SET count = buckets.count + 1, "
    "last_seen = CASE WHEN buckets.last_seen < :t THEN :t ELSE buckets.last_seen END, "
    "first_seen = CASE WHEN buckets.first_seen > :t THEN :t ELSE buckets.first_seen END "
    "RETURNING id, count, representative_id")
_REPORT_COLUMNS = ("bucket_id", "source", "client_id", "content_hash", "bthash", "duphash_sent", "kind", "host",
                   "received_at", "crash_time", "reason", "executable", "component", "package", "kernel",
                   "architecture", "os", "container", "token", "blob_key", "blob_size", "archive_format", "name",
                   "elements")
_SQL_REPORT = _Sql(
    f"INSERT INTO reports ({', '.join(_REPORT_COLUMNS)}) VALUES ({', '.join(':' + c for c in _REPORT_COLUMNS)}) "
    "ON CONFLICT DO NOTHING RETURNING id")
_SQL_BUCKET_FIRSTS = _Sql(
    "UPDATE buckets SET host_count = host_count + :new_host, "
    "representative_id = COALESCE(representative_id, :rid) WHERE id = :bid")
_SQL_HOST = _Sql(
    "INSERT INTO bucket_hosts (bucket_id, host, count, first_seen, last_seen) VALUES (:bid, :host, 1, :t, :t) "
    "ON CONFLICT (bucket_id, host) DO UPDATE SET count = bucket_hosts.count + 1, "
    "last_seen = CASE WHEN bucket_hosts.last_seen < :t THEN :t ELSE bucket_hosts.last_seen END, "
    "first_seen = CASE WHEN bucket_hosts.first_seen > :t THEN :t ELSE bucket_hosts.first_seen END "
    "RETURNING count")
_SQL_DAY = _Sql(
    "INSERT INTO bucket_days (bucket_id, day, count) VALUES (:bid, :day, 1) "
    "ON CONFLICT (bucket_id, day) DO UPDATE SET count = bucket_days.count + 1")
_SQL_EXISTING = _Sql("SELECT id, bucket_id, bthash, kind FROM reports WHERE content_hash = :sha")
_SQL_EXISTING_ID = _Sql("SELECT id, bucket_id, bthash, kind FROM reports WHERE content_hash = :sha "
                        "UNION ALL SELECT id, bucket_id, bthash, kind FROM reports WHERE client_id = :cid LIMIT 1")
_SQL_VERSIONS: dict[int, _Sql] = {}


def _sql_versions(rows: int) -> _Sql:
    """The upsert of *rows* distinct version tallies in one statement (cached per row count)."""
    stmt = _SQL_VERSIONS.get(rows)
    if stmt is None:
        values = ", ".join(f"(:bid, :d{i}, :v{i}, 1)" for i in range(rows))
        stmt = _SQL_VERSIONS[rows] = _Sql(
            f"INSERT INTO bucket_versions (bucket_id, dimension, value, count) VALUES {values} "
            "ON CONFLICT (bucket_id, dimension, value) DO UPDATE SET count = bucket_versions.count + 1")
    return stmt


class _Cursor:
    """A DBAPI cursor that runs :class:`_Sql` statements in its driver's parameter style."""

    def __init__(self, cursor: Any, sqlite: bool) -> None:
        self.cursor = cursor
        self.sqlite = sqlite

    def run(self, stmt: _Sql, params: dict[str, Any]) -> Any:
        """Execute; returns the first row (or None)."""
        self.cursor.execute(stmt.text_for(self.sqlite), params)
        return self.cursor.fetchone() if self.cursor.description else None


def find_existing(engine: Engine, sha256: str, client_id: str | None) -> tuple[int, int, str | None, str] | None:
    """(id, bucket_id, bthash, kind) of the report with these bytes or this client id, if any."""
    raw = engine.raw_connection()
    try:
        cur = _Cursor(raw.cursor(), is_sqlite(engine))
        try:
            row = cur.run(_SQL_EXISTING_ID if client_id else _SQL_EXISTING, {"sha": sha256, "cid": client_id})
        finally:
            cur.cursor.close()
        raw.rollback()
    finally:
        raw.close()
    return None if row is None else (int(row[0]), int(row[1]), row[2], str(row[3]))


# SQLite has one writer at a time anyway: queueing this process's writers on a lock is cheaper
# than letting them spin in SQLite's busy handler (which sleeps in growing steps).
_SQLITE_WRITE_LOCK = threading.Lock()


_LOCK_FDS: dict[str, int] = {}


def _sqlite_lock_fd(engine: Engine) -> int | None:
    path = engine.url.database
    if not path or path == ":memory:":
        return None
    fd = _LOCK_FDS.get(path)
    if fd is None:
        fd = os.open(path + ".writelock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        _LOCK_FDS[path] = fd
    return fd


def record(engine: Engine, new: NewReport) -> Recorded:
    """Store *new* and count it in its bucket, exactly once (see the module docstring).

    On SQLite, writers queue on a thread lock and an flock beside the database (shared by
    ``--workers`` processes): the kernel wakes the next writer at once, where SQLite's busy
    handler would sleep in steps of up to 100 ms.
    """
    if engine.dialect.name != "sqlite":
        return _record(engine, new)
    with _SQLITE_WRITE_LOCK:
        fd = _sqlite_lock_fd(engine)
        if fd is None:
            return _record(engine, new)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            return _record(engine, new)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _record(engine: Engine, new: NewReport) -> Recorded:
    sqlite = is_sqlite(engine)
    raw = engine.raw_connection()
    try:
        cur = _Cursor(raw.cursor(), sqlite)
        try:
            if sqlite:
                cur.cursor.execute("BEGIN IMMEDIATE")
            bucket_id, count, representative = _upsert_bucket(cur, new)
            report_id = _insert_report(cur, new, bucket_id)
            if report_id is None:  # a repeat: nothing of this transaction stays, the count included
                raw.rollback()
                return _existing(cur, new)
            _count(cur, new, bucket_id, report_id, representative is None)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cur.cursor.close()
    finally:
        raw.close()
    return Recorded(report_id, bucket_id, duplicate=False, known=count > 1)


def _upsert_bucket(cur: _Cursor, new: NewReport) -> tuple[int, int, int | None]:
    """Create the bucket or count one more report in it: (id, count now, representative)."""
    row = cur.run(_SQL_BUCKET, {"kind": new.kind, "duphash": new.duphash, "title": new.title[:1000],
                                "component": new.component, "executable": new.executable,
                                "crash_function": new.crash_function, "t": new.occurred_at})
    return int(row[0]), int(row[1]), None if row[2] is None else int(row[2])


def _insert_report(cur: _Cursor, new: NewReport, bucket_id: int) -> int | None:
    values = {
        "bucket_id": bucket_id, "source": new.source, "client_id": new.client_id, "content_hash": new.content_hash,
        "bthash": new.bthash, "duphash_sent": new.duphash_sent, "kind": new.kind, "host": _clip(new.host),
        "received_at": new.received_at, "crash_time": new.crash_time, "reason": new.reason,
        "executable": new.executable, "component": new.component, "package": new.package, "kernel": new.kernel,
        "architecture": _clip(new.architecture, 64), "os": new.os, "container": new.container,
        "token": _clip(new.token, 64), "blob_key": new.blob_key, "blob_size": new.blob_size,
        "archive_format": new.archive_format, "name": new.name, "elements": new.elements_json}
    row = cur.run(_SQL_REPORT, values)
    return None if row is None else int(row[0])


def _existing(cur: _Cursor, new: NewReport) -> Recorded:
    """The report that made *new* a repeat (read after the rollback)."""
    stmt = _SQL_EXISTING_ID if new.client_id is not None else _SQL_EXISTING
    row = cur.run(stmt, {"sha": new.content_hash, "cid": new.client_id})
    if not cur.sqlite:
        cur.cursor.connection.rollback()
    if row is None:  # pruned in between: as far as the client knows, it was stored once
        return Recorded(0, 0, duplicate=True, known=True)
    return Recorded(int(row[0]), int(row[1]), duplicate=True, known=True)


def _count(cur: _Cursor, new: NewReport, bucket_id: int, report_id: int, no_representative: bool) -> None:
    t = new.occurred_at
    host = _clip(new.host) or "unknown"
    new_host = int(cur.run(_SQL_HOST, {"bid": bucket_id, "host": host, "t": t})[0]) == 1
    if new_host or no_representative:
        cur.run(_SQL_BUCKET_FIRSTS, {"bid": bucket_id, "rid": report_id, "new_host": int(new_host)})
    cur.run(_SQL_DAY, {"bid": bucket_id, "day": int(t // DAY)})
    versions = sorted({(d, v[:MAX_VALUE]) for d, v in new.versions})
    if versions:
        params: dict[str, Any] = {"bid": bucket_id}
        for i, (dimension, value) in enumerate(versions):
            params[f"d{i}"], params[f"v{i}"] = dimension, value
        cur.run(_sql_versions(len(versions)), params)


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
