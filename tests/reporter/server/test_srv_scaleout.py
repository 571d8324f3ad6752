"""Scale-out: two separate ``crashkit serve`` processes on one database and one blob store.

Uploads are spread over both; every report is also sent to both at the same instant. The
database's unique constraints must make each one report, and the bucket counts exact.
Runs on PostgreSQL (the scale-out database) and on SQLite (two processes on one WAL file).
Blobs: one S3 bucket on moto's standalone server (an emulator, started here on 127.0.0.1).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


import httpx
import pytest
from srv_helpers import REPO, Serve, ccpp_elements, free_port, make_archive, rotate_in_place, upload

TOKEN = "fleet"
BUCKETS = 8
SPREAD = 96      # uploads alternating between the two servers
RACED = 24       # reports sent to both servers at once


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """moto's S3 emulator on 127.0.0.1 with one bucket; the environment that points boto3 at it."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket="crash-blobs")
    try:
        yield env
    finally:
        server.stop()


def _objects(env: dict[str, str], prefix: str) -> list[str]:
    import boto3

    c = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="test",
                     aws_secret_access_key="test", region_name="us-east-1")
    return [o["Key"] for o in c.list_objects_v2(Bucket="crash-blobs", Prefix=prefix).get("Contents", [])]


@pytest.mark.slow
def test_two_workers_one_database_one_blob_store(db_url: str, s3: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "tokens").write_text(f"{TOKEN}\n")
    prefix = f"run-{time.monotonic_ns()}"
    blobs = f"s3://crash-blobs/{prefix}"
    servers = [Serve(tmp_path / f"data{i}", db=db_url, blobs=blobs, token_file=tmp_path / "tokens", env=s3,
                     extra=["--rate-limit", "0"]) for i in range(2)]
    try:
        expected: Counter[int] = Counter()
        jobs: list[tuple[str, bytes]] = []
        for i in range(SPREAD):
            b = i % BUCKETS
            expected[b] += 1
            jobs.append((servers[i % 2].url, make_archive(ccpp_elements(9000 + b, host=f"h{i % 5}", unique=f"s{i}"))))
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
            spread = list(pool.map(lambda job: upload(client, job[0], job[1], token=TOKEN), jobs))
        assert [r.status_code for r in spread] == [201] * SPREAD

        raced: list[list[httpx.Response]] = []
        for i in range(RACED):
            b = i % BUCKETS
            expected[b] += 1
            archive = make_archive(ccpp_elements(9000 + b, unique=f"r{i}"))
            barrier = threading.Barrier(2)
            pair: list[httpx.Response] = []

            def send(url: str, archive: bytes = archive, barrier: threading.Barrier = barrier,
                     pair: list[httpx.Response] = pair, rid: str = f"race-{prefix}-{i}") -> None:
                with httpx.Client(timeout=60) as c:
                    barrier.wait()
                    pair.append(upload(c, url, archive, token=TOKEN, report_id=rid))

            threads = [threading.Thread(target=send, args=(s.url,)) for s in servers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            raced.append(pair)
        for pair in raced:
            assert sorted(r.status_code for r in pair) == [200, 201], [r.text for r in pair]
            assert pair[0].json()["id"] == pair[1].json()["id"]

        with httpx.Client(timeout=60) as client:
            listed = client.get(f"{servers[0].url}/api/v1/buckets", params={"limit": 1000}).json()
            other = client.get(f"{servers[1].url}/api/v1/buckets", params={"limit": 1000}).json()
            assert listed == other
            by_title = {b["title"]: b for b in listed["buckets"]}
            assert listed["total"] == BUCKETS
            for b, n in expected.items():
                bucket = next(v for k, v in by_title.items() if f"case {9000 + b})" in k)
                assert bucket["count"] == n
            assert sum(b["count"] for b in listed["buckets"]) == SPREAD + RACED
            metrics = client.get(f"{servers[0].url}/metrics").text
            assert f"crashkit_reports_stored {SPREAD + RACED}" in metrics
            # every stored report's bundle is in the one blob store, readable from either worker
            some = spread[0].json()["id"]
            assert client.get(f"{servers[1].url}/api/v1/reports/{some}/bundle").content == jobs[0][1]
        assert len(_objects(s3, prefix + "/")) == SPREAD + RACED
    finally:
        for s in servers:
            s.stop()


@pytest.mark.slow
def test_workers_option(tmp_path: Path) -> None:
    """``--workers 2`` on one SQLite database: 32 clients connecting at once reach both workers
    (one SO_REUSEPORT socket each), the counts are exact, SIGHUP reaches every worker."""
    server = Serve(tmp_path / "data", workers=2, extra=["--rate-limit", "0"])
    try:
        clients = [httpx.Client(timeout=60) for _ in range(32)]
        try:
            with ThreadPoolExecutor(32) as pool:
                replies = list(pool.map(lambda i: upload(clients[i], server.url, make_archive(
                    ccpp_elements(1, unique=str(i))), token=server.token), range(32)))
            assert {r.status_code for r in replies} == {201} and len({r.json()["id"] for r in replies}) == 32
            workers = Counter(line.split('worker="')[1].split('"')[0] for c in clients
                              for line in c.get(f"{server.url}/metrics").text.splitlines()
                              if line.startswith("crashkit_uploads_total"))
            assert len(workers) == 2, workers
        finally:
            for c in clients:
                c.close()
        with httpx.Client(timeout=60) as client:
            assert client.get(f"{server.url}/api/v1/buckets").json()["buckets"][0]["count"] == 32
        # a token rotated in place (same size and mtime): only the forwarded SIGHUP can tell
        new = rotate_in_place(tmp_path / "data" / "upload-tokens", server.token, "W")
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while True:  # fresh connections land on both workers: every one must know the new token
            codes = {_fresh_upload(server, make_archive(ccpp_elements(2, unique=f"h{i}")), new) for i in range(16)}
            if codes == {201}:
                break
            assert time.monotonic() < deadline, codes
            time.sleep(0.3)
        assert server.alive()
    finally:
        server.stop()


def _fresh_upload(server: Serve, archive: bytes, token: str) -> int:
    """The status of one upload on a new connection."""
    with httpx.Client(timeout=60) as c:
        return upload(c, server.url, archive, token=token).status_code


def test_workers_port_taken_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "collectors.cli", "serve", "--workers", "2", "--port", str(port),
                              "--data", str(tmp_path / "data")], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode != 0 and f"127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr, out.stderr
