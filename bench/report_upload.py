#!/usr/bin/env python3
"""reporter-crashkit: streaming a problem directory with a ~100 MB core, and flushing 1,000 queued reports.

1. Streaming: a real kernel core of tests/programs/crasher.c with a 64 MiB heap (cached
   like the coripper benches' cores; ~100 MB), then 100 MiB of random bytes (incompressible:
   the worst case), each in a problem directory; ``reporter-crashkit`` (a
   separate process) packs and PUTs it to a loopback sink that reads and discards the body.
   Figures: the directory's bytes over the reporter's wall time and over the transfer
   (first to last byte at the sink), and the reporter's peak RSS (wait4). Baseline, same
   run: the core file PUT raw (no packing) by requests from a file object. Targets:
   >= 100 MB/s, RSS < 50 MB.
2. Flush: 1,000 small reports queued while the server is down (the real reporter, in this
   process), then ``crashkit serve`` (SQLite) comes up and the outbox is flushed. Baseline:
   the same 1,000 archives PUT one after another on one keep-alive session. Target < 30 s.

Needs root for the kernel core (core_pattern set and restored under the tests' lock).
Usage: bench/report_upload.py [--dir WORKDIR] [--reports N]
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _coripper_cores import REPO, bench_parser, make_core, workdir_of

sys.path.insert(0, str(REPO / "tests" / "reporter" / "server"))

import requests  # noqa: E402
from srv_helpers import free_port  # noqa: E402

from reporter.dumpdir import DumpDir  # noqa: E402
from reporter.outbox import Outbox  # noqa: E402
from reporter.reporters import upload  # noqa: E402
from reporter.reporters.bundle import Bundle  # noqa: E402
from reporter.reporters.exclude import Exclusions  # noqa: E402
from reporter.reporters.flush import flush  # noqa: E402

MB = 1e6


class Sink:
    """A loopback HTTP server that reads every body (chunked or not) and throws it away."""

    def __init__(self) -> None:
        self.bytes = 0
        self.first: float | None = None
        self.last = 0.0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _read(self, n: int) -> None:
                while n > 0:
                    chunk = self.rfile.read(min(n, 1 << 20))
                    if not chunk:
                        return
                    if sink.first is None:
                        sink.first = time.perf_counter()
                    sink.bytes += len(chunk)
                    n -= len(chunk)

            def do_PUT(self) -> None:  # noqa: N802
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        self._read(size)
                        self.rfile.readline()
                else:
                    self._read(int(self.headers.get("Content-Length") or 0))
                sink.last = time.perf_counter()
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.bytes, self.first, self.last = 0, None, 0.0


def make_dir(spool: Path, name: str, elements: dict[str, bytes]) -> Path:
    spool.mkdir(parents=True, exist_ok=True)
    dd = DumpDir.create(str(spool), name)
    try:
        dd.set_time(int(time.time()))
        for key, value in {"type": b"CCpp", "architecture": b"x86_64", "hostname": b"bench", **elements}.items():
            dd.save_bytes(key, value)
        return Path(dd.commit())
    finally:
        dd.close()


def streaming(work: Path, core: Path, label: str) -> None:
    spool = work / "upload-spool"
    shutil.rmtree(spool, ignore_errors=True)
    d = make_dir(spool, "ccpp-bench", {"executable": b"/usr/bin/crasher", "reason": b"crasher killed by SIGSEGV"})
    shutil.copyfile(core, d / "coredump")
    size = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
    sink = Sink()
    # baseline: the raw core, streamed from its file by requests
    with open(core, "rb") as f:
        t0 = time.perf_counter()
        requests.put(f"{sink.url}/upload/raw", data=f, timeout=120)
        raw = time.perf_counter() - t0
    raw_rate = core.stat().st_size / raw / MB
    sink.reset()
    env = {**os.environ, "PYTHONPATH": str(REPO), "CRASHKIT_CONFIG": str(work / "none.toml"),
           "CRASHKIT_OUTBOX": str(work / "outbox-stream"), "NO_PROXY": "127.0.0.1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "reporter.reporters.upload", "-d", str(d), "-u",
                             f"{sink.url}/upload/"], env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    assert os.waitstatus_to_exitcode(status) == 0, status
    transfer = sink.last - (sink.first or sink.last)
    rss = usage.ru_maxrss / 1024
    print(f"streaming upload of a problem directory, {size / MB:.1f} MB ({label}, {core.stat().st_size / MB:.1f} MB):")
    print(f"  baseline: raw core PUT by requests       {raw_rate:8.1f} MB/s")
    print(f"  reporter-crashkit, whole process         {size / wall / MB:8.1f} MB/s  ratio {size / wall / MB / raw_rate:.2f}x"
          f"  ({wall:.2f} s incl. start-up)")
    print(f"  reporter-crashkit, first to last byte    {size / transfer / MB:8.1f} MB/s  ratio "
          f"{size / transfer / MB / raw_rate:.2f}x  (sent {sink.bytes / MB:.1f} MB compressed)")
    print(f"  target >= 100 MB/s: {'met' if size / wall / MB >= 100 else 'MISSED'};"
          f" reporter peak RSS {rss:.1f} MB (target < 50 MB: {'met' if rss < 50 else 'MISSED'})")
    sink.server.shutdown()


def flushing(work: Path, n: int) -> None:
    from srv_helpers import Serve

    base = work / "flush"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    os.environ.update({"CRASHKIT_CONFIG": str(base / "none.toml"), "CRASHKIT_OUTBOX": str(base / "outbox"),
                       "Upload_Password": "bench-token", "NO_PROXY": "127.0.0.1"})
    port = free_port()
    dirs = [make_dir(base / "spool", f"ccpp-{i:05d}", {"reason": f"victim {i} killed by SIGSEGV".encode(),
                                                       "executable": b"/usr/bin/victim", "nonce": str(i).encode()})
            for i in range(n)]
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        codes = [upload.main(["-d", str(d), "-u", f"http://127.0.0.1:{port}/upload/"]) for d in dirs]
    queue = time.perf_counter() - t0
    assert codes.count(75) == n, codes[:5]
    tokens = base / "tokens"
    tokens.write_text("bench-token bench\n")
    import srv_helpers

    srv_helpers.free_port = lambda: port
    srv = Serve(base / "data", token_file=tokens, extra=["--rate-limit", "0"])
    try:
        t0 = time.perf_counter()
        result = flush(Outbox(str(base / "outbox")))
        took = time.perf_counter() - t0
        assert result.delivered == n, result
        # baseline: the same archives, packed beforehand, PUT sequentially on one session
        archives = [b"".join(Bundle.open(str(d), Exclusions()).chunks()) for d in dirs]
        base_srv = Serve(base / "data2", token_file=tokens, extra=["--rate-limit", "0"])
        try:
            s = requests.Session()
            s.auth = ("", "bench-token")
            t0 = time.perf_counter()
            for i, a in enumerate(archives):
                r = s.put(f"{base_srv.url}/upload/ccpp-{i:05d}.tar.gz", data=a, timeout=60)
                assert r.status_code in (200, 201), r.text
            direct = time.perf_counter() - t0
        finally:
            base_srv.stop()
    finally:
        srv.stop()
    print(f"outbox of {n} reports queued while the server was down ({queue:.1f} s to queue, "
          f"{queue / n * 1000:.1f} ms each):")
    print(f"  baseline: {n} PUTs on one session        {direct:8.2f} s")
    print(f"  crashkit report --flush (4 workers)       {took:8.2f} s  ratio {took / direct:.2f}x"
          f"  (target < 30 s: {'met' if took < 30 else 'MISSED'})")


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--reports", type=int, default=1000)
    args = ap.parse_args()
    work = workdir_of(args)
    core = make_core(work, 64)
    tmp = Path(tempfile.mkdtemp(prefix="ckb-upload-", dir="/var/tmp"))
    try:
        streaming(tmp, core, "kernel core of crasher, 64 MiB heap")
        noise = tmp / "random.core"
        with open(noise, "wb") as f:  # the worst case: nothing to compress
            for _ in range(100):
                f.write(os.urandom(1 << 20))
        streaming(tmp, noise, "100 MiB of random bytes as the core")
        flushing(tmp, args.reports)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
