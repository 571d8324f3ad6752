"""reporter-crashkit against the real upload service: packing, credentials, the outbox, faults."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
from rr_helpers import TOKEN
from rr_helpers import FaultProxy, Serve, copy_problem, free_port, make_min_dir, serve_on

from reporter.dumpdir import DumpDir
from reporter.outbox import Outbox
from reporter.reporters import upload
from reporter.reporters.bundle import Bundle
from reporter.reporters.exclude import Exclusions
from reporter.reporters.flush import flush


def _reports(srv: Serve) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    buckets = httpx.get(f"{srv.url}/api/v1/buckets?limit=1000").json()["buckets"]
    for b in buckets:
        for r in httpx.get(f"{srv.url}/api/v1/buckets/{b['id']}").json()["reports"]:
            out.append(httpx.get(f"{srv.url}/api/v1/reports/{r['id']}").json())
    return out


def _unique(path: Path, tag: str) -> Path:
    with DumpDir.open(str(path)) as dd:
        dd.save_text("nonce", tag)
    return path


def test_bundle_is_libreport_shaped(fixtures_dir: Path, tmp_path: Path) -> None:
    d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
    with DumpDir.open(str(d)) as dd:
        dd.save_text("environ", "HOME=/root\nDB_PASSWORD=hunter2\n'API_TOKEN=abc def'\n")
        dd.save_text("skipme", "x")
    os.symlink("/etc/passwd", d / "evil_link")
    (d / ".lock").symlink_to("99999999")  # a stale lock left by a dead process
    b = Bundle.open(str(d), Exclusions(("skipme",)))
    data = b"".join(b.chunks())
    assert data == b"".join(Bundle.open(str(d), Exclusions(("skipme",))).chunks())  # deterministic
    # the system's tar reads it: flat names, mode 0644, no .lock/.libreport/symlink/excluded
    listing = subprocess.run(["tar", "-tzvf", "-"], input=data, capture_output=True, check=True).stdout.decode()
    names = sorted(line.split()[-1] for line in listing.splitlines())
    assert all(line.startswith("-rw-r--r--") for line in listing.splitlines())
    expected = sorted(n for n in os.listdir(d) if n not in (".lock", ".libreport", "evil_link", "skipme"))
    assert names == expected
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        environ = tf.extractfile("environ").read().decode()  # type: ignore[union-attr]
        assert tf.extractfile("core_backtrace").read() == (d / "core_backtrace").read_bytes()  # type: ignore[union-attr]
    assert "hunter2" not in environ and "abc def" not in environ and "HOME=/root" in environ
    assert "DB_PASSWORD=<redacted>" in environ


def test_incompressible_core_streams_as_valid_gzip(tmp_path: Path) -> None:
    d = make_min_dir(tmp_path, "rand", {"coredump": os.urandom(3 << 20) + bytes(2 << 20)})
    data = b"".join(Bundle.open(str(d), Exclusions()).chunks())
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tf:
        assert tf.extractfile("coredump").read() == (d / "coredump").read_bytes()  # type: ignore[union-attr]
    assert subprocess.run(["gzip", "-t"], input=data).returncode == 0


def test_upload_put_post_credentials_and_reported_to(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    d = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path), "put")
    host = serve.url.removeprefix("http://")
    # credentials inside the URL: sent as basic auth (the server takes the token as password)
    rc = upload.main(["-d", str(d), "-u", f"http://host:{TOKEN}@{host}/upload/"])
    assert rc == 0
    line = (d / "reported_to").read_text()
    assert line == f"upload: URL=http://{host}/upload/satyr-problem-dir.tar.gz\n"
    # the same via Upload_Username/Upload_Password and POST: the server keeps one report per content
    monkeypatch.setenv("Upload_Username", "host")
    monkeypatch.setenv("Upload_Password", TOKEN)
    d2 = _unique(copy_problem(fixtures_dir, "libreport-sample-problem", tmp_path), "post")
    assert upload.main(["-d", str(d2), "-u", f"{serve.url}/upload/", "--method", "POST"]) == 0
    out, err = capfd.readouterr()
    assert TOKEN not in out + err + line + (d2 / "reported_to").read_text()
    tokens = {r.get("token") for r in _reports(serve)}
    assert tokens == {"test-host"}
    # a wrong token is a final 4xx: nothing queued, the server's message recorded
    monkeypatch.setenv("Upload_Password", "wrong")
    d3 = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path / "x"), "bad")
    assert upload.main(["-d", str(d3), "-u", f"{serve.url}/upload/"]) == 1
    box = Outbox(os.environ["CRASHKIT_OUTBOX"])
    assert box.entries() == [] and box.entries("failed")[0].last_status == 401
    assert "wrong" not in json.dumps(box.entries("failed")[0].to_json())


def test_file_target_and_unconfigured(fixtures_dir: Path, tmp_path: Path) -> None:
    d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
    out = tmp_path / "archives"
    out.mkdir()
    assert upload.main(["-d", str(d), "-u", f"file://{out}/"]) == 0
    with tarfile.open(out / "satyr-problem-dir.tar.gz") as tf:
        assert "core_backtrace" in tf.getnames()
    assert (d / "reported_to").read_text() == f"upload: URL=file://{out}/satyr-problem-dir.tar.gz\n"
    assert upload.main(["-d", str(d), "--if-configured"]) == 0
    assert upload.main(["-d", str(d)]) == 2
    assert upload.main(["-d", str(tmp_path), "-u", "http://127.0.0.1:1/"]) == 2


def test_host_state_elements_added(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "crashkit"
    fake.write_text('#!/bin/sh\ncase "$1" in check) echo \'{"checks": []}\'; exit 1;; '
                    'state) echo \'{"containers": [], "vms": []}\';; esac\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("Upload_Password", TOKEN)
    d = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path), "state")
    assert upload.main(["-d", str(d), "-u", f"{serve.url}/upload/", "--host-state"]) == 0
    assert json.loads((d / "host_checks.json").read_text()) == {"checks": []}
    assert json.loads((d / "container_state.json").read_text()) == {"containers": [], "vms": []}


@pytest.mark.slow
def test_server_down_then_up_delivered_once(fixtures_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("Upload_Password", TOKEN)
    d = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path), "down")
    assert upload.main(["-d", str(d), "-u", f"http://127.0.0.1:{port}/upload/"]) == 75
    box = Outbox(os.environ["CRASHKIT_OUTBOX"])
    [entry] = box.entries()
    assert entry.attempts == 1 and "refused" in entry.last_error and entry.next_attempt > time.time()
    assert not (d / "reported_to").exists()
    # still down: the flush keeps it, backs off further
    r = flush(box)
    assert (r.delivered, r.retried) == (0, 1) and box.entries()[0].attempts == 2
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN} late-host\n")
    srv = serve_on(port, tmp_path / "data", tokens)
    try:
        assert flush(box, due_only=True).not_due == 1  # not due yet: the timer's flush waits
        r = flush(box)
        assert r.delivered == 1 and box.entries() == []
        assert flush(box).delivered == 0
        assert len(_reports(srv)) == 1
        assert (d / "reported_to").read_text().startswith(f"upload: URL=http://127.0.0.1:{port}/upload/")
    finally:
        srv.stop()


def test_500_then_success_and_lost_response_not_duplicated(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = FaultProxy(serve.url)
    monkeypatch.setenv("Upload_Password", TOKEN)
    box = Outbox(os.environ["CRASHKIT_OUTBOX"])
    try:
        before = len(_reports(serve))
        d = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path / "a"), "500")
        proxy.plan = [500, 429]
        assert upload.main(["-d", str(d), "-u", f"{proxy.url}/upload/"]) == 75
        assert box.entries()[0].last_status == 500
        assert flush(box).retried == 1
        entry = box.entries()[0]
        assert entry.last_status == 429 and entry.next_attempt - time.time() >= 115  # Retry-After: 120
        assert flush(box).delivered == 1
        # the server stores the upload, the answer is lost: the retry carries the same report id
        d2 = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path / "b"), "lost")
        proxy.plan = ["drop"]
        assert upload.main(["-d", str(d2), "-u", f"{proxy.url}/upload/"]) == 75
        with DumpDir.open(str(d2)) as dd:
            dd.save_text("nonce", "lost, and changed before the retry")  # new bytes, same report id
        assert flush(box).delivered == 1
        assert proxy.forwarded == 3 and len(_reports(serve)) == before + 2
    finally:
        proxy.stop()


def test_final_4xx_recorded_with_server_message(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Upload_Password", TOKEN)
    d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
    # a name the service refuses (400 with a reason)
    assert upload.main(["-d", str(d), "-u", f"{serve.url}/upload/bad..name.tar.gz"]) == 1
    [failed] = Outbox(os.environ["CRASHKIT_OUTBOX"]).entries("failed")
    assert failed.last_status == 400 and "archive name" in failed.last_error


@pytest.mark.slow
def test_thousand_queued_then_flushed_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("Upload_Password", TOKEN)
    spool = tmp_path / "spool"
    for i in range(1000):
        d = make_min_dir(spool, f"ccpp-{i:04d}", {"reason": f"victim {i} killed by SIGSEGV",
                                                  "executable": "/usr/bin/victim", "nonce": str(i)})
        assert upload.main(["-d", str(d), "-u", f"http://127.0.0.1:{port}/upload/"]) == 75
    box = Outbox(os.environ["CRASHKIT_OUTBOX"])
    assert box.stats().queued == 1000
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN} many\n")
    srv = serve_on(port, tmp_path / "data", tokens, ["--rate-limit", "0"])
    try:
        started = time.monotonic()
        r = flush(box, workers=4)
        took = time.monotonic() - started
        assert r.delivered == 1000 and box.stats().queued == 0, r
        assert flush(box).delivered == 0
        total = httpx.get(f"http://127.0.0.1:{port}/api/v1/buckets?limit=1").json()["total"]
        counts = sum(b["count"] for b in httpx.get(f"http://127.0.0.1:{port}/api/v1/buckets?limit=1000").json()["buckets"])
        assert counts == 1000 and total >= 1
        assert all((spool / f"ccpp-{i:04d}" / "reported_to").exists() for i in range(0, 1000, 97))
        assert took < 60
    finally:
        srv.stop()


def test_disk_full_while_spooling(fixtures_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], check=True)
    try:
        monkeypatch.setenv("CRASHKIT_OUTBOX", str(mnt / "outbox"))
        d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
        with DumpDir.open(str(d)) as dd:
            dd.save_bytes("coredump", os.urandom(1 << 20))
        rc = upload.main(["-d", str(d), "-u", f"http://127.0.0.1:{free_port()}/upload/"])
        assert rc == 1  # not delivered and not queued: the error says so, nothing half-written stays
        box = Outbox(str(mnt / "outbox"))
        assert box.entries() == [] and os.listdir(mnt / "outbox" / "tmp") == []
        # a small report still fits afterwards
        with DumpDir.open(str(d)) as dd:
            dd.delete_element("coredump")
        assert upload.main(["-d", str(d), "-u", f"http://127.0.0.1:{free_port()}/upload/"]) == 75
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_bearer_token_from_a_file(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                  capfd: pytest.CaptureFixture[str]) -> None:
    token_file = tmp_path / "upload.token"
    token_file.write_text(TOKEN + "\n")
    cfg = tmp_path / "crashkit.toml"
    cfg.write_text(f'[report.upload]\nurl = "{serve.url}/upload/"\ntoken_file = "{token_file}"\n')
    d = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path), "bearer")
    before = len(_reports(serve))
    env = {**os.environ, "CRASHKIT_CONFIG": str(cfg), "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    ran = subprocess.run([sys.executable, "-m", "reporter.reporters.upload", "-d", str(d), "-v"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert len(_reports(serve)) == before + 1
    assert TOKEN not in ran.stderr + (d / "reported_to").read_text()
    # a wrong token: 401, final, and the token is not in the recorded failure
    token_file.write_text("not-the-token\n")
    d2 = _unique(copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path / "2"), "bearer-bad")
    ran = subprocess.run([sys.executable, "-m", "reporter.reporters.upload", "-d", str(d2)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 1 and "401" in ran.stderr and "not-the-token" not in ran.stderr
