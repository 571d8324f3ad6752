"""Load figures of ``crashkit serve`` on loopback, each with a baseline measured in the same run.

1. uploads: 64 KiB problem-directory archives from 32 concurrent keep-alive clients, on SQLite
   and on PostgreSQL (2 workers each by default), in several rounds (the machine is shared: the
   spread is printed); rate, p50/p99 latency, the CPU share of the server and of this load
   generator (one asyncio thread on raw keep-alive sockets, bodies built before the clock
   starts), and the books after every round (database count == acknowledged uploads: 0 lost,
   0 duplicated). Baseline: a trivial ``/healthz`` rate with the same clients, same server.
2. the bucket-list page with 100,000 reports in 5,000 buckets (seeded by bench/service_seed.py);
   baseline: ``/healthz`` latency.
3. peak RSS of the server while a 1 GiB bundle uploads, against its RSS before.

Loops are bounded by count and time; everything binds 127.0.0.1. Usage:
``python bench/service_load.py [--uploads 2000] [--rounds 3] [--fsync] [--skip-sqlite] [--skip-pg]
[--skip-list] [--skip-rss]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "reporter" / "server"))
sys.path.insert(0, str(REPO))

from srv_helpers import Serve, ccpp_elements  # noqa: E402

CLIENTS = 32
TOKEN = "bench-token"
TIME_CAP = 120.0


def archive_64k(i: int) -> bytes:
    """A CCpp problem directory archive of about 64 KiB (an incompressible 63 KiB core)."""
    elements = ccpp_elements(i % 200, host=f"host{i % 50}", unique=str(i))
    elements["coredump"] = os.urandom(63 * 1024)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in elements.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes) -> int:
    writer.write(head + body)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def _drive(port: int, jobs: list[tuple[bytes, bytes]], clients: int) -> tuple[list[float], dict[int, int], float]:
    """Send every (head, body) job over *clients* keep-alive connections; (latencies, statuses, seconds)."""
    queue: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + TIME_CAP

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while not queue.empty() and time.monotonic() < deadline:
                head, body = queue.get_nowait()
                t0 = time.perf_counter()
                status = await _request(reader, writer, head, body)
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - t0


def _put(i: int, body: bytes) -> tuple[bytes, bytes]:
    head = (f"PUT /upload/bench-{i}.tar.gz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    return head, body


HEALTH = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"")


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def _load() -> str:
    """The 1, 5 and 15 minute load averages (other work on the 2 shared cores)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _accounting(server: Serve) -> tuple[int, int]:
    """(reports counted in buckets, report rows stored) as the service reports them."""
    with httpx.Client(timeout=60) as c:
        counted = stored = 0
        offset = 0
        while True:
            page = c.get(f"{server.url}/api/v1/buckets", params={"limit": 1000, "offset": offset}).json()
            counted += sum(b["count"] for b in page["buckets"])
            offset += 1000
            if offset >= page["total"]:
                break
        stored = int(next(line.split()[1] for line in c.get(f"{server.url}/metrics").text.splitlines()
                          if line.startswith("crashkit_reports_stored ")))
    return counted, stored


def upload_figure(label: str, server: Serve, uploads: int, rounds: int) -> list[dict[str, float]]:
    """Upload rounds against one server: rate, latency, CPU shares, and the books after each round."""
    port = server.port
    h_lat, _h_st, h_secs = asyncio.run(_drive(port, [HEALTH] * 4000, CLIENTS))
    base_rate = len(h_lat) / h_secs
    print(f"[{label}] baseline /healthz: {base_rate:.0f}/s (p99 {_pct(h_lat, 0.99):.1f} ms), load {_load()}")
    acked_total, results = 0, []
    for r in range(rounds):
        jobs = [_put(r * uploads + i, archive_64k(r * uploads + i)) for i in range(uploads)]
        size_kib = len(jobs[0][1]) // 1024
        load_before = _load()
        srv0, cli0 = server.cpu_seconds(), time.process_time()
        lat, statuses, secs = asyncio.run(_drive(port, jobs, CLIENTS))
        srv_cpu, cli_cpu = server.cpu_seconds() - srv0, time.process_time() - cli0
        del jobs
        acked_total += statuses.get(201, 0)
        counted, stored = _accounting(server)
        rate = len(lat) / secs
        res = {"rate": rate, "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "server_cpu": srv_cpu / secs,
               "client_cpu": cli_cpu / secs}
        results.append(res)
        print(f"[{label}] round {r + 1}: {len(lat)} x {size_kib} KiB from {CLIENTS} clients in {secs:.2f} s = "
              f"{rate:.0f}/s ({rate / base_rate:.2f} x /healthz), p50 {res['p50']:.1f} ms, p99 {res['p99']:.1f} ms; "
              f"statuses {statuses}; CPU: server {res['server_cpu'] * 100:.0f}% "
              f"({srv_cpu / max(1, len(lat)) * 1000:.2f} ms/upload), load generator {res['client_cpu'] * 100:.0f}% "
              f"(of 200%); load {load_before} -> {_load()}")
        print(f"[{label}] accounting after round {r + 1}: acknowledged {acked_total}, in database {counted} "
              f"(stored rows {stored}): lost {max(0, acked_total - counted)}, duplicated {max(0, counted - acked_total)}, "
              f"unacknowledged {uploads - statuses.get(201, 0)}")
    rates, p99s = sorted(x["rate"] for x in results), sorted(x["p99"] for x in results)
    print(f"[{label}] spread over {rounds} rounds: rate {rates[0]:.0f}..{rates[-1]:.0f}/s "
          f"(median {statistics.median(rates):.0f}), p99 {p99s[0]:.0f}..{p99s[-1]:.0f} ms "
          f"(median {statistics.median(p99s):.0f}); target >= 200/s with p99 < 250 ms: "
          f"{sum(1 for x in results if x['rate'] >= 200 and x['p99'] < 250)}/{rounds} rounds met it")
    return results


def list_page_figure(label: str, server: Serve) -> None:
    """Bucket-list page latency against /healthz latency."""
    with httpx.Client(timeout=60) as c:
        def timed(path: str, n: int) -> list[float]:
            out = []
            for _ in range(n):
                t0 = time.perf_counter()
                r = c.get(server.url + path)
                out.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text[:200]
            return out

        timed("/", 3)
        page = timed("/", 40)
        sorted_page = timed("/?sort=count&order=desc&page=50", 20)
        filtered = timed("/?kind=kerneloops&q=function_1", 20)
        health = timed("/healthz", 40)
        total = c.get(server.url + "/api/v1/buckets", params={"limit": 1}).json()["total"]
    med = statistics.median
    print(f"[{label}] bucket list ({total} buckets): median {med(page) * 1000:.1f} ms, p95 {_pct(page, 0.95):.1f} ms; "
          f"sorted by count page 50 {med(sorted_page) * 1000:.1f} ms; kind+text filter {med(filtered) * 1000:.1f} ms; "
          f"/healthz {med(health) * 1000:.2f} ms (page = {med(page) / med(health):.1f} x /healthz)")


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_figure(tmp: Path) -> None:
    """Peak RSS while a 1 GiB bundle uploads (VmHWM before and after)."""
    src = tmp / "big"
    src.mkdir()
    (src / "time").write_text(str(int(time.time())))
    (src / "type").write_text("CCpp")
    (src / "reason").write_text("big crash")
    with open(src / "coredump", "wb") as out:
        for _ in range(1024):
            out.write(os.urandom(1 << 20))
    bundle = tmp / "big.tar.gz"
    subprocess.run(f"tar -cf - -C {src} time type reason coredump | gzip -1 > {bundle}", shell=True, check=True)
    (src / "coredump").unlink()
    server = Serve(tmp / "data-rss", extra=["--rate-limit", "0"])
    try:
        with httpx.Client(timeout=600) as c:
            for i in range(20):  # warm up: the code paths of an upload are loaded before measuring
                r = c.put(f"{server.url}/upload/w{i}.tar.gz", content=archive_64k(i), headers=server.auth())
                assert r.status_code == 201, r.text
            before = _rss_kib(server.proc.pid, "VmHWM")
            samples: list[int] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.05):
                    samples.append(_rss_kib(server.proc.pid, "VmRSS"))

            t = threading.Thread(target=sample)
            t.start()
            t0 = time.perf_counter()
            with open(bundle, "rb") as f:
                r = c.put(f"{server.url}/upload/big.tar.gz", content=f, headers=server.auth())
            secs = time.perf_counter() - t0
            stop.set()
            t.join()
            after = _rss_kib(server.proc.pid, "VmHWM")
        size = bundle.stat().st_size
        print(f"[rss] 1 GiB bundle ({size / (1 << 30):.2f} GiB compressed) uploaded in {secs:.1f} s "
              f"({size / secs / (1 << 20):.0f} MiB/s), status {r.status_code}; server peak RSS {before / 1024:.0f} MiB "
              f"before, {after / 1024:.0f} MiB after (max sampled {max(samples) / 1024:.0f} MiB): "
              f"ratio {after / before:.2f}, growth {(after - before) / 1024:.1f} MiB for {size / (1 << 20):.0f} MiB of body")
    finally:
        server.stop()


def main() -> int:
    """Run the figures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uploads", type=int, default=2000, help="uploads per round")
    ap.add_argument("--rounds", type=int, default=3, help="upload rounds per database (the spread is printed)")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-list", action="store_true")
    ap.add_argument("--sqlite-workers", type=int, default=2)
    ap.add_argument("--pg-workers", type=int, default=2)
    ap.add_argument("--fsync", action="store_true", help="fsync every blob (the service's default); "
                    "without it the servers run with --no-fsync")
    args = ap.parse_args()
    extra = ["--rate-limit", "0", "--prune-interval", "0"]
    print(f"{os.cpu_count()} CPUs, load {_load()}; blobs {'fsynced' if args.fsync else 'not fsynced (--no-fsync)'}")
    with tempfile.TemporaryDirectory(prefix="crashkit-bench-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "tokens").write_text(TOKEN + "\n")
        if not args.skip_sqlite:
            server = Serve(tmp / "data-sqlite", token_file=tmp / "tokens", extra=extra, workers=args.sqlite_workers,
                           fsync=args.fsync)
            try:
                upload_figure(f"sqlite, {args.sqlite_workers} worker(s)", server, args.uploads, args.rounds)
            finally:
                server.stop()
        cluster = None
        if not args.skip_pg:
            from srv_pgcluster import PgCluster, unavailable_reason

            reason = unavailable_reason()
            if reason:
                print(f"[postgresql] skipped: {reason}")
            else:
                cluster = PgCluster()
        try:
            if cluster is not None:
                server = Serve(tmp / "data-pg", db=cluster.create_database(), token_file=tmp / "tokens",
                               workers=args.pg_workers, extra=extra, fsync=args.fsync)
                try:
                    upload_figure(f"postgresql, {args.pg_workers} workers", server, args.uploads, args.rounds)
                finally:
                    server.stop()
            if not args.skip_list:
                list_figures(tmp, cluster, extra)
        finally:
            if cluster is not None:
                cluster.stop()
        if not args.skip_rss:
            rss_figure(tmp)
    return 0


def list_figures(tmp: Path, cluster: object, extra: list[str]) -> None:
    """The bucket-list page on a seeded SQLite database, and on PostgreSQL when there is a cluster."""
    from service_seed import seed

    targets: list[tuple[str, str, Callable[[], str]]] = [
        ("sqlite", "SQLite", lambda: f"sqlite:///{tmp / 'seed.sqlite3'}")]
    if cluster is not None:
        targets.append(("postgresql", "PostgreSQL", cluster.create_database))  # type: ignore[attr-defined]
    for short, name, make_db in targets:
        db = make_db()
        print(f"[list] seeded 100000 reports in 5000 buckets in {seed(db, data_dir=str(tmp)):.1f} s ({name})")
        server = Serve(tmp / f"data-list-{short}", db=db, extra=extra)
        try:
            list_page_figure(f"list, {short}", server)
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
