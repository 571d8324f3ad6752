"""crashkit check's reporting checks: outbox depth and age, servers reachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rr_helpers import Serve, free_port, make_min_dir

from reporter.reporters import upload

REPO = Path(__file__).resolve().parents[3]


def _check(only: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "collectors.cli", "check", "--only", only, "--json"],
                         env={**os.environ, "PYTHONPATH": str(REPO), **env}, capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)["checks"][0]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_outbox_and_servers_checks(serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = os.environ["CRASHKIT_OUTBOX"]
    assert _check("reporting.outbox", {})["status"] == "pass"
    d = make_min_dir(tmp_path / "spool", "c1", {"nonce": "check"})
    port = free_port()
    assert upload.main(["-d", str(d), "-u", f"http://127.0.0.1:{port}/upload/"]) == 75
    got = _check("reporting.outbox", {"CRASHKIT_OUTBOX": outbox})
    assert got["status"] == "warn" and "1 report(s) queued" in str(got["summary"])
    cfg = tmp_path / "crashkit.toml"
    cfg.write_text(f'[report.upload]\nurl = "http://u:secret@127.0.0.1:{port}/upload/"\n'
                   f'[report.ureport]\nurl = "{serve.url}/faf"\n')
    got = _check("reporting.servers", {"CRASHKIT_CONFIG": str(cfg)})
    assert got["status"] == "fail" and "secret" not in json.dumps(got)
    assert any("reachable" in e for e in got["evidence"])  # type: ignore[union-attr]
    cfg.write_text(f'[report.ureport]\nurl = "{serve.url}/faf"\n')
    assert _check("reporting.servers", {"CRASHKIT_CONFIG": str(cfg)})["status"] == "pass"
