"""Retention: first N and last M per bucket, age and size limits; counts survive; orphans go."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from srv_helpers import ccpp_elements, make_archive
from sqlalchemy import update

from reporter.server import retention, storage
from reporter.server.blobs import LocalBlobStore
from reporter.server.config import Retention, ServerConfig
from reporter.server.db import make_engines, reports
from reporter.server.ingest import Ingestor
from reporter.server.uploads import Spooled


def _spool(tmp: Path, data: bytes, i: int) -> Spooled:
    import hashlib

    path = tmp / f"body-{i}.part"
    path.write_bytes(data)
    return Spooled(str(path), len(data), hashlib.sha256(data).hexdigest(), "p.tar.gz")


def test_prune_keeps_first_and_last_and_counts(db_url: str, tmp_path: Path) -> None:
    config = ServerConfig(data_dir=str(tmp_path), db_url=db_url)
    writer, reader = make_engines(config.database_url)
    storage.migrate(writer, str(tmp_path))
    blobs = LocalBlobStore(str(tmp_path / "blobs"), fsync=False)
    ing = Ingestor(config, writer, blobs)
    (tmp_path / "tmp").mkdir()
    ids = [ing.ingest_archive(_spool(tmp_path / "tmp", make_archive(ccpp_elements(1, unique=str(i))), i),
                              name="p.tar.gz", token=None, client_id=None).report_id for i in range(30)]
    other = ing.ingest_archive(_spool(tmp_path / "tmp", make_archive(ccpp_elements(2)), 99), name=None, token=None,
                               client_id=None)
    bucket_id = storage.get_report(reader, ids[0])["bucket_id"]  # type: ignore[index]
    policy = Retention(keep_first=3, keep_last=5, orphan_grace_seconds=0)
    stats = retention.prune(writer, blobs, policy)
    assert stats.reports == 22
    left = [r["id"] for r in storage.get_bucket(reader, bucket_id, recent=100)["reports"]]  # type: ignore[index]
    assert sorted(left) == ids[:3] + ids[-5:]
    b = storage.get_bucket(reader, bucket_id)
    assert b is not None and b["count"] == 30 and b["stored_reports"] == 8 and b["representative_id"] == ids[0]
    assert sum(c for _, c in b["days"]) == 30 and b["hosts"][0]["count"] == 30
    assert len(list(blobs.iter_keys())) == 9

    # age: everything older than a day goes, except each bucket's first report
    with writer.begin() as conn:
        conn.execute(update(reports).values(received_at=time.time() - 3 * 86400))
    stats = retention.prune(writer, blobs, dataclasses.replace(policy, max_age_days=1))
    assert stats.reports == 7
    assert {r["id"] for r in storage.get_bucket(reader, bucket_id)["reports"]} == {ids[0]}  # type: ignore[index]
    assert storage.get_report(reader, other.report_id) is not None
    assert storage.get_bucket(reader, bucket_id)["count"] == 30  # type: ignore[index]

    # an orphan blob (a worker killed between blob and row) is removed after the grace period
    orphan = tmp_path / "blobs" / "ff" / ("f" * 64)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"orphan")
    os.utime(orphan, (time.time() - 10, time.time() - 10))
    assert retention.prune(writer, blobs, dataclasses.replace(policy, orphan_grace_seconds=3600)).orphans == 0
    assert retention.prune(writer, blobs, dataclasses.replace(policy, orphan_grace_seconds=5)).orphans == 1
    assert not orphan.exists() and len(list(blobs.iter_keys())) == 2
    writer.dispose()
    reader.dispose()


def test_prune_total_size(db_url: str, tmp_path: Path) -> None:
    config = ServerConfig(data_dir=str(tmp_path), db_url=db_url)
    writer, reader = make_engines(config.database_url)
    storage.migrate(writer, str(tmp_path))
    blobs = LocalBlobStore(str(tmp_path / "blobs"), fsync=False)
    ing = Ingestor(config, writer, blobs)
    (tmp_path / "tmp").mkdir()
    sizes = []
    for i in range(10):
        acc = ing.ingest_archive(_spool(tmp_path / "tmp", make_archive(ccpp_elements(i % 2, unique=str(i))), i),
                                 name=None, token=None, client_id=None)
        sizes.append(storage.get_report(reader, acc.report_id)["blob_size"])  # type: ignore[index]
    limit = sum(sizes) // 2
    retention.prune(writer, blobs, Retention(keep_first=100, keep_last=100, max_total_bytes=limit))
    assert storage.totals(reader)["stored_bytes"] <= limit
    assert storage.totals(reader)["reports_counted"] == 10
    assert {b["count"] for b in storage.list_buckets(reader, storage.BucketQuery())[0]} == {5}
    writer.dispose()
    reader.dispose()


def test_killed_upload_leaves_nothing_counted(db_url: str, tmp_path: Path) -> None:
    """A worker killed after storing the blob but before the row commits: nothing is counted, and
    the orphan and the spooled body are swept later."""
    config = ServerConfig(data_dir=str(tmp_path), db_url=db_url)
    writer, reader = make_engines(config.database_url)
    storage.migrate(writer, str(tmp_path))
    blobs = LocalBlobStore(str(tmp_path / "blobs"), fsync=False)
    ing = Ingestor(config, writer, blobs)
    (tmp_path / "tmp").mkdir()

    def boom(*_a: object, **_k: object) -> None:
        raise SystemExit("killed")

    original = storage.record
    storage.record = boom  # type: ignore[assignment]
    try:
        try:
            ing.ingest_archive(_spool(tmp_path / "tmp", make_archive(ccpp_elements(5)), 1), name=None, token=None,
                               client_id=None)
        except SystemExit:
            pass
    finally:
        storage.record = original
    (tmp_path / "tmp" / "upload-x.part").write_bytes(b"half a body")
    assert storage.totals(reader) == {"reports_counted": 0, "buckets": 0, "reports_stored": 0, "stored_bytes": 0}
    assert len(list(blobs.iter_keys())) == 1
    later = time.time() + 7200
    stats = retention.prune(writer, blobs, Retention(), now=later, tmp_dir=str(tmp_path / "tmp"))
    assert stats.orphans == 1 and stats.tmp_files == 1 and not list(blobs.iter_keys())
    writer.dispose()
    reader.dispose()
