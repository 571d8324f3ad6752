"""The post-create event of one of our crash directories reports it to the configured servers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from rr_helpers import TOKEN
from rr_helpers import Serve, copy_problem

from reporter.dumpdir import DumpDir
from reporter.events.postcreate import run_post_create


def test_post_create_uploads_and_sends_ureport(serve: Serve, fixtures_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "crashkit.toml"
    cfg.write_text(f'[report]\npost_create = true\n[report.upload]\nurl = "{serve.url}/upload/"\n'
                   f'username = "h"\npassword = "{TOKEN}"\ninclude_host_state = true\n[report.ureport]\nurl = "{serve.url}/faf"\n'
                   f'http_auth = "h:{TOKEN}"\n')
    monkeypatch.setenv("CRASHKIT_EVENT_CONF", str(Path(__file__).resolve().parents[3] / "reporter" / "events"
                                                  / "data" / "report_event.conf"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "crashkit").write_text("#!/bin/sh\necho '{}'\n")  # host state commands: instant
    (bindir / "crashkit").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    d = copy_problem(fixtures_dir, "satyr-problem-dir", tmp_path)
    with DumpDir.open(str(d)) as dd:
        dd.save_text("crashkit_version", "0.1.0")
        dd.save_text("nonce", "post-create")
    res = run_post_create(str(d), config=str(cfg))  # as the hook calls it: no environment
    assert not res.skipped and res.rc == 0 and res.error is None, res.lines
    lines = (d / "reported_to").read_text().splitlines()
    assert lines and lines[0] == f"upload: URL={serve.url}/upload/satyr-problem-dir.tar.gz", res.lines
    assert any(line.startswith("uReport: BTHASH=") for line in lines)
    assert json.loads((d / "host_checks.json").read_text()) == {}
    assert "reporter-crashkit" in (d / "event_log").read_text()
    assert httpx.get(f"{serve.url}/api/v1/buckets").json()["total"] >= 1
    # not configured: nothing runs
    cfg.write_text("[report]\n")
    assert run_post_create(str(d), config=str(cfg)).skipped


@pytest.mark.parametrize("module", ["reporter.reporters.upload", "reporter.reporters.ureport",
                                    "reporter.reporters.sentry"])
def test_an_unconfigured_reporter_stays_light(module: str, fixtures_dir: Path, tmp_path: Path) -> None:
    """post-create runs all three reporters on every crash; one with no server exits without
    loading an HTTP stack or sentry-sdk (each run costs the crash's own pipeline CPU)."""
    import subprocess
    import sys

    code = ("import json, runpy, sys\n"
            f"sys.argv = [{module!r}, '-d', {str(fixtures_dir / 'satyr-problem-dir')!r}, '--if-configured']\n"
            "try:\n"
            f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('requests', 'urllib3', 'sentry_sdk', 'httpx'))))\n")
    env = {**os.environ, "CRASHKIT_CONFIG": str(tmp_path / "none.toml"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == []
