"""Helpers the state tests share: processes in new namespaces, cgroup sub-trees named as a
runtime would name them, a real QEMU, and fake tools on a PATH of their own."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")
DATA = Path(__file__).parent / "data"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces, cgroups)")


def need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"needs {tool} (Debian package {package})")
    return path


def token() -> str:
    return "ck" + uuid.uuid4().hex[:10]


def hierarchy(kind: str) -> Path:
    """The mount point of a cgroup hierarchy: ``unified`` (v2) or a v1 controller name."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(tail) < 3:
            continue
        if kind == "unified" and tail[0] == "cgroup2":
            return Path(fields[4])
        if kind != "unified" and tail[0] == "cgroup" and kind in tail[2].split(","):
            return Path(fields[4])
    pytest.skip(f"no {kind} cgroup hierarchy mounted here")


def wait_for(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@contextmanager
def cgroup_dir(kind: str, relative: str) -> Iterator[Path]:
    """Create ``<hierarchy>/<relative>`` (and missing parents); remove what we created."""
    need_root()
    base = hierarchy(kind)
    target = base / relative
    created = []
    for parent in reversed([target, *target.parents]):
        if parent == base or base not in parent.parents:
            continue
        if not parent.exists():
            parent.mkdir()
            created.append(parent)
    try:
        yield target
    finally:
        # processes still in it (children of the test's own processes) go back to the root
        for d in reversed(created):
            try:
                pids = (d / "cgroup.procs").read_text().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    (base / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
        for d in reversed(created):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def move_to_cgroup(pid: int, directory: Path) -> None:
    (directory / "cgroup.procs").write_text(str(pid))


@contextmanager
def namespaced(*cmd: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """A process in new pid and mount namespaces (``unshare --pid --mount --fork``); yields
    the host pid of the namespace's init (the forked child, pid 1 inside)."""
    need_root()
    need("unshare", "util-linux")
    proc = subprocess.Popen(["unshare", "--pid", "--mount", "--fork", *cmd], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: bool(children(proc.pid))), "unshare never forked"
        [child] = children(proc.pid)
        # wait until the child has exec'd the command (its cmdline is no longer unshare's)
        assert wait_for(lambda: Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]
                        != b"unshare")
        yield child
    finally:
        for pid in children(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def qemu(*name_args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``qemu-system-x86_64 -S -nographic`` (stopped CPU, no machine, no KVM needed)."""
    need("qemu-system-x86_64", "qemu-system-x86")
    proc = subprocess.Popen(["qemu-system-x86_64", "-S", "-nographic", "-nodefaults",
                             "-machine", "none", *name_args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: Path(f"/proc/{proc.pid}/exe").exists() and
                        os.readlink(f"/proc/{proc.pid}/exe").endswith("qemu-system-x86_64"))
        time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        yield proc
    finally:
        proc.kill()  # by PID: only the QEMU we started
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def fake_tool(directory: Path, name: str, script: str) -> Path:
    """An executable ``/bin/sh`` script *name* in *directory*."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path
