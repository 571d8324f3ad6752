"""The pure-Python unwinder against gdb, on real cores of the test programs (original and minimized).

Oracle: gdb on the ORIGINAL core with ``backtrace past-main``/``past-entry`` on, via its Python
API (tests/coripper/data/gdb_frames.py), which gives each frame's type, pc and name. The
comparison, frame by frame, for every thread:

* gdb's INLINE_FRAME and TAILCALL_FRAME frames are compared too: ours come from
  ``CoreThread.all_frames()`` (coripper/unwinder/inline.py, docs/backtrace.md) and their kind (inline,
  tail call, physical) must be gdb's frame type.
* the pcs must be equal, and the names must denote the same function: equal, or gdb's DWARF
  name of a C++ function equal to ours without its parameter list, or two ELF symbols at the
  same address (aliases such as ``raise``/``__GI_raise``), as ``readelf -sW`` of the module and
  of its separate debug file lists them. ``??`` (no name) must match no name.
* frame counts must be equal, except that we stop at 256 physical frames (then gdb's frames up
  to its 256th physical one).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coripper.minimizer import elfcore
from coripper.unwinder.backtrace import CoreBacktrace, core_backtrace
from coripper.unwinder.coremem import CoreMemory, Segment
from coripper.unwinder.modules import ModuleMap
from coripper.unwinder.unwind import MAX_FRAMES, X86_64, unwind_thread

DATA = Path(__file__).resolve().parent / "data"
GDB_SCRIPT = DATA / "gdb_frames.py"
INLINE_FRAME, TAILCALL_FRAME = 2, 3

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")


def gdb_threads(exe: str | os.PathLike[str], core: str | os.PathLike[str],
                gdb: str = "gdb") -> dict[int, list]:  # type: ignore[type-arg]
    """{tid: [[frame type, pc, name], ...]} as gdb unwinds the core."""
    out = subprocess.run(
        [gdb, "-batch", "-nx", "-ex", "set backtrace past-main on", "-ex",
         "set backtrace past-entry on", "-x", str(GDB_SCRIPT), str(exe), str(core)],
        capture_output=True, text=True, timeout=300, check=False).stdout
    threads = {}
    for line in out.splitlines():
        if line.startswith("CRASHKIT-THREAD "):
            doc = json.loads(line[len("CRASHKIT-THREAD "):])
            threads[doc["tid"]] = doc["frames"]
    assert threads, f"gdb printed no threads for {core}"
    return threads


@functools.lru_cache(maxsize=None)
def _readelf_addresses(path: str) -> dict[str, set[int]]:
    out = subprocess.run(["readelf", "-sW", path], capture_output=True, text=True,
                         check=False).stdout
    table: dict[str, set[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].endswith(":") and parts[3] in ("FUNC", "IFUNC"):
            name = re.sub(r" \(\d+\)$", "", " ".join(parts[7:]))
            table.setdefault(name, set()).add(int(parts[1], 16))
    return table


def _symbol_addresses(file_name: str | None, build_id: str | None) -> dict[str, set[int]]:
    table: dict[str, set[int]] = {}
    paths = [file_name] if file_name else []
    if build_id:
        paths.append(f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug")
    for p in paths:
        if p and os.path.isfile(p):
            for name, addrs in _readelf_addresses(p).items():
                table.setdefault(name, set()).update(addrs)
    return table


def same_function(gdb_name: str | None, ours: str | None, file_name: str | None,
                  build_id: str | None) -> bool:
    """The comparison rule of this module's docstring."""
    if gdb_name == ours:
        return True
    if gdb_name is None or ours is None:
        return False
    if ours.endswith(")") and ours.split("(", 1)[0] == gdb_name:
        return True
    table = _symbol_addresses(file_name, build_id)
    return bool(table.get(gdb_name, set()) & table.get(ours, set()))


def _kind(frame) -> str:  # type: ignore[no-untyped-def]
    return "inline" if frame.inlined else "tail-call" if frame.tail_call else "physical"


def _gdb_kind(ftype: int) -> str:
    return {INLINE_FRAME: "inline", TAILCALL_FRAME: "tail-call"}.get(ftype, "physical")


def assert_matches_gdb(bt: CoreBacktrace, gdb: dict[int, list]) -> int:  # type: ignore[type-arg]
    """Assert the rule above for every thread; return how many frames were compared."""
    assert sorted(t.tid for t in bt.threads) == sorted(gdb)
    compared = 0
    for thread in bt.threads:
        expected = list(gdb[thread.tid])
        ours = thread.all_frames()
        if len(thread.frames) == MAX_FRAMES:
            # We stop after 256 physical frames: compare gdb's frames up to its 256th physical one.
            physical = [i for i, f in enumerate(expected) if f[0] not in (INLINE_FRAME, TAILCALL_FRAME)]
            if len(physical) > MAX_FRAMES:
                expected = expected[:physical[MAX_FRAMES - 1] + 1]
        got = [(hex(f.address), f.function_name, _kind(f)) for f in ours]
        want = [(hex(pc), name, _gdb_kind(ftype)) for ftype, pc, name in expected]
        assert len(got) == len(want), f"thread {thread.tid}: ours {got}\n gdb {want}"
        for i, (frame, (ftype, pc, name)) in enumerate(zip(ours, expected, strict=True)):
            assert frame.address == pc, f"thread {thread.tid} frame {i}: {got}\n gdb {want}"
            assert _kind(frame) == _gdb_kind(ftype), \
                f"thread {thread.tid} frame {i}: {got}\n gdb {want}"
            assert same_function(name, frame.function_name, frame.file_name, frame.build_id), \
                f"thread {thread.tid} frame {i}: {frame.function_name!r} vs gdb {name!r}"
            compared += 1
    return compared


KINDS = ["threads", "abort", "overflow", "static", "nopie", "throw", "fpe"]


@pytest.mark.parametrize("variant", ["original", "minimized"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_thread_matches_gdb(cores, minimize, tmp_path, kind: str, variant: str) -> None:  # type: ignore[no-untyped-def]
    crash = cores.standard(kind)
    assert crash.core is not None
    core = crash.core if variant == "original" else minimize(crash.core, tmp_path / "min.core")
    bt = core_backtrace(core)
    assert bt.threads[0].crash_thread and bt.crash_tid == crash.pid
    assert assert_matches_gdb(bt, gdb_threads(crash.argv[0], crash.core)) >= 4
    if kind == "overflow":
        assert len(bt.threads[0].frames) == MAX_FRAMES
        assert bt.threads[0].stop_reason == "max-frames"
    else:
        assert all(t.stop_reason == "outermost" for t in bt.threads)
    if variant == "minimized":
        original = core_backtrace(crash.core)
        assert bt.to_json() == original.to_json()
        assert bt.duphash() == original.duphash()


@pytest.mark.slow
def test_dlopen_200_libraries(cores, programs, minimize, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _exe, libs = programs.dlopen_many(200)
    # Built here with -fno-delete-null-pointer-checks: with conftest's flags gcc drops the call
    # to crash_after_loading() (a NULL store is UB) and the program exits 1 without a core.
    exe = tmp_path / "dlopen_many"
    subprocess.run(["gcc", "-g", "-O1", "-fno-delete-null-pointer-checks", "-o", str(exe),
                    str(Path(__file__).resolve().parents[1] / "programs" / "dlopen_many.c"),
                    "-ldl"], check=True)
    crash = cores.crash("dlopen200-coripper-unwind", [exe, *libs])
    assert crash.core is not None
    gdb = gdb_threads(exe, crash.core)
    for core in (crash.core, minimize(crash.core, tmp_path / "min.core")):
        bt = core_backtrace(core)
        assert assert_matches_gdb(bt, gdb) >= 3
        assert bt.threads[0].frames[0].function_name == "crash_after_loading"


def test_deep_recursion(cores, minimize, tmp_path) -> None:  # type: ignore[no-untyped-def]
    exe = tmp_path / "deep_recursion"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(exe), str(DATA / "deep_recursion.c")], check=True)
    crash = cores.crash("deep_recursion", [exe, "200"])
    assert crash.core is not None
    gdb = gdb_threads(exe, crash.core)
    for core in (crash.core, minimize(crash.core, tmp_path / "min.core")):
        bt = core_backtrace(core)
        assert assert_matches_gdb(bt, gdb) > 200
        names = [f.function_name for f in bt.threads[0].frames]
        assert names[:201] == ["descend"] * 201 and names[201] == "main"


def test_aarch64_qemu_core(programs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An aarch64 core written by qemu-user (no NT_FILE: the program is placed via AT_ENTRY),
    against gdb-multiarch."""
    import resource

    from testlib import core_pattern
    if shutil.which("gdb-multiarch") is None:
        pytest.skip("needs gdb-multiarch")
    exe = programs.crasher_aarch64()

    def unlimited() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    # The host kernel dumps qemu itself too: keep that core in tmp_path as well.
    with core_pattern(f"{tmp_path}/host-core.%P"):
        subprocess.run(["qemu-aarch64", str(exe), "segv", "-t", "2"], cwd=tmp_path,
                       preexec_fn=unlimited, capture_output=True, timeout=60, check=False)
    guest = sorted(tmp_path.glob("qemu_*.core"))
    assert guest, "qemu-aarch64 wrote no guest core"
    bt = core_backtrace(guest[0], executable=str(exe))
    assert assert_matches_gdb(bt, gdb_threads(exe, guest[0], gdb="gdb-multiarch")) >= 12
    assert bt.threads[0].frames[0].function_name == "crash_write_null"
    assert all(t.stop_reason == "outermost" for t in bt.threads)


def test_crash_inside_a_signal_handler(cores, minimize, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Unwinding through glibc's __restore_rt (CFI with the 'S' augmentation and expressions)."""
    exe = tmp_path / "in_handler"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(exe), str(DATA / "in_handler.c")], check=True)
    crash = cores.crash("in_handler", [exe])
    assert crash.core is not None
    gdb = gdb_threads(exe, crash.core)
    for core in (crash.core, minimize(crash.core, tmp_path / "min.core")):
        bt = core_backtrace(core)
        assert assert_matches_gdb(bt, gdb) >= 8
        names = [f.function_name for f in bt.threads[0].frames]
        assert names[:3] == ["handler_fault", "on_usr1", "__restore_rt"]
        assert "send_usr1" in names and "main" in names


def test_sigreturn_recognised_by_its_code_without_cfi(cores, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With libc's CFI withheld, the trampoline is recognised by its instructions (read from the
    file on disk, as the core has no libc text) and the ucontext on the stack is restored."""
    import dataclasses

    from coripper.unwinder.backtrace import _read_notes
    from coripper.unwinder.coremem import open_core_memory
    from coripper.unwinder.modules import ModuleTables, map_modules
    exe = tmp_path / "in_handler"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(exe), str(DATA / "in_handler.c")], check=True)
    crash = cores.crash("in_handler", [exe])      # cached per session: use its own argv[0]
    gdb = [f for f in gdb_threads(crash.argv[0], crash.core)[crash.pid] if f[0] not in (INLINE_FRAME, TAILCALL_FRAME)]
    with open(crash.core, "rb") as f:
        header, phdrs, mem = open_core_memory(f)
        notes = elfcore.parse_core_notes(_read_notes(f, phdrs), header.e_machine)
        modules = map_modules(notes, mem)
        stripped = ModuleMap(
            dataclasses.replace(m, tables=ModuleTables([], m.tables.symbols))
            if "libc.so" in m.path else m for m in modules.modules)
        stack = unwind_thread(X86_64, notes.threads[0].regs, mem, stripped)
        mem.close()
    methods = [fr.method for fr in stack.frames]
    assert [fr.pc for fr in stack.frames[:4]] == [pc for _t, pc, _n in gdb[:4]]
    assert methods[3] == "signal"


# --- hostile input: garbage memory never hangs or raises ------------------------------------

class _BytesStream:
    """A tiny seekable stream over bytes, for CoreMemory."""

    def __init__(self, data: bytes) -> None:
        import io
        self._io = io.BytesIO(data)

    def seek(self, *a: int) -> int:
        return self._io.seek(*a)

    def read(self, n: int = -1) -> bytes:
        return self._io.read(n)

    def tell(self) -> int:
        return self._io.tell()


@pytest.fixture(scope="module")
def real_modules(cores):  # type: ignore[no-untyped-def]
    """Modules (with their real CFI) of the multi-threaded core, and its crash thread's regs."""
    from coripper.unwinder.backtrace import _read_notes
    from coripper.unwinder.coremem import open_core_memory
    from coripper.unwinder.modules import map_modules
    crash = cores.standard("threads")
    with open(crash.core, "rb") as f:
        header, phdrs, mem = open_core_memory(f)
        notes = elfcore.parse_core_notes(_read_notes(f, phdrs), header.e_machine)
        modules = map_modules(notes, mem)
        mem.close()
    return modules, notes.threads


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stack=st.binary(min_size=0, max_size=4096), sp_off=st.integers(0, 4096),
       which=st.integers(0, 9), regs_noise=st.dictionaries(
           st.sampled_from(["rbp", "rbx", "r12", "rsp", "rip"]), st.integers(0, 2**64 - 1)))
def test_garbage_stack_never_raises(real_modules, stack: bytes, sp_off: int, which: int,
                                    regs_noise: dict[str, int]) -> None:
    modules, threads = real_modules
    thread = threads[which % len(threads)]
    base = 0x7FFF00000000
    mem = CoreMemory(_BytesStream(stack), [Segment(base, len(stack), 0, len(stack), True)])  # type: ignore[arg-type]
    regs = dict(thread.regs)
    regs["rsp"] = base + sp_off
    regs.update(regs_noise)
    result = unwind_thread(X86_64, regs, mem, modules)
    assert 1 <= len(result.frames) <= MAX_FRAMES
    assert result.stop_reason in {"outermost", "zero-pc", "unreadable", "loop", "max-frames",
                                  "no-unwind-info"}


def test_no_modules_no_memory_is_one_frame() -> None:
    mem = CoreMemory(_BytesStream(b""), [])  # type: ignore[arg-type]
    result = unwind_thread(X86_64, {"rip": 0x401000, "rsp": 0x1000, "rbp": 0x2000}, mem,
                           ModuleMap([]))
    assert len(result.frames) == 1 and result.stop_reason == "unreadable"
