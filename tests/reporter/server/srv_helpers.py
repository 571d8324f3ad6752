"""Helpers for the upload-service tests and benches: archives, problem directories, a server process."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_archive(elements: Mapping[str, bytes], fmt: str = "gz", *, tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    """A flat tar of *elements* as reporter-upload writes it (mode 0644), compressed with *fmt*."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tar_format) as tar:
        for name, data in elements.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    data = raw.getvalue()
    if fmt == "gz":
        import gzip

        return gzip.compress(data, mtime=0)
    if fmt == "xz":
        import lzma

        return lzma.compress(data)
    if fmt == "zst":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    if fmt == "bz2":
        import bz2

        return bz2.compress(data)
    return data


def core_backtrace(function: str, build_id: str = "ab" * 20, offset: int = 0x1000) -> bytes:
    """A satyr core_backtrace with one crash thread whose top frame is *function*."""
    doc = {"signal": 11, "executable": "/usr/bin/victim", "stacktrace": [{"crash_thread": True, "frames": [
        {"address": 0x400000 + offset, "build_id": build_id, "build_id_offset": offset,
         "function_name": function, "file_name": "/usr/bin/victim"},
        {"address": 0x401000, "build_id": build_id, "build_id_offset": 0x2000, "function_name": "main",
         "file_name": "/usr/bin/victim"}]}]}
    return json.dumps(doc, indent=1).encode()


def ccpp_elements(bucket: int, *, host: str = "host-1", when: int | None = None, reason: str | None = None,
                  extra: Mapping[str, bytes] | None = None, unique: str = "") -> dict[str, bytes]:
    """A small CCpp problem directory whose crash falls in bucket number *bucket*."""
    out = {
        "time": str(when or int(time.time())).encode(),
        "type": b"CCpp",
        "analyzer": b"abrt-ccpp",
        "reason": (reason or f"victim killed by SIGSEGV (case {bucket})").encode(),
        "executable": b"/usr/bin/victim",
        "cmdline": b"victim --crash",
        "hostname": host.encode(),
        "kernel": b"6.1.0-18-amd64",
        "architecture": b"x86_64",
        "package": b"victim-1.0-1",
        "component": b"victim",
        "uid": b"1000",
        "core_backtrace": core_backtrace(f"crash_here_{bucket}", offset=0x1000 + bucket),
        "nonce": unique.encode(),
    }
    out.update(extra or {})
    return out


def sha256(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def first_token(path: Path) -> str:
    """The first token of a token file (``TOKEN [LABEL]`` lines, ``#`` comments)."""
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.split()[0]
    raise ValueError(f"{path} has no token")


def rotate_in_place(path: Path, old: str, fill: str) -> str:
    """Replace token *old* in a token file by a new one of the same length, keeping the inode,
    size and mtime, so that only a SIGHUP (not the change check) makes the server see it."""
    before = path.stat()
    new = fill * len(old)
    content = path.read_text().replace(old, new)
    with open(path, "r+") as f:
        f.write(content)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    return new


class Serve:
    """``crashkit serve`` in a subprocess on a free port; stop with :meth:`stop`."""

    def __init__(self, data: Path, *, db: str | None = None, blobs: str | None = None,
                 token_file: Path | None = None, read_token_file: Path | None = None,
                 extra: list[str] | None = None, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, workers: int = 1, fsync: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "collectors.cli", "serve", "--port", str(self.port), "--data", str(data),
                "--workers", str(workers)] + ([] if fsync else ["--no-fsync"])
        for opt, value in (("--db", db), ("--blobs", blobs), ("--token-file", token_file),
                           ("--read-token-file", read_token_file)):
            if value is not None:
                argv += [opt, str(value)]
        argv += extra or []
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        self.log_path = data.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
                                     cwd=str(cwd or data.parent), start_new_session=True)
        self.wait_ready()
        #: an upload token the server accepts: the first of --token-file, else of the file it generated
        self.token = first_token(token_file or data / "upload-tokens")

    def auth(self) -> dict[str, str]:
        """The ``Authorization`` header with :attr:`token`."""
        return {"Authorization": f"Bearer {self.token}"}

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /healthz answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"crashkit serve exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("crashkit serve did not become ready: " + self.log_path.read_text()[-2000:])

    def alive(self) -> bool:
        """True while the process runs and answers /healthz."""
        if self.proc.poll() is not None:
            return False
        try:
            return httpx.get(self.url + "/healthz", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def pids(self) -> list[int]:
        """The server process and its worker processes (``--workers N``)."""
        out = [self.proc.pid]
        try:
            out += [int(p) for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        except OSError:
            pass
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by :meth:`pids` (processes that exited are not counted)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def signal(self, sig: int) -> None:
        """Send *sig* to the server process."""
        self.proc.send_signal(sig)

    def stop(self) -> None:
        """SIGTERM the server (its whole session, for --workers N) and wait."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def upload(client: httpx.Client, url: str, archive: bytes, name: str = "problem.tar.gz", token: str | None = None,
           report_id: str | None = None) -> httpx.Response:
    """PUT an archive as reporter-upload does."""
    headers: dict[str, Any] = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if report_id:
        headers["X-Crashkit-Report-Id"] = report_id
    return client.put(f"{url}/upload/{name}", content=archive, headers=headers)
