"""``crashkit oops scan`` end to end, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"


def crashkit(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args], input=stdin, capture_output=True,
                          timeout=60)


def test_scan_json_file() -> None:
    res = crashkit("oops", "scan", str(DATA / "bug_at.log"), "--json")
    assert res.returncode == 0, res.stderr
    (obj,) = json.loads(res.stdout)
    for key in ("kind", "title", "function", "start_line", "end_line", "kernel_version", "tainted", "cpu", "pid",
                "comm", "hardware", "modules", "rip", "frames", "truncated", "duphash", "uuid", "text"):
        assert key in obj
    assert obj["title"] == "kernel BUG in ext4_do_update_inode"
    assert obj["frames"][0] == {"function": "ext4_mark_iloc_dirty", "offset": 0x5b, "size": 0x80, "module": "ext4",
                                "reliable": True, "address": None}
    assert obj["taint_meanings"]["P"] == "proprietary module loaded"
    assert obj["duphash"] == obj["uuid"] and len(obj["duphash"]) == 40


def test_scan_stdin_table_and_no_reports() -> None:
    res = crashkit("oops", "scan", "-", stdin=(DATA / "oom.log").read_bytes())
    assert res.returncode == 0
    assert "Out of memory: Killed process stress" in res.stdout.decode()
    res = crashkit("oops", "scan", "-", "--json", stdin=b"nothing to see\n")
    assert res.returncode == 0 and json.loads(res.stdout) == []


def test_scan_unreadable_file(tmp_path: Path) -> None:
    res = crashkit("oops", "scan", str(tmp_path / "missing.log"))
    assert res.returncode == 2
    err = res.stderr.decode()
    assert err.count("\n") == 1 and "missing.log" in err and "Traceback" not in err
