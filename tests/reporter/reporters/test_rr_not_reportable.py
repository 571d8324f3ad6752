"""``not-reportable`` as libreport honours it: the upload and Sentry reporters (events that
need a review of the data) refuse such a problem, a uReport is still sent, a flush does not
deliver what became not reportable after it was queued, and ``crashkit report`` stops its
chain there; ``--force`` (or ``$CRASHKIT_REPORT_FORCE``) reports it anyway."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rr_helpers import TOKEN, Serve, copy_problem, free_port, serve_on

from reporter.dumpdir import DumpDir
from reporter.outbox import Outbox
from reporter.reporters import reportable, sentry, upload, ureport
from reporter.reporters.flush import flush

REPO = Path(__file__).resolve().parents[3]
WHY = "The process had locked memory which usually indicates efforts to protect sensitive data."


def _problem(fixtures_dir: Path, dest: Path, tag: str, why: str | None = WHY) -> Path:
    """A copy of the satyr problem directory, unique on the server by *tag*, marked not reportable."""
    d = copy_problem(fixtures_dir, "satyr-problem-dir", dest / tag)
    with DumpDir.open(str(d)) as dd:
        dd.save_text("nonce", tag)
        bt = json.loads(dd.load_text("core_backtrace"))
        bt["stacktrace"][0]["frames"][0]["function_name"] = f"not_reportable_{tag}"
        dd.save_text("core_backtrace", json.dumps(bt))
        if why is not None:
            dd.save_text(reportable.ELEMENT, why)
    return d


def _stored(srv: Serve) -> int:
    return sum(b["count"] for b in httpx.get(f"{srv.url}/api/v1/buckets?limit=1000").json()["buckets"])


def test_upload_refused_unless_forced(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("Upload_Password", TOKEN)
    d = _problem(fixtures_dir, tmp_path, "upload")
    before = _stored(serve)
    assert upload.main(["-d", str(d), "-u", f"{serve.url}/upload/"]) == reportable.EXIT_NOT_REPORTABLE
    err = capfd.readouterr().err
    assert "not reportable: The process had locked memory" in err and "--force" in err
    assert _stored(serve) == before and not (d / "reported_to").exists()
    assert Outbox(os.environ["CRASHKIT_OUTBOX"]).entries() == []
    # an empty not-reportable still counts (libreport tests for the element, not its text)
    (d / reportable.ELEMENT).write_text("")
    assert upload.main(["-d", str(d), "-u", f"{serve.url}/upload/"]) == reportable.EXIT_NOT_REPORTABLE
    assert upload.main(["-d", str(d), "-u", f"{serve.url}/upload/", "--force"]) == 0
    assert _stored(serve) == before + 1
    assert (d / "reported_to").read_text().startswith("upload: URL=")
    # the environment override that crashkit report --force sets for its commands
    d2 = _problem(fixtures_dir, tmp_path, "upload-env")
    monkeypatch.setenv(reportable.FORCE_ENV, "1")
    assert upload.main(["-d", str(d2), "-u", f"{serve.url}/upload/"]) == 0
    assert _stored(serve) == before + 2


class _Sink(http.server.BaseHTTPRequestHandler):
    """A Sentry envelope endpoint that only counts what arrives."""

    received: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": "ok"}')


@pytest.fixture
def sink() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Sink.received.clear()
    try:
        yield f"http://key1@127.0.0.1:{server.server_address[1]}/3"
    finally:
        server.shutdown()
        server.server_close()


def test_sentry_refused_unless_forced(sink: str, fixtures_dir: Path, tmp_path: Path) -> None:
    d = _problem(fixtures_dir, tmp_path, "sentry")
    assert sentry.main(["-d", str(d), "--dsn", sink]) == reportable.EXIT_NOT_REPORTABLE
    assert _Sink.received == [] and not (d / "reported_to").exists()
    # not configured wins: a post-create rule with --if-configured stays quiet
    assert sentry.main(["-d", str(d), "--if-configured"]) == 0
    assert sentry.main(["-d", str(d), "--dsn", sink, "--force"]) == 0
    assert _Sink.received == ["/api/3/envelope/"]
    assert (d / "reported_to").read_text().startswith("Sentry: URL=")


def test_ureport_sent_as_libreport_does(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("uReport_HTTPAuth", f"h:{TOKEN}")
    d = _problem(fixtures_dir, tmp_path, "ureport")
    before = _stored(serve)
    # 70: delivered, and the server knew the crash already (the upload test's bundle of it)
    assert ureport.main(["-d", str(d), "-u", f"{serve.url}/faf"]) in (0, 70)
    assert _stored(serve) == before + 1
    assert (d / "reported_to").read_text().startswith("uReport: BTHASH=")


@pytest.mark.slow
def test_flush_does_not_deliver_what_became_not_reportable(fixtures_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("Upload_Password", TOKEN)
    url = f"http://127.0.0.1:{port}/upload/"
    plain = _problem(fixtures_dir, tmp_path, "queued", why=None)
    forced = _problem(fixtures_dir, tmp_path, "queued-forced")
    assert upload.main(["-d", str(plain), "-u", url]) == 75       # server down: queued
    assert upload.main(["-d", str(forced), "-u", url, "--force"]) == 75
    (plain / reportable.ELEMENT).write_text("Your problem seems to be caused by a known bug\n")
    box = Outbox(os.environ["CRASHKIT_OUTBOX"])
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{TOKEN} h\n")
    srv = serve_on(port, tmp_path / "data", tokens)
    try:
        r = flush(box)
        assert (r.delivered, r.refused, r.failed, r.remaining) == (1, 1, 0, 0)
        assert _stored(srv) == 1
    finally:
        srv.stop()
    assert not (plain / "reported_to").exists() and (forced / "reported_to").exists()
    [failed] = box.entries("failed")
    assert failed.dump_dir == str(plain) and "not reportable: Your problem seems" in failed.last_error


def _crashkit_report(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collectors.cli", "report", *argv], capture_output=True,
                          text=True, timeout=300, env={**env, "PYTHONPATH": str(REPO)})


def test_crashkit_report_stops_the_chain_unless_forced(serve: Serve, fixtures_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "crashkit.toml"
    cfg.write_text(f'[report.upload]\nurl = "{serve.url}/upload/"\npassword = "{TOKEN}"\n'
                   f'[report.ureport]\nurl = "{serve.url}/faf"\nhttp_auth = "h:{TOKEN}"\n')
    env = {**os.environ, "CRASHKIT_CONFIG": str(cfg),
           "CRASHKIT_EVENT_CONF": str(REPO / "reporter" / "events" / "data" / "report_event.conf")}
    d = _problem(fixtures_dir, tmp_path, "chain")
    before = _stored(serve)
    ran = _crashkit_report(str(d), "-e", "report_Crashkit", "-e", "report_CrashkitUReport", "--json", env=env)
    assert ran.returncode == 3, ran.stderr
    data = json.loads(ran.stdout)
    assert data["not_reportable"]["event"] == "report_Crashkit" and data["events"] == []
    assert "report_Crashkit not run: not reportable: The process had locked memory" in ran.stderr
    assert _stored(serve) == before and not (d / "reported_to").exists()
    # the uReport event skips the review (gui-review-elements no): it runs
    ran = _crashkit_report(str(d), "-e", "report_CrashkitUReport", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "uReport: BTHASH=" in (d / "reported_to").read_text()
    ran = _crashkit_report(str(d), "-e", "report_Crashkit", "--force", env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "upload: URL=" in (d / "reported_to").read_text()
    assert _stored(serve) >= before + 1
