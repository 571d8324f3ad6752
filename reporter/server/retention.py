"""Pruning: keep the first N and last M reports of every bucket, within age and size limits.

Only report rows and their blobs go; buckets keep their counts, first/last seen, host,
day and version tallies, so the UI and API numbers survive pruning. Rules, in order:

1. per bucket, reports that are neither among the first ``keep_first`` nor the last
   ``keep_last`` (by arrival) are deleted;
2. reports older than ``max_age_days`` are deleted, except each bucket's first report;
3. while the stored bytes exceed ``max_total_bytes``, the oldest reports are deleted,
   again sparing each bucket's first report.

Rows are deleted (in a transaction) before their blobs; a blob whose row is gone is an
orphan, and orphans older than the grace period are removed too (they are also what a
worker killed between storing a blob and committing its row leaves behind). Spooled
request bodies older than the grace period are removed from the tmp directory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select, update

from reporter.server.blobs import BlobStore
from reporter.server.config import Retention, ServerConfig
from reporter.server.db import buckets, reports

log = logging.getLogger("crashkit.serve")
BATCH = 500


@dataclass
class PruneStats:
    """What one pass removed."""

    reports: int = 0
    bytes: int = 0
    orphans: int = 0
    tmp_files: int = 0


def _first_ids(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return {int(i) for i in conn.execute(select(func.min(reports.c.id)).group_by(reports.c.bucket_id)).scalars()}


def _doomed_by_count(engine: Engine, policy: Retention) -> list[int]:
    keep = policy.keep_first + policy.keep_last
    doomed: list[int] = []
    with engine.connect() as conn:
        crowded = conn.execute(select(reports.c.bucket_id).group_by(reports.c.bucket_id)
                               .having(func.count() > keep)).scalars().all()
        for bucket_id in crowded:
            ids = conn.execute(select(reports.c.id).where(reports.c.bucket_id == bucket_id)
                               .order_by(reports.c.id)).scalars().all()
            doomed.extend(int(i) for i in ids[policy.keep_first: len(ids) - policy.keep_last])
    return doomed


def _doomed_by_age(engine: Engine, policy: Retention, now: float, spare: set[int]) -> list[int]:
    if policy.max_age_days <= 0:
        return []
    cutoff = now - policy.max_age_days * 86400
    with engine.connect() as conn:
        ids = conn.execute(select(reports.c.id).where(reports.c.received_at < cutoff)).scalars().all()
    return [int(i) for i in ids if int(i) not in spare]


def _doomed_by_size(engine: Engine, policy: Retention, spare: set[int], gone: set[int]) -> list[int]:
    if policy.max_total_bytes <= 0:
        return []
    with engine.connect() as conn:
        total = int(conn.execute(select(func.coalesce(func.sum(reports.c.blob_size), 0))).scalar_one())
        rows = conn.execute(select(reports.c.id, reports.c.blob_size).order_by(reports.c.received_at, reports.c.id))
        doomed = []
        for rid, size in rows:
            if total <= policy.max_total_bytes:
                break
            rid = int(rid)
            if rid in gone:
                total -= int(size)
            elif rid not in spare:
                doomed.append(rid)
                total -= int(size)
    return doomed


def _delete(engine: Engine, blobs: BlobStore, ids: Iterable[int], stats: PruneStats) -> None:
    ids = sorted(set(ids))
    for i in range(0, len(ids), BATCH):
        chunk = ids[i:i + BATCH]
        with engine.begin() as conn:
            rows = conn.execute(select(reports.c.blob_key, reports.c.blob_size, reports.c.bucket_id)
                                .where(reports.c.id.in_(chunk))).all()
            conn.execute(delete(reports).where(reports.c.id.in_(chunk)))
            for bucket_id in {int(r.bucket_id) for r in rows}:
                first = select(func.min(reports.c.id)).where(reports.c.bucket_id == bucket_id).scalar_subquery()
                conn.execute(update(buckets).where(buckets.c.id == bucket_id,
                                                   buckets.c.representative_id.in_(chunk))
                             .values(representative_id=first))
        for row in rows:  # after the commit: a crash here leaves orphans, never dangling rows
            blobs.delete(row.blob_key)
            stats.reports += 1
            stats.bytes += int(row.blob_size)


def remove_orphans(engine: Engine, blobs: BlobStore, grace: float, now: float) -> int:
    """Delete blobs that no report references and that are older than *grace* seconds."""
    removed = 0
    batch: list[str] = []

    def flush() -> int:
        with engine.connect() as conn:
            used = set(conn.execute(select(reports.c.blob_key).where(reports.c.blob_key.in_(batch))).scalars())
        n = 0
        for key in batch:
            if key not in used:
                blobs.delete(key)
                n += 1
        batch.clear()
        return n

    for key, mtime in blobs.iter_keys():
        if now - mtime >= grace:
            batch.append(key)
            if len(batch) >= BATCH:
                removed += flush()
    if batch:
        removed += flush()
    return removed


def clean_tmp(tmp_dir: str, grace: float, now: float) -> int:
    """Remove spooled bodies left by killed workers."""
    removed = 0
    try:
        names = os.listdir(tmp_dir)
    except FileNotFoundError:
        return 0
    for name in names:
        path = os.path.join(tmp_dir, name)
        try:
            if name.endswith(".part") and now - os.stat(path).st_mtime >= grace:
                os.unlink(path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def prune(engine: Engine, blobs: BlobStore, policy: Retention, *, now: float | None = None,
          tmp_dir: str | None = None) -> PruneStats:
    """One pruning pass (see the module docstring)."""
    now = time.time() if now is None else now
    stats = PruneStats()
    _delete(engine, blobs, _doomed_by_count(engine, policy), stats)
    spare = _first_ids(engine)
    _delete(engine, blobs, _doomed_by_age(engine, policy, now, spare), stats)
    _delete(engine, blobs, _doomed_by_size(engine, policy, spare, set()), stats)
    stats.orphans = remove_orphans(engine, blobs, policy.orphan_grace_seconds, now)
    if tmp_dir:
        stats.tmp_files = clean_tmp(tmp_dir, policy.orphan_grace_seconds, now)
    return stats


class Pruner:
    """A daemon thread that runs :func:`prune` every ``interval_seconds``."""

    def __init__(self, engine: Engine, blobs: BlobStore, config: ServerConfig) -> None:
        self._stop = threading.Event()
        self._args = (engine, blobs, config)
        self._thread = threading.Thread(target=self._run, name="crashkit-pruner", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        engine, blobs, config = self._args
        while not self._stop.wait(config.retention.interval_seconds):
            try:
                stats = prune(engine, blobs, config.retention, tmp_dir=config.tmp_dir)
                log.info("pruned %d reports (%d bytes), %d orphan blobs", stats.reports, stats.bytes, stats.orphans)
            except Exception:  # keep serving; the next pass retries
                log.exception("pruning failed")

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stop.set()


def start_background(engine: Engine, blobs: BlobStore, config: ServerConfig) -> Pruner | None:
    """Start the pruner unless the interval is 0."""
    if config.retention.interval_seconds <= 0:
        return None
    return Pruner(engine, blobs, config)
