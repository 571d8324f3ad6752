"""The unwinder against gdb on real, installed Debian programs (not our own test programs).

Each case runs a stock binary from /usr/bin, lets it block (or crash by itself) where real
programs sit, and has the kernel write its core (a signal sent from here, or the program's own
SIGSEGV / abort()). gdb's ``thread apply all bt`` on that core is the oracle; our backtrace of
the same core, and of the core minimized by coripper, must give the same frames.

Comparison rule, per thread (the same LWPs on both sides), frame by frame over everything gdb
prints (inline and tail-call frames included, our ``CoreThread.all_frames()``):

* the frame count is equal;
* pc and kind (inline / tail call / physical) equal gdb's, read through gdb's Python API
  (``gdb_threads`` of tests/coripper/test_unwind.py);
* the name is the name gdb's ``bt`` prints for the frame (with ``set print frame-arguments
  none``), and the two denote the same function when: they are equal; or gdb's DWARF name of a
  C++ function is ours without its parameter list; or both are ELF symbols at one address
  (``raise`` / ``__GI_raise``) (``same_function`` of test_unwind.py); or — physical frames
  only, since we name them with the ELF symbol, as elfutils and satyr do — ours is a GCC clone
  of gdb's DWARF function (``__new_sem_wait_slow64.constprop.0`` for ``__new_sem_wait_slow64``).
* a signal trampoline's frame, which ``bt`` prints as ``<signal handler called>``, is
  compared with the name gdb's Python API gives it (``__restore_rt``);
* ``??``: gdb prints ``??`` exactly when we have no name (both directions; neither side may
  guess a name the other has not), and when gdb adds ``from LIB`` (a frame in a shared object
  without debug info), our frame's module is that file.

The last tests check the ``.gnu_debuglink`` lookup (coripper/unwinder/modules.py) the same way: a
stripped program whose DWARF is only in the debug file its debuglink names (in its directory,
in ``.debug/`` there, or under ``<rootdir>/usr/lib/debug/<dir>``) gets gdb's frames, inline
frames included; a debug file with the right name but another CRC-32 is refused by both.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_unwind import (  # tests/coripper is on sys.path
    INLINE_FRAME, TAILCALL_FRAME, assert_matches_gdb, gdb_threads, same_function)

from testlib import core_pattern, crash_through_kernel
from coripper.unwinder import inline, modules
from coripper.unwinder.backtrace import CoreBacktrace, CoreFrame, core_backtrace

pytestmark = [pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb"),
              pytest.mark.slow]

PYTHON = "/usr/bin/python3"
_CLONE_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|localalias)(\.\d+)?)+$")
_BT_FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(.*?) \((?:\.\.\.)?\)"
                       r"(?: at \S+)?(?: from (\S+))?$")
_BT_SIGNAL = re.compile(r"^#(\d+)\s+<signal handler called>$")
_BT_THREAD = re.compile(r"^Thread \d+ \(.*LWP (\d+)\)\)?:$")


# --- gdb's `thread apply all bt` ----------------------------------------------------------------

def gdb_bt(exe: str, core: Path) -> dict[int, list[tuple[str, str | None]]]:
    """{lwp: [(name, from-library or None), ...]} as ``thread apply all bt`` prints them."""
    out = subprocess.run(
        ["gdb", "-batch", "-nx", "-ex", "set backtrace past-main on", "-ex",
         "set backtrace past-entry on", "-ex", "set print frame-arguments presence", "-ex",
         "thread apply all bt", exe, str(core)],
        capture_output=True, text=True, timeout=120, check=False).stdout
    threads: dict[int, list[tuple[str, str | None]]] = {}
    current: list[tuple[str, str | None]] | None = None
    for line in out.splitlines():
        head = _BT_THREAD.match(line)
        if head:
            current = threads.setdefault(int(head.group(1)), [])
            continue
        frame = _BT_FRAME.match(line) or _BT_SIGNAL.match(line)
        if frame and current is not None:
            assert int(frame.group(1)) == len(current), f"unparsed bt line before: {line}"
            current.append((frame.group(2), frame.group(3)) if frame.re is _BT_FRAME
                           else (SIGNAL_FRAME, None))
    assert threads, f"gdb printed no backtrace for {core}:\n{out}"
    return threads


#: what ``bt`` prints for a signal trampoline's frame instead of its name
SIGNAL_FRAME = "<signal handler called>"


def _kind(frame: CoreFrame) -> str:
    return "inline" if frame.inlined else "tail-call" if frame.tail_call else "physical"


def _gdb_kind(ftype: int) -> str:
    return {INLINE_FRAME: "inline", TAILCALL_FRAME: "tail-call"}.get(ftype, "physical")


def _same_name(gdb_name: str, frame: CoreFrame) -> bool:
    ours = frame.function_name
    if gdb_name == "??" or ours is None:
        return gdb_name == "??" and ours is None
    if same_function(gdb_name, ours, frame.file_name, frame.build_id):
        return True
    return _kind(frame) == "physical" and _CLONE_SUFFIX.sub("", ours) == gdb_name != ours


def assert_same_as_gdb(bt: CoreBacktrace, api: dict[int, list],  # type: ignore[type-arg]
                       text: dict[int, list[tuple[str, str | None]]]) -> int:
    """Assert the module docstring's rule for every thread; return the frames compared."""
    assert sorted(t.tid for t in bt.threads) == sorted(api) == sorted(text)
    compared = 0
    for thread in bt.threads:
        ours = thread.all_frames()
        got = [(hex(f.address), f.function_name, _kind(f)) for f in ours]
        assert len(ours) == len(api[thread.tid]) == len(text[thread.tid]), \
            f"thread {thread.tid}:\n ours {got}\n gdb  {api[thread.tid]}\n bt   {text[thread.tid]}"
        want = [(hex(pc), (api_name or "??") if name == SIGNAL_FRAME else name, _gdb_kind(ftype), lib)
                for (ftype, pc, api_name), (name, lib) in zip(api[thread.tid], text[thread.tid],
                                                               strict=True)]
        where = f"thread {thread.tid}:\n ours {got}\n gdb  {want}"
        for frame, (pc, name, kind, lib) in zip(ours, want, strict=True):
            assert (hex(frame.address), _kind(frame)) == (pc, kind), where
            assert _same_name(name, frame), f"{frame.function_name!r} vs gdb {name!r}; {where}"
            if lib is not None:
                assert frame.file_name is not None, where
                assert os.path.realpath(frame.file_name) == os.path.realpath(lib), where
            compared += 1
    return compared


# --- real programs, blocked where they wait -----------------------------------------------------

def _unlimited_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _all_sleeping(pid: int, exe: str, threads: int) -> bool:
    """``pid`` runs ``exe`` (exec done) with at least ``threads`` threads, all asleep in a
    system call."""
    try:
        if os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(exe):
            return False
        tids = os.listdir(f"/proc/{pid}/task")
        if len(tids) < threads:
            return False
        for tid in tids:
            state = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "S" or Path(f"/proc/{pid}/task/{tid}/syscall").read_text().startswith("running"):
                return False
    except OSError:
        return False
    return True


def kill_when_blocked(argv: Sequence[str], core_dir: Path, sig: int, threads: int = 1) -> Path:
    """Run ``argv`` (stdin an open, empty pipe), wait until every thread sleeps in a system call
    (twice, 0.2 s apart), send ``sig`` and return the core the kernel wrote."""
    core_dir.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    try:
        with core_pattern(f"{core_dir}/core.%P"):
            proc = subprocess.Popen(list(argv), stdin=read_end, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, preexec_fn=_unlimited_core)
            try:
                deadline = time.monotonic() + 30
                settled = 0
                while settled < 2:              # seen asleep twice, 0.2 s apart
                    assert time.monotonic() < deadline, f"{argv} never blocked"
                    settled = settled + 1 if _all_sleeping(proc.pid, argv[0], threads) else 0
                    time.sleep(0.2 if settled else 0.05)
                os.kill(proc.pid, sig)
                assert proc.wait(timeout=60) == -sig
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    finally:
        os.close(read_end)
        os.close(write_end)
    core = core_dir / f"core.{proc.pid}"
    assert core.exists(), f"the kernel wrote no core for {argv}"
    return core


_THREADS = ("import threading, time, select\n"
            "for _ in range(3):\n"
            "    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
            "select.select([], [], [], 100)\n")

#: name: (argv, signal to send or None when the program crashes by itself, threads to wait for)
CASES: dict[str, tuple[list[str], int | None, int]] = {
    # coreutils, blocked in clock_nanosleep / read (libc with libc6-dbg: inline frames, aliases)
    "sleep": (["/usr/bin/sleep", "100"], signal.SIGSEGV, 1),
    "cat": (["/usr/bin/cat"], signal.SIGABRT, 1),
    # shells waiting for input
    "bash": (["/usr/bin/bash", "-c", "read x"], signal.SIGSEGV, 1),
    "dash": (["/usr/bin/dash", "-c", "read x"], signal.SIGQUIT, 1),
    # the interpreter: stripped static functions (??), 4 threads in select / clock_nanosleep
    "python-threads": ([PYTHON, "-c", _THREADS], signal.SIGSEGV, 4),
    # a real SIGSEGV in libc's memcpy called from libffi's assembly through ctypes
    "python-ctypes": ([PYTHON, "-c", "import ctypes; ctypes.string_at(0)"], None, 1),
    # a real abort(): raise, the pthread_kill tail call
    "python-abort": ([PYTHON, "-c", "import os; os.abort()"], None, 1),
    # gdb itself (C++, 3 threads) waiting on stdin: its SIGSEGV handler re-raises through a
    # signal frame; it also mmaps the libraries it reads, beside the loaded copies
    "gdb": (["/usr/bin/gdb", "-nx", "-q"], signal.SIGSEGV, 3),
    # node: C++, libuv worker threads on condition variables and semaphores (GCC clones)
    "node": (["/usr/bin/node", "-e", "setTimeout(() => {}, 100000)"], signal.SIGSEGV, 7),
}


@pytest.mark.parametrize("name", list(CASES))
def test_system_program_matches_gdb(name: str, tmp_path: Path, minimize) -> None:  # type: ignore[no-untyped-def]
    argv, sig, threads = CASES[name]
    if not os.access(argv[0], os.X_OK):
        pytest.skip(f"{argv[0]} is not installed")
    if sig is None:
        crash = crash_through_kernel(argv, tmp_path / "cores")
        assert crash.core is not None and crash.signal in (signal.SIGSEGV, signal.SIGABRT)
        core = crash.core
    else:
        core = kill_when_blocked(argv, tmp_path / "cores", sig, threads)
    api, text = gdb_threads(argv[0], core), gdb_bt(argv[0], core)
    original = core_backtrace(core)
    assert len(original.threads) >= threads
    assert assert_same_as_gdb(original, api, text) >= 5
    assert all(t.stop_reason == "outermost" for t in original.threads)
    minimized = core_backtrace(minimize(core, tmp_path / "min.core"))
    assert assert_same_as_gdb(minimized, api, text) >= 5
    assert minimized.to_json() == original.to_json()


# --- separate debug files found through .gnu_debuglink ----------------------------------------

INLINE_SRC = Path(__file__).resolve().parent / "data" / "inline_crash.c"


def _stripped_with_debuglink(tmp: Path, where: str) -> tuple[Path, Path]:
    """inline_crash.c built with DWARF, its DWARF moved to ``inline_crash.debug`` (in the
    program's directory, or in ``.debug/`` there), the program stripped and linked to it
    (``objcopy --add-gnu-debuglink``). Returns (program, debug file)."""
    full, prog = tmp / "full" / "inline_crash", tmp / "bin" / "inline_crash"
    full.parent.mkdir()
    prog.parent.mkdir()
    subprocess.run(["gcc", "-g", "-O2", "-o", str(full), str(INLINE_SRC)], check=True)
    debug = prog.parent / ("." + "debug" if where == ".debug" else "") / "inline_crash.debug"
    debug.parent.mkdir(exist_ok=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(full), str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-all", f"--add-gnu-debuglink={debug}", str(full),
                    str(prog)], check=True)
    return prog, debug


def _fresh_backtrace(core: Path, rootdir: str = "/") -> CoreBacktrace:
    modules.clear_cache()
    inline.clear_cache()
    return core_backtrace(core, rootdir=rootdir)


@pytest.mark.parametrize("where", ["same-dir", ".debug", "crc-mismatch"])
def test_gnu_debuglink_matches_gdb(tmp_path: Path, where: str) -> None:
    prog, debug = _stripped_with_debuglink(tmp_path, where)
    if where == "crc-mismatch":
        # the same name, the DWARF of another build (-O1): its CRC is not the linked one
        other = tmp_path / "other"
        subprocess.run(["gcc", "-g", "-O1", "-o", str(other), str(INLINE_SRC)], check=True)
        subprocess.run(["objcopy", "--only-keep-debug", str(other), str(debug)], check=True)
    crash = crash_through_kernel([prog, "inline"], tmp_path / "cores")
    assert crash.core is not None
    bt = _fresh_backtrace(crash.core)
    assert assert_matches_gdb(bt, gdb_threads(prog, crash.core)) >= 5
    names = [f.function_name for f in bt.threads[0].all_frames()[:5]]
    if where == "crc-mismatch":
        assert "level3" not in names            # neither gdb nor we use that file
    else:
        assert names == ["level3", "level2", "level1", "crash_here", "main"]


def test_gnu_debuglink_under_rootdir_debug_directory(tmp_path: Path) -> None:
    """``<rootdir>/usr/lib/debug/<directory of the program>/<debuglink>``: the frames are those
    gdb shows when the debug file sits beside the program."""
    prog, debug = _stripped_with_debuglink(tmp_path, "same-dir")
    crash = crash_through_kernel([prog, "inline"], tmp_path / "cores")
    assert crash.core is not None
    gdb = gdb_threads(prog, crash.core)[crash.pid][:5]
    root = tmp_path / "root"
    in_root = root / prog.relative_to("/")
    in_root.parent.mkdir(parents=True)
    shutil.copy(prog, in_root)
    moved = root / "usr/lib/debug" / prog.parent.relative_to("/") / debug.name
    moved.parent.mkdir(parents=True)
    shutil.move(debug, moved)
    ours = _fresh_backtrace(crash.core, str(root)).threads[0].all_frames()[:5]
    assert [(f.address, f.inlined, f.function_name) for f in ours] == \
        [(pc, ftype == INLINE_FRAME, name) for ftype, pc, name in gdb]
    moved.unlink()                              # and without it: no DWARF, no inline frames
    assert not any(f.inlined for f in _fresh_backtrace(crash.core, str(root)).threads[0].all_frames())
