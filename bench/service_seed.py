"""Seed an upload-service database with N reports in M buckets (for the bucket-list bench).

Rows go in with bulk INSERTs straight into the schema (no archives or blobs: the list page
reads buckets only), after the service's own migration. Usage:
``python bench/service_seed.py --db URL [--reports 100000] [--buckets 5000]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reporter.server.config import normalize_db_url  # noqa: E402
from reporter.server.db import bucket_days, bucket_hosts, buckets, make_engines, reports  # noqa: E402
from reporter.server.storage import migrate  # noqa: E402

KINDS = ("core", "core", "core", "kerneloops", "python")
BATCH = 5000


def seed(db_url: str, n_reports: int = 100_000, n_buckets: int = 5000, data_dir: str = "/tmp") -> float:
    """Insert the rows; returns the seconds it took."""
    t0 = time.perf_counter()
    writer, reader = make_engines(normalize_db_url(db_url) if db_url.startswith("postgres") else db_url)
    migrate(writer, data_dir)
    rng = random.Random(42)
    now = time.time()
    per = [n_reports // n_buckets + (1 if i < n_reports % n_buckets else 0) for i in range(n_buckets)]
    with writer.begin() as conn:
        rows = []
        for i in range(n_buckets):
            first = now - rng.uniform(1, 90) * 86400
            rows.append({"id": i + 1, "kind": KINDS[i % len(KINDS)], "duphash": hashlib.sha1(str(i).encode()).hexdigest(),
                         "title": f"victim{i % 97} killed by SIGSEGV in function_{i}", "component": f"pkg{i % 50}",
                         "executable": f"/usr/bin/victim{i % 97}", "crash_function": f"function_{i}", "count": per[i],
                         "host_count": min(per[i], 10), "first_seen": first, "last_seen": rng.uniform(first, now),
                         "representative_id": None})
        conn.execute(buckets.insert(), rows)
        conn.execute(bucket_hosts.insert(), [{"bucket_id": i + 1, "host": f"host{h}", "count": 1, "first_seen": now,
                                              "last_seen": now} for i in range(n_buckets) for h in range(min(per[i], 10))])
        conn.execute(bucket_days.insert(), [{"bucket_id": i + 1, "day": int(now // 86400), "count": per[i]}
                                            for i in range(n_buckets)])
    rid = 0
    elements = json.dumps([{"name": "reason", "size": 20, "binary": False, "text": "victim killed by SIGSEGV"}])
    batch = []
    for i in range(n_buckets):
        for _ in range(per[i]):
            rid += 1
            batch.append({"id": rid, "bucket_id": i + 1, "source": "bundle", "content_hash": hashlib.sha256(
                str(rid).encode()).hexdigest(), "kind": KINDS[i % len(KINDS)], "host": f"host{rid % 10}",
                "received_at": now - rng.uniform(0, 86400 * 30), "blob_key": f"00/{rid}", "blob_size": 65536,
                "archive_format": "tar.gz", "elements": elements, "reason": "victim killed by SIGSEGV"})
            if len(batch) >= BATCH:
                with writer.begin() as conn:
                    conn.execute(reports.insert(), batch)
                batch = []
    if batch:
        with writer.begin() as conn:
            conn.execute(reports.insert(), batch)
    if writer.dialect.name == "postgresql":
        with writer.begin() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('reports', 'id'), (SELECT max(id) FROM reports))")
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('buckets', 'id'), (SELECT max(id) FROM buckets))")
            conn.exec_driver_sql("ANALYZE")
    writer.dispose()
    reader.dispose()
    return time.perf_counter() - t0


def main() -> int:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--reports", type=int, default=100_000)
    ap.add_argument("--buckets", type=int, default=5000)
    args = ap.parse_args()
    print(f"seeded {args.reports} reports in {args.buckets} buckets in {seed(args.db, args.reports, args.buckets):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
