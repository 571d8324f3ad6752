"""``crashkit list / info / rm`` run as real subprocesses over copies of the real fixtures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE_DIRS = {
    "libreport-sample-problem": "libreport-sample-problem",
    "sample-1": "libreport-sample-problems/1",
    "sample-2": "libreport-sample-problems/2",
    "sample-3": "libreport-sample-problems/3",
    "satyr-problem-dir": "satyr-problem-dir",
}


def crashkit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("CRASHKIT_SPOOL", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "collectors.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=60)


@pytest.fixture
def spool(fixtures_dir: Path, tmp_path: Path) -> Path:
    spool = tmp_path / "spool"
    spool.mkdir()
    for name, rel in FIXTURE_DIRS.items():
        dst = spool / name
        shutil.copytree(fixtures_dir / rel, dst)
        for root, dirs, files in os.walk(dst):
            for n in dirs + ["."]:
                os.chmod(os.path.join(root, n), 0o750)
            for n in files:
                os.chmod(os.path.join(root, n), 0o640)
    (spool / "half-built.new").mkdir()
    (spool / "ordinary-dir").mkdir()
    os.symlink(spool / "satyr-problem-dir", spool / "link")
    return spool


def test_list_json(spool: Path, fixtures_dir: Path) -> None:
    res = crashkit("list", "--spool", str(spool), "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    # Oldest first, as coredumpctl: by last occurrence, then name.
    assert sorted(r["directory"] for r in rows) == [str(spool / n) for n in sorted(FIXTURE_DIRS)]
    keys = [(r["last_occurrence"] or r["time"], r["directory"]) for r in rows]
    assert keys == sorted(keys)
    for row in rows:
        assert set(row) == {"directory", "name", "time", "last_occurrence", "type", "executable", "reason",
                            "count", "pid", "global_pid", "uid", "signal", "container", "container_id",
                            "container_hostname", "core", "core_size", "reported", "problems"}
        assert row["problems"] == {}  # real ABRT/libreport directories are sound
        src = fixtures_dir / FIXTURE_DIRS[Path(row["directory"]).name]
        assert row["time"] == int((src / "time").read_text())
        assert row["type"] == (src / "type").read_text().strip()
        assert row["reported"] is False
    by_name = {Path(r["directory"]).name: r for r in rows}
    satyr = by_name["satyr-problem-dir"]
    assert satyr["count"] == 55
    assert satyr["executable"] == "/usr/bin/sleep"
    assert satyr["reason"] == (fixtures_dir / "satyr-problem-dir" / "reason").read_text()
    assert by_name["sample-1"]["count"] is None and by_name["sample-1"]["reason"] is None
    # Listing takes (and releases) locks: nothing is left behind.
    assert not any(os.path.lexists(spool / n / ".lock") for n in FIXTURE_DIRS)


def test_list_reported_and_env_spool(spool: Path) -> None:
    (spool / "satyr-problem-dir" / "reported_to").write_text(
        "uReport: BTHASH=072c\nABRT Server: URL=https://a/1\nBugzilla: URL=https://b/show_bug.cgi?id=9\n"
        "ABRT Server: URL=https://a/2\n")
    res = crashkit("list", "--json", env={"CRASHKIT_SPOOL": str(spool)})
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["directory"].endswith("satyr-problem-dir"))
    assert row["reported"] == [
        {"label": "uReport", "url": None},
        {"label": "ABRT Server", "url": "https://a/2"},  # the last record of a label wins
        {"label": "Bugzilla", "url": "https://b/show_bug.cgi?id=9"},
    ]


def test_list_table(spool: Path) -> None:
    long_reason = "x" * 200
    (spool / "sample-2" / "reason").write_text(long_reason)
    res = crashkit("list", "--spool", str(spool))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["TIME", "PID", "UID", "SIG", "COUNT", "EXE", "CONTAINER", "SIZE", "REPORTED",
                                "REASON", "DIRECTORY"]
    assert len(lines) == 1 + len(FIXTURE_DIRS)
    satyr = next(line for line in lines if line.endswith("satyr-problem-dir"))
    assert "sleep killed by SIGSEGV" in satyr and " 55 " in satyr
    sample2 = next(line for line in lines if line.endswith("sample-2"))
    assert long_reason not in sample2 and "…" in sample2  # truncated
    assert all(len(line) < 200 for line in lines)  # a pipe: no terminal width, the reason still cut


def test_list_empty_and_missing_spool(tmp_path: Path) -> None:
    res = crashkit("list", "--spool", str(tmp_path), "--json")
    assert (res.returncode, json.loads(res.stdout)) == (0, [])
    res = crashkit("list", "--spool", str(tmp_path / "missing"))
    assert res.returncode == 2
    assert res.stderr.startswith("crashkit: error:") and res.stderr.count("\n") == 1


def test_info_json(spool: Path, fixtures_dir: Path) -> None:
    res = crashkit("info", str(spool / "libreport-sample-problem"), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    src = fixtures_dir / "libreport-sample-problem"
    assert info["owner"] == 1000
    names = {p.name for p in src.iterdir() if p.is_file()}
    assert set(info["elements"]) | set(info["binary"]) == names
    assert info["binary"] == {}  # every element of this directory is text (coredump is empty)
    assert info["problems"] == {}
    assert info["elements"]["reason"] == "reporter-mantisbt killed by SIGSEGV"
    assert info["elements"]["core_backtrace"] == (src / "core_backtrace").read_text()
    assert info["elements"]["runlevel"] == "N 5"


def test_info_binary_and_text(spool: Path) -> None:
    d = spool / "satyr-problem-dir"
    (d / "coredump").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(1000))
    res = crashkit("info", str(d), "--json")
    info = json.loads(res.stdout)
    assert info["binary"] == {"coredump": 1008}
    res = crashkit("info", str(d))
    assert res.returncode == 0, res.stderr
    assert "coredump: <binary, 1008 bytes>" in res.stdout.splitlines()
    assert "cmdline: sleep 1000" in res.stdout.splitlines()
    assert "    11:blkio:/" in res.stdout.splitlines()  # multi-line elements indented


@pytest.mark.parametrize("target, code", [("missing", 1), ("ordinary-dir", 2), ("half-built.new", 2),
                                          ("link", 2), ("satyr-problem-dir/time", 1)])
def test_info_bad_dir(spool: Path, target: str, code: int) -> None:
    # A directory named by path is opened (2: not a problem directory); a path naming no
    # directory is an executable path that no crash has (1: no problem matches).
    res = crashkit("info", "--spool", str(spool), str(spool / target))
    assert res.returncode == code
    assert res.stdout == ""
    assert res.stderr.startswith("crashkit: error:") and res.stderr.count("\n") == 1
    assert "Traceback" not in res.stderr


def test_rm(spool: Path, fixtures_dir: Path) -> None:
    res = crashkit("rm", str(spool / "sample-1"), str(spool / "sample-2") + "/")
    assert res.returncode == 0, res.stderr
    assert not (spool / "sample-1").exists() and not (spool / "sample-2").exists()
    # Refuses if any argument is not a problem dir, deleting nothing.
    for bad in ("ordinary-dir", "link", "missing", "half-built.new"):
        res = crashkit("rm", str(spool / "sample-3"), str(spool / bad))
        assert res.returncode == 2, bad
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
        assert (spool / "sample-3" / "time").exists()
    assert (spool / "satyr-problem-dir" / "time").exists()  # the symlink's target survived
    assert fixtures_dir.joinpath("libreport-sample-problems/1/time").exists()


def test_rm_waits_for_lock_then_deletes(spool: Path) -> None:
    """A stale lock left by a dead process does not stop rm."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    os.symlink(str(dead.pid), spool / "sample-3" / ".lock")
    res = crashkit("rm", str(spool / "sample-3"))
    assert res.returncode == 0, res.stderr
    assert not os.path.lexists(spool / "sample-3")


def test_help() -> None:
    for cmd in (["list", "--help"], ["info", "--help"], ["rm", "--help"]):
        res = crashkit(*cmd)
        assert res.returncode == 0 and "usage:" in res.stdout
