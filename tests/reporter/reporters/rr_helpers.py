"""Helpers of the reporter tests: the real upload service, a fault-injecting proxy in front
of it, and copies of real problem directories."""

from __future__ import annotations

import http.client
import http.server
import shutil
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

import srv_helpers  # noqa: E402
from srv_helpers import Serve, free_port  # noqa: E402,F401


def serve_on(port: int, data: Path, token_file: Path, extra: list[str] | None = None) -> Serve:
    """``crashkit serve`` on a port chosen beforehand (a server that "comes back")."""
    chosen = srv_helpers.free_port
    srv_helpers.free_port = lambda: port
    try:
        return Serve(data, token_file=token_file, extra=extra)
    finally:
        srv_helpers.free_port = chosen

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"


def make_min_dir(spool: Path, name: str, elements: dict[str, str | bytes]) -> Path:
    """A small committed CCpp problem directory (time, type, architecture + *elements*)."""
    from reporter.dumpdir import DumpDir

    spool.mkdir(parents=True, exist_ok=True)
    dd = DumpDir.create(str(spool), name)
    try:
        dd.set_time(int(time.time()))
        for key, value in {"type": "CCpp", "architecture": "x86_64", "hostname": "h1", **elements}.items():
            if isinstance(value, bytes):
                dd.save_bytes(key, value)
            else:
                dd.save_text(key, value)
        return Path(dd.commit())
    finally:
        dd.close()


def copy_problem(fixtures_dir: Path, name: str, dest: Path) -> Path:
    """A writable copy of fixture problem directory *name* (``.libreport`` included)."""
    out = dest / name
    shutil.copytree(fixtures_dir / name, out)
    for p in [out, *out.rglob("*")]:
        p.chmod(0o750 if p.is_dir() else 0o640)
    return out


def read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body of *handler*'s request, chunked (as the reporters stream) or sized."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of *upstream* that can misbehave on purpose.

    ``plan`` is consumed one item per request: ``"pass"`` forwards; an int answers that
    status without forwarding (``429`` adds ``Retry-After``); ``"drop"`` forwards, lets the
    server store the request, then closes the connection without an answer. Once the plan
    is used up every request passes. ``seen`` counts the requests that arrived.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.plan: list[str | int] = []
        self.seen = 0
        self.forwarded = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                body = read_body(self)
                with proxy.lock:
                    proxy.seen += 1
                    step = proxy.plan.pop(0) if proxy.plan else "pass"
                if isinstance(step, int):
                    data = b'{"error": "injected failure"}'
                    self.send_response(step)
                    if step == 429:
                        self.send_header("Retry-After", "120")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("transfer-encoding", "content-length", "connection", "host")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                with proxy.lock:
                    proxy.forwarded += 1
                if step == "drop":
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_PUT = do_POST = do_GET = _handle

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(main: Callable[[list[str]], int], *argv: str) -> int:
    """Run a reporter's ``main`` in-process."""
    return main(list(argv))

#: The upload token the ``serve`` fixture (conftest.py) accepts.
TOKEN = "tok-3f9a1c7e5b"
