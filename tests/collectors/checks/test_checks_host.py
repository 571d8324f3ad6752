"""Checks on this host's real data: the CLI contract, the parsers against the tools that
read the same files (free, prlimit, findmnt), and selection/usage errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.checks.base import PHASES, STATUSES
from collectors.checks.parsers import proc
from collectors.checks.registry import check_ids

CRASHKIT = [sys.executable, "-m", "collectors.cli"]
KEYS = {"id", "phase", "title", "status", "summary", "evidence", "remedy"}


def crashkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CRASHKIT, *args], capture_output=True, text=True, timeout=120)


def test_check_json_on_this_host() -> None:
    res = crashkit("check", "--json")
    assert res.stderr == ""
    checks = json.loads(res.stdout)["checks"]
    assert [c["id"] for c in checks] == check_ids()
    ids = {c["id"] for c in checks}
    for needed in ("boot.id", "boot.kernel", "boot.unclean_shutdown", "boot.previous_panic", "boot.taint",
                   "crash.core_pattern", "crash.core_pipe_limit", "crash.suid_dumpable", "crash.rlimit_core",
                   "crash.spool_space", "crash.kdump", "crash.pstore", "crash.self_test", "runtime.load",
                   "runtime.memory", "runtime.oom", "runtime.lockups", "runtime.disk", "runtime.fs_errors",
                   "runtime.time_sync", "runtime.failed_units", "runtime.file_handles", "containers.states",
                   "containers.beancounters", "containers.restart_loop", "containers.vm_io_error",
                   "containers.disk_images", "reporting.unreported", "reporting.hook_errors",
                   "shutdown.last", "shutdown.slow_units"):
        assert needed in ids
    for c in checks:
        assert KEYS <= set(c), c
        assert c["status"] in STATUSES and c["phase"] in PHASES and c["summary"], c
        assert c["status"] != "error", c
    by_id = {c["id"]: c for c in checks}
    assert by_id["crash.self_test"]["status"] == "skip"   # opt-in
    assert by_id["boot.id"]["status"] == "pass"
    with open("/proc/sys/kernel/random/boot_id") as f:
        assert f.read().strip() in by_id["boot.id"]["evidence"][0]
    bad = any(c["status"] in ("warn", "fail", "error") for c in checks)
    assert res.returncode == (1 if bad else 0)


def test_text_output_and_selection() -> None:
    res = crashkit("check", "--phase", "runtime", "--only", "runtime.memory")
    assert res.returncode in (0, 1) and res.stdout.startswith("runtime\n")
    assert "runtime.memory" in res.stdout and "boot.id" not in res.stdout
    res = crashkit("check", "--json", "--phase", "boot")
    assert {c["phase"] for c in json.loads(res.stdout)["checks"]} == {"boot"}
    res = crashkit("check", "--json", "--only", "containers")
    assert {c["phase"] for c in json.loads(res.stdout)["checks"]} == {"containers"}
    res = crashkit("check", "--list")
    assert res.returncode == 0 and len(res.stdout.splitlines()) == len(check_ids())


@pytest.mark.parametrize("args", [["--phase", "nope"], ["--only", "boot.nope"], ["--bogus"],
                                  ["--root", "/nonexistent/root"]])
def test_bad_usage_exits_2_with_one_line(args: list[str]) -> None:
    res = crashkit("check", *args)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and res.stderr.strip()


def test_meminfo_matches_free() -> None:
    if shutil.which("free") is None:
        pytest.skip("procps free not installed")
    mi = proc.meminfo_bytes(Path("/proc/meminfo").read_text())
    out = subprocess.run(["free", "-b"], capture_output=True, text=True, check=True).stdout.split("\n")
    total = int(out[1].split()[1])
    assert mi["MemTotal"] == total
    assert int(out[2].split()[1]) == mi["SwapTotal"]


def test_limits_match_prlimit() -> None:
    if shutil.which("prlimit") is None:
        pytest.skip("util-linux prlimit not installed")
    lim = proc.parse_limits(Path(f"/proc/{os.getpid()}/limits").read_text())["Max core file size"]
    out = subprocess.run(["prlimit", "--pid", str(os.getpid()), "--core", "-o", "SOFT,HARD", "--noheadings",
                          "--raw"], capture_output=True, text=True, check=True).stdout.split()
    conv = [None if v == "unlimited" else int(v) for v in out]
    assert (lim.soft, lim.hard) == tuple(conv)


def test_mountinfo_matches_findmnt() -> None:
    if shutil.which("findmnt") is None:
        pytest.skip("util-linux findmnt not installed")
    mounts = proc.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    out = subprocess.run(["findmnt", "-rn", "-o", "TARGET,FSTYPE", "--kernel"], capture_output=True,
                         text=True, check=True).stdout
    tool = {tuple(line.split(" ", 1)) for line in out.splitlines()}
    ours = {(m.mountpoint.replace(" ", "\\x20"), m.fstype) for m in mounts}
    assert tool <= ours or len(tool & ours) >= len(tool) - 2  # mounts may change between the reads


def test_pressure_and_taint_of_this_host() -> None:
    if not Path("/proc/pressure/memory").exists():
        pytest.skip("no PSI here")
    p = proc.parse_pressure(Path("/proc/pressure/memory").read_text())
    assert set(p) == {"some", "full"} and p["some"].total_us >= 0
    value = int(Path("/proc/sys/kernel/tainted").read_text())
    flags = proc.decode_taint(value)
    assert sum(1 << f.bit for f in flags) == value
