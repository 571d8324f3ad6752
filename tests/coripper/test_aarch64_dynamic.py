"""A dynamically linked aarch64 program, run under ``qemu-aarch64 -L <sysroot>``: its guest core,
minimized in file and pipe mode, against gdb-multiarch, eu-unstrip and our unwinder.

What gdb does with qemu's ORIGINAL core (gdb 13, qemu 7.2 here): qemu writes the executable's
non-dumped mappings as ``PT_LOAD`` with ``p_filesz`` 0 and ``p_memsz`` > 0, and gdb reads those
as zeros. Its PIE relocation reads the program headers at ``AT_PHDR`` from the core, gets zeros,
and gives up: ``#0 0x0000005500000b00 in ?? ()``, "No shared libraries loaded at this time.",
and "Backtrace stopped: previous frame identical to this frame (corrupt stack?)". The
minimized core has no such segments (``p_memsz == p_filesz``), so gdb falls back to the
executable file's headers and prints every frame with names and ``Thread 0x... (LWP n)``
labels. So the oracle here is gdb on the minimized core, checked against the program's source
(crasher.c's call chain), and equal in file and pipe mode; if a gdb reads the original
properly, its names must equal those too.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coripper.unwinder.backtrace import core_backtrace
from test_unwind import assert_matches_gdb
from testlib import host_core_pattern

pytestmark = pytest.mark.slow          # programs run under qemu-user

SYSROOT = "/usr/aarch64-linux-gnu"
PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
GDB_SCRIPT = Path(__file__).resolve().parent / "data" / "gdb_frames.py"
ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}
# crasher.c: main -> crash_level1 -> crash_level2 -> crash_write_null (SIGSEGV); the workers
# run worker_main -> pthread_barrier_wait, then thread_wait_forever -> pause(). main crashes
# right after the barrier, so a worker may still be leaving pthread_barrier_wait or not yet
# in pause() (seen in about one run in four under qemu), or binding pause() lazily (None: PLT0
# and ld.so have no names; the caller then shows twice, docs/backtrace.md).
CRASH_CHAIN = ["crash_write_null", "crash_level2", "crash_level1", "main"]
WORKER_INNER = {"pause", "pause@plt", "thread_wait_forever", "pthread_barrier_wait", None}


def _unlimited() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


@pytest.fixture(scope="module")
def dyn(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "gdb-multiarch"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool}")
    if not os.path.isfile(f"{SYSROOT}/lib/libc.so.6"):
        pytest.skip(f"no aarch64 sysroot at {SYSROOT}")
    d = tmp_path_factory.mktemp("a64dyn")
    exe = d / "crasher-dyn"
    subprocess.run(["aarch64-linux-gnu-gcc", "-g", "-O1", "-pthread", "-o", str(exe),
                    str(PROGRAMS / "crasher.c")], check=True, capture_output=True)
    # Lazy binding: main's crash races with the workers' first call of pause(), so a worker
    # may be in pause@plt, PLT0 or ld.so's resolver (3 of 40 runs were in ld.so, 1 in the
    # stub); test_aarch64_lazy.py stops a thread at each of those points deliberately.
    with host_core_pattern():
        run = subprocess.run(["qemu-aarch64", "-L", SYSROOT, str(exe), "segv", "-t", "2"], cwd=d,
                             preexec_fn=_unlimited, capture_output=True, timeout=120)
    assert run.returncode != 0
    found = sorted(d.glob("qemu_*.core"))       # qemu_<prog>_<date>_<pid>.core in the cwd
    if not found:
        pytest.skip("qemu-aarch64 wrote no guest core")
    core = found[0]
    small, piped = d / "small.core", d / "piped.core"
    cli = [sys.executable, "-m", "coripper.cli"]
    r = subprocess.run([*cli, str(core), "-o", str(small)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with open(core, "rb") as f, open(piped, "wb") as out:
        cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
        r = subprocess.run([*cli, "-"], stdin=cat.stdout, stdout=out, stderr=subprocess.PIPE,
                           timeout=120)
        assert cat.stdout is not None
        cat.stdout.close()
        cat.wait()
    assert r.returncode == 0, r.stderr
    return {"exe": exe, "core": core, "small": small, "piped": piped}


def gdb_frames(exe: Path, core: Path) -> dict[int, list]:  # type: ignore[type-arg]
    """{tid: [[frame type, pc, name], ...]} from gdb-multiarch with the guest sysroot."""
    out = subprocess.run(
        ["gdb-multiarch", "-batch", "-nx", "-iex", f"set sysroot {SYSROOT}",
         "-iex", f"set solib-search-path {SYSROOT}/lib", "-ex", "set backtrace past-main on",
         "-ex", "set backtrace past-entry on", "-x", str(GDB_SCRIPT), str(exe), str(core)],
        capture_output=True, text=True, timeout=300, env=ENV).stdout
    threads = {}
    for line in out.splitlines():
        if line.startswith("CRASHKIT-THREAD "):
            doc = json.loads(line[len("CRASHKIT-THREAD "):])
            threads[doc["tid"]] = doc["frames"]
    assert threads, f"gdb-multiarch printed no threads for {core}"
    return threads


def _names(frames: list) -> list:  # type: ignore[type-arg]
    return [name for _type, _pc, name in frames]


def _thread_labels(exe: Path, core: Path) -> list[str]:
    out = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-iex", f"set sysroot {SYSROOT}",
                          "-ex", "info threads", str(exe), str(core)],
                         capture_output=True, text=True, timeout=120, env=ENV).stdout
    return [m.group(1) for line in out.splitlines()
            if (m := re.match(r"^\*?\s+\d+\s+((?:Thread 0x[0-9a-f]+ \()?LWP \d+\)?)", line))]


def test_gdb_on_minimized_core_follows_the_source(dyn: dict[str, Path]) -> None:
    small = gdb_frames(dyn["exe"], dyn["small"])
    assert gdb_frames(dyn["exe"], dyn["piped"]) == small
    assert len(small) == 3
    crash = [t for t in small.values() if _names(t)[:1] == ["crash_write_null"]]
    assert len(crash) == 1 and _names(crash[0])[:4] == CRASH_CHAIN
    workers = [t for t in small.values() if t is not crash[0]]
    for frames in workers:
        names = _names(frames)
        assert "worker_main" in names, names
        assert set(names[:names.index("worker_main")]) <= WORKER_INNER, names
    # libthread_db finds every thread (nptl's list is in ld.so's data, a kept small segment)
    labels = _thread_labels(dyn["exe"], dyn["small"])
    assert len(labels) == 3 and all(label.startswith("Thread 0x") for label in labels)


def test_gdb_on_original_core(dyn: dict[str, Path]) -> None:
    """Where gdb can read the original, it agrees; where it cannot, it is for the documented
    reason (zeros read at AT_PHDR from a p_filesz-0 segment), not something we lost."""
    orig = gdb_frames(dyn["exe"], dyn["core"])
    small = gdb_frames(dyn["exe"], dyn["small"])
    assert sorted(orig) == sorted(small)
    if all(frames and frames[0][2] for frames in orig.values()):
        assert {t: _names(f) for t, f in orig.items()} == {t: _names(f) for t, f in small.items()}
        return
    auxv = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-ex", "info auxv", str(dyn["exe"]),
                           str(dyn["core"])], capture_output=True, text=True, env=ENV).stdout
    at_phdr = int(re.search(r"AT_PHDR\s.*?(0x[0-9a-f]+)", auxv).group(1), 16)  # type: ignore[union-attr]
    phdrs = subprocess.run(["readelf", "-lW", str(dyn["core"])], capture_output=True, text=True,
                           env=ENV).stdout
    holding = [line.split() for line in phdrs.splitlines() if line.strip().startswith("LOAD")
               and int(line.split()[2], 16) <= at_phdr < int(line.split()[2], 16)
               + int(line.split()[5], 16)]
    assert holding and int(holding[0][4], 16) == 0, "AT_PHDR is dumped, yet gdb failed"
    # and the minimized core has no such segment, so gdb reads the program headers from the file
    phdrs = subprocess.run(["readelf", "-lW", str(dyn["small"])], capture_output=True,
                           text=True, env=ENV).stdout
    assert not any(line.split()[4] == "0x000000" for line in phdrs.splitlines()
                   if line.strip().startswith("LOAD"))


@pytest.mark.parametrize("which", ["core", "small", "piped"])
def test_unwinder_equals_gdb(dyn: dict[str, Path], which: str) -> None:
    """Our unwinder on the original and minimized cores, with the sysroot as rootdir: the
    libraries come from the process's link_map (qemu writes no NT_FILE)."""
    bt = core_backtrace(str(dyn[which]), rootdir=SYSROOT, executable=str(dyn["exe"]))
    assert assert_matches_gdb(bt, gdb_frames(dyn["exe"], dyn["small"])) >= 7 + 2 * 3
    libc_bid = re.search(r"Build ID: ([0-9a-f]+)", subprocess.run(
        ["eu-readelf", "-n", f"{SYSROOT}/lib/libc.so.6"], capture_output=True, text=True).stdout)
    assert libc_bid is not None
    libc_frames = [f for t in bt.threads for f in t.frames
                   if f.file_name and f.file_name.endswith("/libc.so.6")]
    assert libc_frames and {f.build_id for f in libc_frames} == {libc_bid.group(1)}


def test_eu_unstrip_same_on_minimized(dyn: dict[str, Path]) -> None:
    if not shutil.which("eu-unstrip"):
        pytest.skip("needs elfutils")

    def modules(core: Path) -> str:
        return subprocess.run(["eu-unstrip", "-n", "--core", str(core), "-e", str(dyn["exe"])],
                              capture_output=True, text=True, env=ENV).stdout

    orig = modules(dyn["core"])
    exe_bid = re.search(r"Build ID: ([0-9a-f]+)", subprocess.run(
        ["eu-readelf", "-n", str(dyn["exe"])], capture_output=True, text=True).stdout)
    assert exe_bid is not None and exe_bid.group(1) in orig
    assert modules(dyn["small"]) == orig == modules(dyn["piped"])


def test_plt_stub_names_equal_objdump(dyn: dict[str, Path]) -> None:
    """A thread stopped in a PLT stub is named ``name@plt`` as gdb names it (BFD's synthetic
    symbols); checked against objdump's labels for every stub."""
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if objdump is None:
        pytest.skip("needs binutils-aarch64-linux-gnu")
    from coripper.unwinder.modules import load_tables

    out = subprocess.run([objdump, "-d", "-j", ".plt", str(dyn["exe"])], capture_output=True,
                         text=True, env=ENV).stdout
    stubs = {int(m.group(1), 16): m.group(2)
             for m in re.finditer(r"^([0-9a-f]+) <(\S+@plt)>:", out, re.M)}
    assert len(stubs) >= 5
    with open(dyn["exe"], "rb") as f:
        symbols = load_tables(f, None).symbols
    for addr, name in stubs.items():
        for pc in (addr, addr + 12):
            found = symbols.lookup(pc)
            assert found is not None and found.name == name, (hex(pc), found, name)
