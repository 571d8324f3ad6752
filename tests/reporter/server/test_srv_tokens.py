"""Upload tokens are always required: the zero-setup token file, refusals at start-up, SIGHUP."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from srv_helpers import REPO, Serve, ccpp_elements, free_port, make_archive, rotate_in_place, upload


def _archive(tag: str) -> bytes:
    return make_archive(ccpp_elements(9001, unique=f"{tag}-{time.monotonic_ns()}"))


@pytest.mark.slow
def test_zero_setup_generates_a_private_token_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Serve(data, extra=["--rate-limit", "0"])
    try:
        tokens = data / "upload-tokens"
        assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
        assert server.token and len(server.token) >= 40
        log = server.log_path.read_text()
        assert str(tokens) in log and "generated now" in log and server.token not in log
        with httpx.Client(timeout=60) as c:
            r = upload(c, server.url, _archive("none"))
            assert r.status_code == 401 and "Bearer" in r.headers["www-authenticate"], r.text
            faf = c.post(f"{server.url}/faf/reports/new/", files={"file": ("*buffer*", b"{}")})
            assert faf.status_code == 401 and faf.json()["error"]
            form = c.post(f"{server.url}/upload/", files={"file": ("p.tar.gz", _archive("form"))})
            assert form.status_code == 401
            assert upload(c, server.url, _archive("ok"), token=server.token).status_code == 201
            assert upload(c, server.url, _archive("bad"), token=server.token[:-1]).status_code == 401
            assert c.get(f"{server.url}/api/v1/buckets").status_code == 200  # reading stays open
    finally:
        server.stop()
    again = Serve(data, extra=["--rate-limit", "0"])  # a restart keeps the token
    try:
        assert again.token == server.token and "generated on the first start" in again.log_path.read_text()
    finally:
        again.stop()


@pytest.mark.slow
def test_sighup_rereads_a_rotated_token(tmp_path: Path) -> None:
    """The token is rotated in place with the same size and mtime, so only SIGHUP can tell."""
    server = Serve(tmp_path / "data", extra=["--rate-limit", "0"])
    try:
        old = server.token
        new = rotate_in_place(tmp_path / "data" / "upload-tokens", old, "N")
        with httpx.Client(timeout=60) as c:
            time.sleep(1.2)  # past the once-a-second change check: the stamp is unchanged
            assert upload(c, server.url, _archive("old"), token=old).status_code == 201
            assert upload(c, server.url, _archive("new"), token=new).status_code == 401
            server.signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while upload(c, server.url, _archive("new"), token=new).status_code != 201:
                assert time.monotonic() < deadline, "SIGHUP did not reload the token file"
                time.sleep(0.2)
            assert upload(c, server.url, _archive("old"), token=old).status_code == 401
        assert server.alive()
    finally:
        server.stop()


def _serve_fails(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collectors.cli", "serve", "--port", str(free_port()),
                           "--data", str(tmp_path / "data"), *args], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_token_file_without_tokens_is_refused_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "tokens"
    empty.write_text("# nobody yet\n\n")
    out = _serve_fails(tmp_path, "--token-file", str(empty))
    assert out.returncode != 0 and "has no token" in out.stderr and "Traceback" not in out.stderr, out.stderr
    missing = _serve_fails(tmp_path, "--token-file", str(tmp_path / "nope"))
    assert missing.returncode != 0 and "nope" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "data" / "upload-tokens").exists()  # an explicit file is never replaced
