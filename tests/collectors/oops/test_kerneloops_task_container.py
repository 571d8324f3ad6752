"""The container whose task was running when the kernel made a report: real processes this
test starts in new namespaces and in cgroups named as container runtimes name theirs, and
synthetic oops text naming their PID and comm (collectors/oops/kerneloops_dir.py,
``task_container``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "state"))
from statehelpers import cgroup_dir, move_to_cgroup, namespaced, token  # noqa: E402

from collectors.oops import parse  # noqa: E402
from collectors.oops.kerneloops_dir import HostInfo, OopsDirWriter, task_container  # noqa: E402
from reporter.dumpdir import DumpDir  # noqa: E402

HOST = HostInfo(kernel="6.1.0-test", architecture="x86_64", hostname="testhost", os_info=None,
                os_release=None, cmdline=None, proc_modules=None, fips_enabled=None)
CONTAINER = ("container", "container_id", "container_uuid", "container_cmdline")

OOPS = """\
BUG: kernel NULL pointer dereference, address: 0000000000000008
#PF: supervisor read access in kernel mode
#PF: error_code(0x0000) - not-present page
PGD 0 P4D 0
Oops: 0000 [#1] PREEMPT SMP NOPTI
CPU: 1 PID: {pid} Comm: {comm} Not tainted 6.1.0-18-amd64 #1  Debian 6.1.76-1
Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
RIP: 0010:pipe_read+0x5e/0x470
Code: 48 8b 45 00 48 89 44 24 08 48 85 c0 0f 84 b1 03 00 00 <48> 8b 40 08 48 89 44 24 10
RSP: 0018:ffffb1c0c0a3be48 EFLAGS: 00010246
Call Trace:
 <TASK>
 pipe_read+0x5e/0x470
 vfs_read+0x2c3/0x300
 ksys_read+0x6f/0xf0
 do_syscall_64+0x58/0xc0
 entry_SYSCALL_64_after_hwframe+0x6e/0xd8
 </TASK>
Modules linked in: ext4 crc16 mbcache jbd2
CR2: 0000000000000008
---[ end trace 0000000000000000 ]---
"""


def _report(pid: int, comm: str):  # type: ignore[no-untyped-def]
    [report] = parse.scan_text(OOPS.format(pid=pid, comm=comm))
    assert (report.pid, report.comm) == (pid, comm)
    return report


def _written(tmp_path: Path, report, origin: str = "/dev/kmsg") -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    result = OopsDirWriter(str(tmp_path / "spool"), HOST).write(report, origin=origin)
    with DumpDir.open(result.path, readonly=True) as dd:
        return {name: dd.load_bytes(name) or b"" for name in CONTAINER if dd.has_element(name)}


@pytest.mark.parametrize("kind, path, element", [
    ("unified", "system.slice/docker-{h}.scope", "docker"),
    ("unified", "machine.slice/machine-{t}.scope/payload", "systemd-nspawn"),
    ("unified", "kubepods.slice/kubepods-pod{t}.slice/crio-{h}.scope", "cri-o"),
])
def test_a_containers_task_names_its_container(tmp_path: Path, kind: str, path: str, element: str) -> None:
    t = token()
    h = t.encode().hex() * 3
    with cgroup_dir(kind, path.format(t=t, h=h)) as directory, namespaced("sleep", "60") as pid:
        move_to_cgroup(pid, directory)
        got = _written(tmp_path, _report(pid, "sleep"))
    cid = {"docker": h, "cri-o": h, "systemd-nspawn": t}[element]
    assert got == {"container": element.encode(), "container_id": cid.encode(),
                   "container_cmdline": b"sleep 60"}


@contextmanager
def _docker_task() -> Iterator[int]:
    """A ``sleep`` in new namespaces and a docker scope of its own; yields its host PID."""
    h = token().encode().hex() * 3
    with cgroup_dir("unified", f"system.slice/docker-{h}.scope") as directory, \
            namespaced("sleep", "60") as pid:
        move_to_cgroup(pid, directory)
        yield pid


def test_a_recycled_pid_is_not_blamed(tmp_path: Path) -> None:
    """The report's PID now belongs to another program (its comm differs): no container."""
    with _docker_task() as pid:
        assert task_container(_report(pid, "sleep")) != {}
        assert _written(tmp_path, _report(pid, "kworker/1:2")) == {}


def test_a_report_of_an_earlier_boot_names_no_running_task() -> None:
    with _docker_task() as pid:
        report = _report(pid, "sleep")
        assert task_container(report, "journal boot " + _boot_id()) != {}
        for origin in ("pstore dmesg-ramoops-0", "/var/crash/202612031200/vmcore-dmesg.txt",
                       "journal boot 0123456789abcdef0123456789abcdef"):
            assert task_container(report, origin) == {}, origin


def test_a_host_task_and_a_gone_task_add_nothing(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        assert _written(tmp_path, _report(proc.pid, "sleep")) == {}
    finally:
        proc.kill()
        proc.wait()
    assert task_container(_report(proc.pid, "sleep")) == {}      # reaped: no such task


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
