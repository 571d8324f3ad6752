"""aarch64 cores, written for real by qemu-user for a cross-compiled crasher."""

from __future__ import annotations

import io
import os
import re
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from coripper.minimizer.elfcore import EM_AARCH64, parse_elf_header
from coripper.minimizer.stream import minimize_file, minimize_stream
from testlib import host_core_pattern

pytestmark = pytest.mark.slow          # programs run under qemu-user

ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}


def _unlimited() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


@pytest.fixture(scope="module")
def a64(programs, tmp_path_factory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    exe = programs.crasher_aarch64()
    cwd = tmp_path_factory.mktemp("qemu")
    with host_core_pattern():
        proc = subprocess.run(["qemu-aarch64", str(exe), "segv", "-t", "2"], cwd=cwd,
                              preexec_fn=_unlimited, capture_output=True, timeout=120)
    assert proc.returncode != 0
    found = sorted(cwd.glob("qemu_*.core"))     # qemu-user names guest cores qemu_<prog>_<date>_<pid>.core
    if not found:
        pytest.skip("qemu-aarch64 wrote no guest core")
    return exe, found[0]


def _bt(exe: Path, core: Path) -> dict[str, list[str]]:
    out = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-ex", "thread apply all bt",
                          str(exe), str(core)], capture_output=True, text=True, timeout=120,
                         env=ENV).stdout
    threads: dict[str, list[str]] = {}
    cur = None
    for line in out.splitlines():
        m = re.match(r"^Thread \d+ \(.*LWP (\d+)\)", line)
        if m:
            cur = m.group(1)
            threads[cur] = []
        m = re.match(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+)", line)
        if m and cur:
            threads[cur].append(m.group(1))
    return threads


def test_aarch64_registers_and_modes(a64) -> None:  # type: ignore[no-untyped-def]
    _, core = a64
    out_file, out_stream = io.BytesIO(), io.BytesIO()
    with open(core, "rb") as f:
        rf = minimize_file(f, out_file)
    with open(core, "rb") as f:
        rs = minimize_stream(f, out_stream)
    assert rf.machine == rs.machine == "aarch64"
    assert parse_elf_header(out_file.getvalue()).e_machine == EM_AARCH64
    assert len(rf.threads) == 3 and rf.threads[0].signal == 11
    assert all(t.pc and t.sp for t in rf.threads)
    assert rf.kept == rs.kept
    assert rf.bytes_out * 50 < rf.bytes_in


@pytest.mark.parametrize("mode", ["file", "pipe"])
def test_aarch64_gdb_backtraces_equal(a64, tmp_path: Path, mode: str) -> None:  # type: ignore[no-untyped-def]
    if not shutil.which("gdb-multiarch"):
        pytest.skip("gdb-multiarch not installed")
    exe, core = a64
    small = tmp_path / "small"
    if mode == "file":
        with open(core, "rb") as f, open(small, "wb") as d:
            minimize_file(f, d)
    else:
        with open(core, "rb") as f:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                with os.fdopen(w, "wb") as out:
                    shutil.copyfileobj(f, out)
                os._exit(0)
            os.close(w)
            with os.fdopen(r, "rb") as src, open(small, "wb") as d:
                minimize_stream(src, d)
            os.waitpid(pid, 0)
    expected = _bt(exe, core)
    assert expected and all(expected.values())
    assert _bt(exe, small) == expected
    # libthread_db names the threads as on the original ("Thread 0x4a8000 (LWP n)", not
    # "LWP n"): it walks nptl's list from the static executable's .bss (qemu writes no
    # NT_ARM_TLS, so this is the only way to the TCBs)
    labels = _thread_labels(exe, core)
    assert labels and all(label.startswith("Thread 0x") for label in labels)
    assert _thread_labels(exe, small) == labels


def _thread_labels(exe: Path, core: Path) -> list[str]:
    """The "Target Id" column of gdb's ``info threads``."""
    out = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-ex", "info threads",
                          str(exe), str(core)], capture_output=True, text=True, timeout=120,
                         env=ENV).stdout
    return [m.group(1) for line in out.splitlines()
            if (m := re.match(r"^\*?\s+\d+\s+((?:Thread 0x[0-9a-f]+ \()?LWP \d+\)?)", line))]


def test_aarch64_readelf_clean(a64, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, core = a64
    small = tmp_path / "small"
    with open(core, "rb") as f, open(small, "wb") as d:
        minimize_file(f, d)
    for tool in ("readelf", "eu-readelf"):
        out = subprocess.run([tool, "-a", str(small)], capture_output=True, text=True, env=ENV)
        assert out.returncode == 0
        assert "warning" not in (out.stdout + out.stderr).lower()
        assert "error" not in (out.stdout + out.stderr).lower()
