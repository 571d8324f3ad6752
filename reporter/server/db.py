"""The metadata schema (SQLAlchemy Core) and the engines for SQLite and PostgreSQL.

Buckets hold what survives pruning (counts, first/last seen, per-host, per-day and
per-version tallies); reports hold one row per stored archive or uReport. Uniqueness of
``reports.content_hash`` and ``reports.client_id`` is what makes a repeated upload one
report, also when two workers receive it at the same moment (docs/server.md).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import (BigInteger, Column, Engine, Float, ForeignKey, Index, Integer, MetaData,
                        String, Table, Text, UniqueConstraint, create_engine, event)

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

buckets = Table(
    "buckets", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("duphash", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("component", Text),
    Column("executable", Text),
    Column("crash_function", Text),
    Column("count", BigInteger, nullable=False, server_default="0"),
    Column("host_count", Integer, nullable=False, server_default="0"),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("representative_id", BigInteger),
    UniqueConstraint("kind", "duphash", name="uq_buckets_kind_duphash"),
    Index("ix_buckets_last_seen", "last_seen"),
    Index("ix_buckets_first_seen", "first_seen"),
    Index("ix_buckets_count", "count"),
)

reports = Table(
    "reports", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("bucket_id", BigInteger, ForeignKey("buckets.id"), nullable=False),
    Column("source", String(16), nullable=False),        # bundle | ureport
    Column("client_id", String(128), unique=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("bthash", String(64)),
    Column("duphash_sent", String(64)),
    Column("kind", String(32), nullable=False),
    Column("host", String(255)),
    Column("received_at", Float, nullable=False),
    Column("crash_time", Float),
    Column("reason", Text),
    Column("executable", Text),
    Column("component", Text),
    Column("package", Text),
    Column("kernel", Text),
    Column("architecture", String(64)),
    Column("os", Text),
    Column("container", Text),
    Column("token", String(64)),
    Column("blob_key", String(255), nullable=False),
    Column("blob_size", BigInteger, nullable=False),
    Column("archive_format", String(16), nullable=False),
    Column("name", Text),
    Column("elements", Text, nullable=False),              # JSON, see ingest.element_index
    Index("ix_reports_bucket_id", "bucket_id", "id"),
    Index("ix_reports_bthash", "bthash"),
    Index("ix_reports_received_at", "received_at"),
)

bucket_hosts = Table(
    "bucket_hosts", metadata,
    Column("bucket_id", BigInteger, ForeignKey("buckets.id"), primary_key=True),
    Column("host", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Index("ix_bucket_hosts_host", "host"),
)

bucket_days = Table(
    "bucket_days", metadata,
    Column("bucket_id", BigInteger, ForeignKey("buckets.id"), primary_key=True),
    Column("day", Integer, primary_key=True),               # unix time // 86400
    Column("count", BigInteger, nullable=False),
)

bucket_versions = Table(
    "bucket_versions", metadata,
    Column("bucket_id", BigInteger, ForeignKey("buckets.id"), primary_key=True),
    Column("dimension", String(16), primary_key=True),      # kernel | package | os | container
    Column("value", String(255), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

attachments = Table(
    "attachments", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("bthash", String(64), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("token", String(64)),
)


def is_sqlite(engine: Engine) -> bool:
    """True for the embedded default database."""
    return engine.dialect.name == "sqlite"


def make_engines(url: str) -> tuple[Engine, Engine]:
    """(writer, reader) engines for *url*.

    On SQLite the writer starts every transaction with ``BEGIN IMMEDIATE``, so concurrent
    writers (threads or worker processes) queue on the database lock instead of failing
    to upgrade a read lock; the reader uses plain deferred transactions, so pages and API
    reads never wait for writers (WAL). On PostgreSQL both are the same pooled engine.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return _sqlite_engine(url, immediate=True), _sqlite_engine(url, immediate=False)
    engine = create_engine(url, pool_size=16, max_overflow=16, pool_pre_ping=True,
                           pool_recycle=1800)
    return engine, engine


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False},
                           pool_size=8, max_overflow=24)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
