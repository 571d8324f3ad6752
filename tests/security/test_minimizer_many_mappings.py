"""Issue 15, finding 2: the minimizer was quadratic in the number of mapped files, and ran
before the pipe was released.

Any user can map one file ~65,530 times (``vm.max_map_count``) and crash: the kernel writes one
``NT_FILE`` entry and one program header per mapping, and the old minimizer took 266 s for such
a core (``_modules``, the watched-page scan, the kept-range reasons: each a scan of every
mapping per mapping), holding one of the root hook's ``core_pipe_limit`` slots all along.

Real cores: tests/security/data/map_many.c maps one file until mmap fails, then crashes through
the kernel (tests/testlib.py's helpers). The mapped files live at a short path: the kernel
drops ``NT_FILE`` altogether when 65,530 entries with their names exceed 4 MiB. The bounds are
generous (10 s against minutes before): they tell linear from quadratic on a loaded machine;
bench/coripper_many_mappings.py measures the figures.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testlib import REPO, Crash, crash_through_kernel, python_exe, require_core_pattern

from coripper.minimizer import elfcore
from coripper.minimizer.provenance import find_provenance
from coripper.minimizer.stream import MinimizeOptions, MinimizeReport, minimize_file, minimize_stream

sys.path.insert(0, str(REPO / "tests" / "coripper"))
sys.path.insert(0, str(REPO / "tests" / "collectors" / "corehook"))
import elfwriter  # noqa: E402
from hookenv import HookEnv, element, hook_fixture  # noqa: E402,F401 - fixture hook

# every test minimizes 65,530-mapping cores or waits out an analysis budget: seconds each
pytestmark = pytest.mark.slow

MAP_MANY = Path(__file__).resolve().parent / "data" / "map_many.c"
BOUND = 10.0                    # seconds; the old code took 266 s (minutes on every variant)
MIN_MAPPINGS = 65_000           # what vm.max_map_count = 65530 leaves to the mapped file
LIBC = Path("/usr/lib/x86_64-linux-gnu/libc.so.6")


@dataclass(frozen=True)
class ManyMaps:
    exe: Path
    short: Path                 # /tmp/ckmmXXXXXX: the mapped files
    elf: Path                   # a copy of map_many itself: every mapping's first page dumped
    text: Path                  # not ELF: the mappings are headers only


@pytest.fixture(scope="module")
def many_maps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManyMaps]:
    require_core_pattern()
    if int(Path("/proc/sys/vm/max_map_count").read_text()) < 65530:
        pytest.skip("vm.max_map_count is below Linux's default 65530")
    root = tmp_path_factory.mktemp("manymaps")
    exe = root / "map_many"
    subprocess.run(["gcc", "-g", "-O1", "-pthread", "-o", str(exe), str(MAP_MANY)], check=True,
                   capture_output=True)
    short = Path(tempfile.mkdtemp(prefix="ckmm", dir="/tmp"))
    try:
        elf = short / "e"
        shutil.copy(exe, elf)
        text = short / "t"
        text.write_text("not an ELF file\n" * 512)
        yield ManyMaps(exe, short, elf, text)
    finally:
        shutil.rmtree(short, ignore_errors=True)


_cores: dict[str, Crash] = {}


def kernel_core(many: ManyMaps, mapped: Path, tmp_path_factory: pytest.TempPathFactory,
                count: int = 0) -> Path:
    """The kernel's core of map_many mapping ``mapped`` ``count`` times (0: until it fails),
    with two extra threads; made once per session."""
    key = f"{mapped}:{count}"
    if key not in _cores:
        crash = crash_through_kernel([many.exe, mapped, str(count), "2"],
                                     tmp_path_factory.mktemp("core"), timeout=300)
        assert crash.signal == 11 and crash.core is not None, crash
        _cores[key] = crash
    core = _cores[key].core
    assert core is not None
    return core


def nt_file_count(core: Path) -> int:
    """How many NT_FILE entries ``core`` has (parsed here, not by the code under test)."""
    with open(core, "rb") as f:
        head = f.read(64 << 20)
    hdr = elfcore.parse_elf_header(head)
    phdrs = elfcore.parse_program_headers(head[hdr.e_phoff:hdr.e_phoff + hdr.e_phnum * 56])
    for ph in phdrs:
        if ph.p_type == elfcore.PT_NOTE:
            for note in elfcore.iter_notes(head[ph.p_offset:ph.p_offset + ph.p_filesz]):
                if note.name == "CORE" and note.n_type == elfcore.NT_FILE:
                    return int(struct.unpack_from("<Q", note.desc)[0])
    return 0


def provenance(core: Path) -> dict:  # type: ignore[type-arg]
    """The provenance note of a minimized core."""
    data = core.read_bytes()
    hdr = elfcore.parse_elf_header(data)
    phdrs = elfcore.parse_program_headers(data[hdr.e_phoff:hdr.e_phoff + hdr.e_phnum * 56])
    for ph in reversed(phdrs):
        if ph.p_type == elfcore.PT_NOTE:
            found = find_provenance(data[ph.p_offset:ph.p_offset + ph.p_filesz])
            if found is not None:
                return found
    raise AssertionError(f"{core}: no provenance note")


def coripper_stdin(core: Path, out: Path, *extra: str, timeout: float = 120) -> tuple[float, int, str]:
    """``coripper [extra] - < core -o out`` as the issue measured it: (seconds, exit code, stderr)."""
    start = time.perf_counter()
    with open(core, "rb") as src:
        proc = subprocess.run([python_exe(), "-m", "coripper.cli", "--hash", "none", *extra, "-",
                               "-o", str(out)], stdin=src, capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
    return time.perf_counter() - start, proc.returncode, proc.stderr


def minimized_report(out: Path) -> MinimizeReport:
    with open(out, "rb") as f:
        return minimize_file(f, None)


def assert_keeps_every_stack(report: MinimizeReport, threads: int) -> None:
    assert len(report.threads) == threads, report.threads
    for t in report.threads:
        assert any(a <= t.sp < b and "stack" in r for a, b, r in report.kept), \
            f"thread {t.tid}: SP {t.sp:#x} in no kept stack"


def test_quadratic_minimizer_65530_mapped_elf_copies_minimize_in_seconds_keeping_the_stacks(
        many_maps: ManyMaps, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """Every mapping's first page is dumped and watched: the module list, the watched-page scan
    and the kept reasons were each quadratic."""
    core = kernel_core(many_maps, many_maps.elf, tmp_path_factory)
    assert nt_file_count(core) >= MIN_MAPPINGS
    seconds, rc, err = coripper_stdin(core, tmp_path / "out.core")
    assert rc == 0, err
    assert seconds < BOUND, f"{seconds:.1f} s for {nt_file_count(core)} mappings"
    report = minimized_report(tmp_path / "out.core")
    assert_keeps_every_stack(report, 3)
    assert len(report.modules) >= MIN_MAPPINGS      # every copy is a module with its header
    path, _ = report.crash_site()
    assert path is not None and path.endswith("/map_many")
    assert not provenance(tmp_path / "out.core")["truncated"]


def test_quadratic_minimizer_65530_mappings_of_a_plain_file_minimize_in_seconds(
        many_maps: ManyMaps, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """Headers only (a file that is not ELF has no page dumped): linear in the headers."""
    core = kernel_core(many_maps, many_maps.text, tmp_path_factory)
    assert nt_file_count(core) >= MIN_MAPPINGS
    seconds, rc, err = coripper_stdin(core, tmp_path / "out.core")
    assert rc == 0, err
    assert seconds < BOUND, f"{seconds:.1f} s"
    report = minimized_report(tmp_path / "out.core")
    assert_keeps_every_stack(report, 3)
    assert sum(1 for m in report.modules if m.path == str(many_maps.text)) >= MIN_MAPPINGS


def test_quadratic_minimizer_65530_mappings_of_libc_minimize_in_seconds(
        many_maps: ManyMaps, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """libc's name selects the thread-library rule (its writable data is kept), which looked
    at every segment for every mapping of the file."""
    if not LIBC.exists():
        pytest.skip(f"{LIBC} not found")
    core = kernel_core(many_maps, LIBC, tmp_path_factory)
    assert nt_file_count(core) >= MIN_MAPPINGS
    seconds, rc, err = coripper_stdin(core, tmp_path / "out.core")
    assert rc == 0, err
    assert seconds < BOUND, f"{seconds:.1f} s"
    report = minimized_report(tmp_path / "out.core")
    assert_keeps_every_stack(report, 3)
    assert any("thread library data" in r for _, _, r in report.kept)


def test_quadratic_minimizer_past_the_analysis_budget_drains_the_pipe_and_marks_truncation(
        many_maps: ManyMaps, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """A budget used up: the rest of the pipe is drained unread (the writer finishes), the notes
    are kept, and the result says truncated, in the report, the warnings and the note."""
    core = kernel_core(many_maps, many_maps.elf, tmp_path_factory)
    size = core.stat().st_size
    read_fd, write_fd = os.pipe()
    fed: list[int] = []

    def feed() -> None:         # as the kernel does: write it all, then close
        with open(core, "rb") as src, open(write_fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
                fed.append(len(chunk))

    writer = threading.Thread(target=feed)
    writer.start()
    out = tmp_path / "budget.core"
    start = time.perf_counter()
    with open(read_fd, "rb") as src, open(out, "wb") as dst:
        report = minimize_stream(src, dst, MinimizeOptions(hash_algorithm=None,
                                                           analysis_budget=0.001))
    seconds = time.perf_counter() - start
    writer.join(timeout=60)
    assert not writer.is_alive() and sum(fed) == size       # drained: the writer got rid of all
    assert report.bytes_in == size
    assert report.budget_exceeded and report.truncated
    assert any("analysis budget of 0.001 s used up" in w for w in report.warnings)
    assert seconds < BOUND
    note = provenance(out)
    assert note["truncated"] and note["options"]["analysis_budget"] == 0.001
    assert any("analysis budget" in w for w in note["warnings"])
    again = minimized_report(out)               # a valid core: the notes (threads) are there
    assert [t.tid for t in again.threads] == [t.tid for t in report.threads]
    assert len(again.threads) == 3


def test_quadratic_minimizer_analysis_budget_on_the_command_line(
        many_maps: ManyMaps, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """``--analysis-budget``: exit 1 and a warning past it; a budget that suffices changes
    nothing but the option recorded in the provenance note."""
    core = kernel_core(many_maps, many_maps.elf, tmp_path_factory, count=2000)
    seconds, rc, err = coripper_stdin(core, tmp_path / "cut.core", "--analysis-budget", "0.001")
    assert rc == 1 and "analysis budget of 0.001 s used up" in err, err
    assert provenance(tmp_path / "cut.core")["truncated"]
    _, rc, err = coripper_stdin(core, tmp_path / "ample.core", "--analysis-budget", "300")
    _, rc0, _ = coripper_stdin(core, tmp_path / "plain.core")
    assert rc == rc0 == 0, err
    ample, plain = provenance(tmp_path / "ample.core"), provenance(tmp_path / "plain.core")
    assert ample["options"].pop("analysis_budget") == 300
    assert plain["options"].pop("analysis_budget") is None
    assert ample == plain
    assert minimized_report(tmp_path / "ample.core").kept == \
        minimized_report(tmp_path / "plain.core").kept


def test_quadratic_minimizer_segments_over_the_elf_limit_drop_header_pages_not_stacks(
        tmp_path: Path) -> None:
    """More kept segments than an ELF table holds (65,534; vm.max_map_count raised): module
    header pages are left out, not the stack at the top of the address space."""
    page = 4096
    n = 65_533                  # + the stack: one load too many beside the notes
    files = [(0x10000000 + 2 * page * i, 0x10000000 + 2 * page * i + page, 0, f"/m{i}")
             for i in range(n - 1)]
    stack = 0x7FFF00000000
    notes = b"".join([
        elfwriter.note(b"CORE", elfwriter.NT_PRSTATUS, elfwriter.prstatus(7, stack + 0x800, 0x1)),
        elfwriter.note(b"CORE", elfwriter.NT_PRPSINFO, bytes(136)),
        elfwriter.note(b"CORE", elfwriter.NT_AUXV, struct.pack("<QQ", 6, page) + bytes(16)),
        elfwriter.note(b"CORE", elfwriter.NT_FILE, elfwriter.nt_file(files))])
    loads = [(s, 4) for s, *_ in files] + [(stack, 6)]
    phnum = 1 + len(loads)
    off = 64 + 56 * phnum
    data_off = (off + len(notes) + page - 1) & ~(page - 1)
    core = tmp_path / "core"
    with open(core, "wb") as f:
        f.write(struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 4,
                            elfwriter.EM_X86_64, 1, 0, 64, 0, 0, 64, 56, phnum, 0, 0, 0))
        f.write(struct.pack("<IIQQQQQQ", elfwriter.PT_NOTE, 0, off, 0, 0, len(notes), 0, 4))
        for i, (vaddr, flags) in enumerate(loads):
            f.write(struct.pack("<IIQQQQQQ", elfwriter.PT_LOAD, flags, data_off + i * page,
                                vaddr, 0, page, page, page))
        f.write(notes)
        f.write(bytes(data_off - f.tell()))
        f.write(b"x" * page * len(loads))
    out = tmp_path / "out.core"
    start = time.perf_counter()
    proc = subprocess.run([python_exe(), "-m", "coripper.cli", str(core), "-o", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert time.perf_counter() - start < BOUND
    assert proc.returncode == 0, proc.stderr
    assert "segments left out" in proc.stderr and "module header pages" in proc.stderr
    hdr = elfcore.parse_elf_header(out.read_bytes()[:64])
    assert hdr.e_phnum <= 0xFFFE
    report = minimized_report(out)
    assert_keeps_every_stack(report, 1)
    assert any(a <= stack + 0x800 < b and "stack tid 7" in r for a, b, r in report.kept)


def test_quadratic_minimizer_late_notes_over_one_region_are_read_once_in_all(
        tmp_path: Path) -> None:
    """PT_NOTEs after the memory are read when the copy gets there; a file can go back, so
    20,000 of them over one 64 MiB region were 20,000 reads of it (1.3 TB). Now 64 MiB in all."""
    spec = elfwriter.simple_spec()
    body = elfwriter.build_core(spec)
    hdr = struct.unpack_from("<16sHHIQQQIHHHHHH", body, 0)
    phnum, n = hdr[10], 20_000
    region = 1 << 26
    core = tmp_path / "core"
    with open(core, "wb") as f:
        f.write(body)
        f.write(struct.pack("<III", 2, region - 16, 1) + b"Y\0\0\0")     # one note: "Y"
        f.seek(len(body) + region)                                        # sparse: zeros
        table = f.tell()
        f.write(body[64:64 + 56 * phnum])
        for _ in range(n):
            f.write(struct.pack("<IIQQQQQQ", elfwriter.PT_NOTE, 0, len(body), 0, 0, region, 0, 4))
        f.seek(0)
        f.write(struct.pack("<16sHHIQQQIHHHHHH", hdr[0], 4, hdr[2], 1, 0, table, 0, 0, 64, 56,
                            phnum + n, 0, 0, 0))
    start = time.perf_counter()
    proc = subprocess.run([python_exe(), "-m", "coripper.cli", str(core), "-o",
                           str(tmp_path / "out.core")], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert time.perf_counter() - start < BOUND
    assert proc.returncode == 0, proc.stderr
    assert "notes after the memory larger than 67108864 bytes" in proc.stderr
    assert_keeps_every_stack(minimized_report(tmp_path / "out.core"), 2)


def test_quadratic_minimizer_hook_releases_the_kernel_in_seconds(
        hook: HookEnv, many_maps: ManyMaps) -> None:
    """Through the real hook with its default budget: the crashed process is reaped in seconds
    (the kernel waits for the hook to drain and close its pipe), the directory has the core."""
    program = hook.program(many_maps.exe, "map_many")
    start = time.perf_counter()
    hook.crash([program, many_maps.elf, "0", "2"])
    seconds = time.perf_counter() - start
    assert seconds < 3 * BOUND, f"{seconds:.1f} s from crash to the hook's outcome"
    [d] = hook.dirs()
    assert (d / "coredump").exists()
    error = (d / "coredump_error").read_text() if (d / "coredump_error").exists() else ""
    assert error == "" or "analysis_budget" in error, error
    report = minimized_report(d / "coredump")
    assert len(report.threads) == 3
    if not error:
        assert_keeps_every_stack(report, 3)


def test_quadratic_minimizer_hook_past_its_budget_saves_a_truncated_core(
        hook: HookEnv, many_maps: ManyMaps) -> None:
    """``analysis_budget`` in hook.toml: used up, the hook still drains, saves the notes and
    says why the core is short in ``coredump_error``."""
    with open(hook.paths.hook_config, "a") as f:        # hook.configure() quotes floats
        f.write("analysis_budget = 0.001\n")
    program = hook.program(many_maps.exe, "map_many")
    start = time.perf_counter()
    hook.crash([program, many_maps.elf, "0", "2"])
    assert time.perf_counter() - start < 3 * BOUND
    [d] = hook.dirs()
    assert "analysis_budget" in element(d, "coredump_error")
    note = provenance(d / "coredump")
    assert note["truncated"] and note["options"]["analysis_budget"] == 0.001
    assert len(minimized_report(d / "coredump").threads) == 3
    assert "hook.analysis_budget" not in hook.log_text()     # the setting was accepted
