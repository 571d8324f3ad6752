"""Minimized cores of real crashes keep every backtrace, build-id and thread name.

Oracles are independent tools run on the original kernel core and on ours: gdb
(``thread apply all bt``, ``info threads``), eu-stack, eu-unstrip, readelf and eu-readelf.
Each core is minimized in file mode (``minimize_file``) and in pipe mode (``cat core | coripper -``
through a real pipe).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coripper.minimizer.elfcore import PT_NOTE, parse_elf_header, parse_program_headers
from coripper.minimizer.provenance import find_provenance
from coripper.minimizer.stream import minimize_file

pytestmark = pytest.mark.root

KINDS = ["threads", "abort", "recurse", "overflow", "static", "nopie", "fpe", "throw", "dlopen"]
ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}


def _need(tool: str) -> None:
    if not shutil.which(tool):
        pytest.skip(f"{tool} not installed")


def _crash(cores, programs, kind: str):  # type: ignore[no-untyped-def]
    if kind == "dlopen":
        exe, libs = programs.dlopen_many(200)
        return cores.crash("dlopen200", [exe, *libs]), exe
    crash = cores.standard(kind)
    return crash, Path(crash.argv[0])


def _gdb(exe: Path, core: Path, *cmds: str) -> str:
    argv = ["gdb", "-nx", "-batch", "-ex", "set auto-load safe-path /"]
    for c in cmds:
        argv += ["-ex", c]
    return subprocess.run(argv + [str(exe), str(core)], capture_output=True, text=True,
                          timeout=180, env=ENV).stdout


_THREAD = re.compile(r"^Thread \d+ \((.*)\):")
_FRAME = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+)")


def gdb_backtraces(exe: Path, core: Path, depth: int = 40) -> dict[str, list[str]]:
    """{gdb thread label: [function names, innermost first]} from ``thread apply all bt``."""
    out: dict[str, list[str]] = {}
    current = None
    for line in _gdb(exe, core, f"thread apply all bt {depth}").splitlines():
        m = _THREAD.match(line)
        if m:
            current = m.group(1)
            out[current] = []
            continue
        m = _FRAME.match(line)
        if m and current is not None:
            out[current].append(m.group(1))
    return out


def gdb_thread_ids(exe: Path, core: Path) -> list[str]:
    """The "Target Id" of every thread in ``info threads`` (e.g. ``Thread 0x7f.. (LWP 12)``)."""
    ids = []
    for line in _gdb(exe, core, "info threads").splitlines():
        m = re.match(r"^[ *]\s*\d+\s+((?:Thread 0x[0-9a-f]+ \(LWP \d+\))|(?:LWP \d+))", line)
        if m:
            ids.append(m.group(1))
    return sorted(ids)


def build_ids(core: Path) -> set[tuple[str, str]]:
    """(start address, build-id) of every module eu-unstrip recognizes in the core."""
    out = subprocess.run(["eu-unstrip", "-n", "--core", str(core)], capture_output=True,
                         text=True, timeout=60, env=ENV)
    assert out.returncode == 0, out.stderr
    return {(line.split()[0].split("+")[0], line.split()[1].split("@")[0])
            for line in out.stdout.splitlines() if line.strip()}


def eu_stack_frames(core: Path, exe: Path) -> str:
    out = subprocess.run(["eu-stack", "--core", str(core), "-e", str(exe)], capture_output=True,
                         text=True, timeout=60, env=ENV)
    return out.stdout


def minimize(core: Path, mode: str, out: Path) -> Path:
    if mode == "file":
        with open(core, "rb") as src, open(out, "wb") as dst:
            minimize_file(src, dst)
    else:
        cmd = f"cat {core} | {sys.executable} -m coripper.cli - > {out}"
        subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def minimized(cores, programs, tmp_path_factory):  # type: ignore[no-untyped-def]
    cache: dict[tuple[str, str], tuple[Path, Path, Path]] = {}
    root = tmp_path_factory.mktemp("minimized")

    def get(kind: str, mode: str) -> tuple[Path, Path, Path]:
        if (kind, mode) not in cache:
            crash, exe = _crash(cores, programs, kind)
            assert crash.core is not None
            cache[kind, mode] = (crash.core, minimize(crash.core, mode, root / f"{kind}.{mode}"), exe)
        return cache[kind, mode]
    return get


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["file", "pipe"])
@pytest.mark.parametrize("kind", KINDS)
def test_gdb_backtraces_equal(minimized, kind: str, mode: str) -> None:
    _need("gdb")
    orig, small, exe = minimized(kind, mode)
    expected = gdb_backtraces(exe, orig)
    got = gdb_backtraces(exe, small)
    assert expected, "gdb printed no threads for the original core"
    assert got == expected
    assert all(len(frames) >= 1 for frames in got.values())


@pytest.mark.parametrize("kind", ["threads", "abort", "throw", "static", "nopie"])
def test_gdb_thread_names_equal(minimized, kind: str) -> None:
    _need("gdb")
    orig, small, exe = minimized(kind, "file")
    expected = gdb_thread_ids(exe, orig)
    assert expected
    assert gdb_thread_ids(exe, small) == expected


@pytest.mark.parametrize("mode", ["file", "pipe"])
@pytest.mark.parametrize("kind", ["threads", "static", "nopie", "dlopen"])
def test_eu_unstrip_same_build_ids(minimized, kind: str, mode: str) -> None:
    _need("eu-unstrip")
    orig, small, _ = minimized(kind, mode)
    expected = build_ids(orig)
    assert expected
    assert build_ids(small) == expected


@pytest.mark.parametrize("kind", ["threads", "abort", "nopie", "throw"])
def test_eu_stack_same_frames(minimized, kind: str) -> None:
    _need("eu-stack")
    orig, small, exe = minimized(kind, "file")
    expected = eu_stack_frames(orig, exe)
    assert "#0" in expected
    assert eu_stack_frames(small, exe) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_readelf_clean(minimized, kind: str) -> None:
    _need("readelf")
    _need("eu-readelf")
    _, small, _ = minimized(kind, "file")
    for tool in ("readelf", "eu-readelf"):
        out = subprocess.run([tool, "-a", str(small)], capture_output=True, text=True, timeout=60,
                             env=ENV)
        assert out.returncode == 0, out.stderr
        text = (out.stdout + out.stderr).lower()
        assert "warning" not in text and "error" not in text, (tool, out.stderr[:500])


@pytest.mark.parametrize("kind", KINDS)
def test_valid_segments_and_provenance(minimized, kind: str) -> None:
    orig, small, _ = minimized(kind, "file")
    data = small.read_bytes()
    hdr = parse_elf_header(data)
    phdrs = parse_program_headers(data[hdr.e_phoff:], hdr.e_phnum)
    loads = [p for p in phdrs if p.p_type == 1]
    assert all(p.p_memsz >= p.p_filesz for p in phdrs)
    assert all(p.p_offset + p.p_filesz <= len(data) for p in phdrs)
    for a, b in zip(loads, loads[1:], strict=False):
        assert a.p_vaddr + a.p_memsz <= b.p_vaddr
    prov = None
    for p in phdrs:
        if p.p_type == PT_NOTE:
            prov = prov or find_provenance(data[p.p_offset:p.p_offset + p.p_filesz])
    assert prov is not None
    assert prov["source"]["size"] == orig.stat().st_size
    assert prov["mode"] == "file" and prov["tool"] == "coripper"
    assert len(prov["kept"]) == len(loads)
    assert any(k["reason"].startswith("stack tid") for k in prov["kept"])


def test_sizes(minimized) -> None:
    orig, small, _ = minimized("threads", "file")
    assert small.stat().st_size * 100 < orig.stat().st_size
    orig, small, _ = minimized("dlopen", "file")
    # at most a few pages per module beyond the stacks
    assert small.stat().st_size < 200 * 3 * 4096 + (1 << 20)


@pytest.mark.slow
def test_gcore_core_file_mode(programs, tmp_path: Path) -> None:
    """gdb's gcore writes PT_NOTE after the memory: file mode seeks back; gdb output is equal."""
    _need("gcore")
    from testlib import gcore
    exe = programs.crasher()
    core = gcore([exe, "sleep", "-t", "3"], tmp_path / "g")
    small = minimize(core, "file", tmp_path / "g.min")
    assert gdb_backtraces(exe, small) == gdb_backtraces(exe, core)
    assert gdb_thread_ids(exe, small) == gdb_thread_ids(exe, core)
    assert build_ids(small) == build_ids(core)
    # a stream cannot go back to the data: notes only, a valid core and a warning
    piped = minimize(core, "pipe", tmp_path / "g.pipe")
    assert parse_elf_header(piped.read_bytes()).e_phnum >= 2
