"""The cgroup reader on this host's real hierarchies (a cgroup made here with limits, our own
process) and on literal interface-file text, and ``crashkit state`` as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from statehelpers import cgroup_dir, hierarchy, move_to_cgroup, namespaced, need_root, token, wait_for

from collectors.state import cgroups
from collectors.state.hostfs import HostFS
from collectors.state.model import TECHS

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("text, expected", [("max 100000", None), ("50000 100000", 0.5),
                                            ("200000 100000\n", 2.0), ("garbage", None)])
def test_cpu_max(text: str, expected: float | None) -> None:
    assert cgroups.parse_cpu_max(text) == expected


@pytest.mark.parametrize("text, expected", [("max\n", None), ("67108864\n", 64 << 20),
                                            ("9223372036854771712\n", None), ("", None)])
def test_memory_limits(text: str, expected: int | None) -> None:
    assert cgroups.parse_limit(text) == expected


def test_proc_cgroup_and_mountinfo_parsers() -> None:
    lines = cgroups.parse_proc_cgroup("4:memory:/docker/ab\n1:cpu,cpuacct:/x\n0::/system.slice\nbad\n")
    assert [(ln.hierarchy, ln.controllers, ln.path) for ln in lines] == [
        (4, ("memory",), "/docker/ab"), (1, ("cpu", "cpuacct"), "/x"), (0, (), "/system.slice")]
    hier = cgroups.hierarchies_from_mountinfo(
        "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
        "31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n")
    assert hier.v2 == "/sys/fs/cgroup/unified"
    assert hier.v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct"}


def test_our_own_process_on_this_host() -> None:
    res = cgroups.CgroupReader(HostFS("/")).for_pid(os.getpid())
    assert res.source is not None and res.errors == {}
    assert res.memory_usage is None or res.memory_usage > 0


@pytest.mark.slow
def test_a_cgroup_with_limits_made_here() -> None:
    """v1 memory and cpu controllers where mounted (this VM), else v2: the limits written and
    the usage of a real process read back."""
    need_root()
    name = f"ckstate-{token()}"
    v1 = os.path.isdir("/sys/fs/cgroup/memory") and os.path.isdir("/sys/fs/cgroup/cpu")
    # the shell allocates only after it has been moved (v1 does not move earlier charges)
    script = "sleep 1; x=$(head -c 4000000 /dev/zero | tr '\\0' a); sleep 60"
    with namespaced("sh", "-c", script) as pid:
        if v1:
            with cgroup_dir("memory", name) as mem, cgroup_dir("cpu", name) as cpu:
                (mem / "memory.limit_in_bytes").write_text(str(64 << 20))
                (cpu / "cpu.cfs_period_us").write_text("100000")
                (cpu / "cpu.cfs_quota_us").write_text("25000")
                move_to_cgroup(pid, mem)
                move_to_cgroup(pid, cpu)
                reader = cgroups.CgroupReader(HostFS("/"))
                wait_for(lambda: (reader.for_pid(pid).memory_usage or 0) > 1 << 20)
                res = reader.for_pid(pid)
                move_to_cgroup(pid, hierarchy("memory"))
                move_to_cgroup(pid, hierarchy("cpu"))
        else:
            with cgroup_dir("unified", name) as d:
                (d / "memory.max").write_text(str(64 << 20))
                (d / "cpu.max").write_text("25000 100000")
                move_to_cgroup(pid, d)
                reader = cgroups.CgroupReader(HostFS("/"))
                wait_for(lambda: (reader.for_pid(pid).memory_usage or 0) > 1 << 20)
                res = reader.for_pid(pid)
                move_to_cgroup(pid, hierarchy("unified"))
    assert res.memory_limit == 64 << 20 and res.cpu_limit == 0.25
    assert res.memory_usage is not None and res.memory_usage > 1 << 20
    assert res.source and res.source.startswith("cgroup") and res.cgroup == f"/{name}"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collectors.cli", "state", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_state_json_on_this_host() -> None:
    proc = _cli("--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert list(data) == list(TECHS)
    for value in data.values():
        assert set(value) == {"status", "instances", "error"}
        assert value["status"] in ("present", "absent", "error")
        assert (value["error"] is None) == (value["status"] != "error")


def test_state_table_and_tech_filter() -> None:
    proc = _cli("--tech", "qemu,nspawn")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("TECH") and "openvz" not in proc.stdout


@pytest.mark.parametrize("args, message", [
    (("--tech", "bogus"), "crashkit: error: unknown technology 'bogus'"),
    (("--root", "/nonexistent/crashkit"), "crashkit: error: /nonexistent/crashkit: not a directory"),
    (("--pid", "0"), "crashkit: error: --pid 0: not a process id"),
    (("--pid", "2147483647"), "crashkit: error: no process 2147483647"),
    (("--timeout", "-1"), "crashkit: error: --timeout must be a positive number of seconds"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(message) and len(proc.stderr.splitlines()) == 1


def test_state_pid_of_a_namespaced_process() -> None:
    need_root()
    hexid = "7e" * 32
    with cgroup_dir("pids", f"docker/{hexid}") as d, namespaced("sleep", "60") as pid:
        move_to_cgroup(pid, d)
        proc = _cli("--pid", str(pid), "--json")
        text = _cli("--pid", str(pid))
    assert proc.returncode == 0, proc.stderr
    att = json.loads(proc.stdout)
    assert (att["tech"], att["id"], att["host"], att["ns_pid"]) == ("docker", hexid, False, 1)
    assert att["cmdline"] == ["sleep", "60"]
    assert text.stdout.startswith(f"pid {pid}: docker {hexid}")
    me = json.loads(_cli("--pid", str(os.getpid()), "--json").stdout)
    assert me["host"] is True and me["tech"] is None
