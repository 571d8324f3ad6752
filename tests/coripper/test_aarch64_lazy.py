"""aarch64 threads caught in lazy binding, under ``qemu-aarch64 -L <sysroot>``, our unwinder
against gdb-multiarch, frame by frame, for every thread.

tests/programs/lazy_plt.c runs without ``LD_BIND_NOW``. qemu's gdbstub (``-g`` on a unix
socket, so nothing listens on the network) lets gdb-multiarch stop the worker at its first call
of ``getppid`` (from ``call_small``, a 16-byte frame) or ``getpid`` (from ``call_big``, 64 bytes),
single-step it to one of the points below and send it SIGSEGV; qemu then writes the guest core
with the worker as the crash thread at that point and main parked in ``pthread_barrier_wait``.
Points (the names of the driver below): in the ``name@plt`` stub (``stub``, ``stub+12``), in
PLT0 before and after its ``stp x16, x30, [sp, #-16]!`` (``plt0``, ``plt0+4``, ``plt0+16``), in
ld.so's ``_dl_runtime_resolve`` (entry, after the ``stp x8, x9, [sp, #-208]!``, at the ``bl``
to ``_dl_fixup``, after it returns, after each of its two final ``ldp``), in ``_dl_fixup``
(entry, after its prologue), in the first function ``_dl_fixup`` calls, and in the bound
function itself.

The oracle is gdb on the minimized core (it cannot read qemu's original core properly, see
tests/coripper/test_aarch64_dynamic.py); our frames on both cores must equal its frames. gdb's
frames are the resolver CFI's, which do not count PLT0's 16-byte push (docs/backtrace.md): from
``plt0+4`` to the resolver's ``br x16`` the caller is shown twice, and for ``call_big`` the frame
after is read from its locals (``pad[5]``, 0x1105), where gdb (13.1 here) stops; at the
resolver's entry (``thread apply all bt``, the worker)::

    #0  0x00000055028326dc in ?? () from /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1
    #1  0x0000005500000934 in call_big () at .../tests/programs/lazy_plt.c:24
    #2  0x0000005500000934 in call_big () at .../tests/programs/lazy_plt.c:24
    #3  0x0000000000001105 in ?? ()
    Backtrace stopped: previous frame identical to this frame (corrupt stack?)

This is what the process's CFI says, not a gdb bug; the test pins it so that a change in
either side is noticed. ld.so and libc have no symbols for aarch64 here (no libc6-dbg), so
their frames are ``??`` in both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from coripper.unwinder.backtrace import CoreBacktrace, core_backtrace
from test_aarch64_dynamic import ENV, SYSROOT, _unlimited, gdb_frames
from test_unwind import INLINE_FRAME, TAILCALL_FRAME, _readelf_addresses, same_function
from testlib import host_core_pattern

pytestmark = pytest.mark.slow          # programs run under qemu-user

PROGRAM = Path(__file__).resolve().parents[1] / "programs" / "lazy_plt.c"
# gdb Python: stop the worker at LAZY_STOP ("caller:point"), print the pc, send SIGSEGV.
# "Transfers" are instructions after which the pc is not the next one: the bl to the stub, the
# stub's br to PLT0, PLT0's br to the resolver, the resolver's bl to _dl_fixup.
DRIVER = r'''
import os
import gdb

MASK = (1 << 64) - 1
caller, point = os.environ["LAZY_STOP"].split(":")
for cmd in ("set pagination off", "set confirm off",
            "target remote " + os.environ["LAZY_SOCKET"], "break " + caller, "continue",
            "delete"):
    gdb.execute(cmd, to_string=True)
transfers = []


def pc():
    return int(gdb.parse_and_eval("$pc")) & MASK


def insn():
    return gdb.selected_frame().architecture().disassemble(pc())[0]["asm"]


def step(n=1):
    for _ in range(n):
        before = pc()
        gdb.execute("stepi", to_string=True)
        if pc() != (before + 4) & MASK:
            transfers.append(before)


def until_transfer(k):
    while len(transfers) < k:
        step()


def until_bl():
    while not insn().startswith("bl\t"):
        step()


anchor, _, extra = point.partition("+")
if anchor in ("stub", "plt0", "resolve", "fixup"):
    until_transfer(["stub", "plt0", "resolve", "fixup"].index(anchor) + 1)
elif anchor == "resolve-call":
    until_transfer(3)
    until_bl()
elif anchor == "callee":
    until_transfer(4)
    until_bl()
    step()
elif anchor == "resolved":
    until_transfer(3)
    until_bl()
    gdb.execute("tbreak *%d thread %d" % (pc() + 4, gdb.selected_thread().num), to_string=True)
    gdb.execute("continue", to_string=True)
else:
    raise gdb.GdbError("unknown stop point " + point)
step(int(extra or "0") // 4)
print("LAZY-STOP 0x%x %s" % (pc(), insn()))
gdb.execute("signal SIGSEGV")
'''
POINTS = ["stub", "stub+12", "plt0", "plt0+4", "plt0+16", "resolve", "resolve+8",
          "resolve-call", "fixup", "fixup+8", "callee", "resolved", "resolved+40",
          "resolved+44", "resolved+48"]
# between PLT0's push and the resolver's br x16 (resolved+44), the resolver CFI's CFA is 16
# bytes below the caller's sp; resolved+48 is the first instruction of the bound function
PUSHED = set(POINTS[POINTS.index("plt0+4"):POINTS.index("resolved+44") + 1])
STOPS = [f"{caller}:{point}" for caller in ("call_small", "call_big") for point in POINTS]
LDSO = "ld-linux-aarch64.so.1"


@dataclass(frozen=True)
class Stopped:
    """One guest core of the worker stopped at a point, and gdb's frames on it."""

    stop: str
    pc: int                       # where the driver stopped the worker
    core: Path                    # qemu's core
    small: Path                   # minimized
    gdb: dict[int, list]          # type: ignore[type-arg]


def _crash_at(exe: Path, stop: str, root: Path) -> Stopped:
    d = root / stop.replace(":", "_").replace("+", "_")
    d.mkdir()
    with tempfile.TemporaryDirectory(prefix="lazy") as short, host_core_pattern():   # sun_path: 108 bytes
        return _crash_in(exe, stop, d, Path(short) / "gdb.sock")


def _crash_in(exe: Path, stop: str, d: Path, sock: Path) -> Stopped:
    (d / "driver.py").write_text(DRIVER)
    qemu = subprocess.Popen(["qemu-aarch64", "-g", str(sock), "-L", SYSROOT, str(exe)], cwd=d,
                            preexec_fn=_unlimited, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        run = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-iex", f"set sysroot {SYSROOT}",
                              "-x", str(d / "driver.py"), str(exe)], capture_output=True,
                             text=True, timeout=120, env={**ENV, "LAZY_STOP": stop,
                                                          "LAZY_SOCKET": str(sock)})
        assert qemu.wait(timeout=60) != 0
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    m = re.search(r"^LAZY-STOP (0x[0-9a-f]+)", run.stdout, re.M)
    assert m, f"{stop}: the driver did not stop\n{run.stdout}\n{run.stderr}"
    cores = sorted(d.glob("qemu_*.core"))
    assert len(cores) == 1, f"{stop}: qemu wrote no core\n{run.stdout}"
    small = d / "small.core"
    r = subprocess.run([sys.executable, "-m", "coripper.cli", str(cores[0]), "-o", str(small)],
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return Stopped(stop, int(m.group(1), 16), cores[0], small, gdb_frames(exe, small))


@pytest.fixture(scope="module")
def lazy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Stopped]]:
    for tool in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "gdb-multiarch"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool}")
    if not os.path.isfile(f"{SYSROOT}/lib/{LDSO}"):
        pytest.skip(f"no aarch64 sysroot at {SYSROOT}")
    root = tmp_path_factory.mktemp("a64lazy")
    exe = root / "lazy_plt"
    subprocess.run(["aarch64-linux-gnu-gcc", "-g", "-O1", "-pthread", "-o", str(exe),
                    str(PROGRAM)], check=True, capture_output=True)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        done = list(pool.map(lambda stop: _crash_at(exe, stop, root), STOPS))
    return exe, {s.stop: s for s in done}


def _assert_equal(bt: CoreBacktrace, gdb: dict[int, list]) -> None:  # type: ignore[type-arg]
    """test_unwind's rule (pc, kind, same function per frame, every thread), with aliases
    looked up in the sysroot's files (our file names are the guest's paths)."""
    assert sorted(t.tid or 0 for t in bt.threads) == sorted(gdb)
    for thread in bt.threads:
        assert thread.tid is not None
        got = [(hex(f.address), f.function_name, f.inlined, f.tail_call)
               for f in thread.all_frames()]
        want = [(hex(pc), name, ftype == INLINE_FRAME, ftype == TAILCALL_FRAME)
                for ftype, pc, name in gdb[thread.tid]]
        assert len(got) == len(want), f"thread {thread.tid}:\n ours {got}\n gdb  {want}"
        for frame, (g, w) in zip(thread.all_frames(), zip(got, want, strict=True), strict=True):
            assert (g[0], g[2], g[3]) == (w[0], w[2], w[3]), f"ours {got}\n gdb  {want}"
            assert same_function(w[1], g[1], None, None) or \
                _aliases(frame.file_name, w[1], g[1]), f"ours {got}\n gdb  {want}"


def _aliases(file_name: str | None, a: str | None, b: str | None) -> bool:
    """``a`` and ``b`` are symbols (version suffix dropped) at one address of the guest file."""
    if not (file_name and a and b):
        return False
    table: dict[str, set[int]] = {}
    for name, addrs in _readelf_addresses(SYSROOT + file_name).items():
        table.setdefault(name.split("@")[0], set()).update(addrs)
    return bool(table.get(a, set()) & table.get(b, set()))


@pytest.mark.parametrize("stop", STOPS)
def test_unwinder_equals_gdb(lazy: tuple[Path, dict[str, Stopped]], stop: str) -> None:
    exe, stopped = lazy
    s = stopped[stop]
    for core in (s.small, s.core):
        bt = core_backtrace(str(core), rootdir=SYSROOT, executable=str(exe))
        _assert_equal(bt, s.gdb)
        crash = bt.threads[0]
        assert crash.crash_thread and crash.frames[0].address == s.pc
        in_ldso = [f for f in crash.frames if f.file_name and f.file_name.endswith("/" + LDSO)]
        point = stop.split(":")[1]
        if point.startswith(("resolve", "fixup", "callee")) and point != "resolved+48":
            assert in_ldso and crash.frames[0] is in_ldso[0], [f.file_name for f in crash.frames]
        else:
            assert not in_ldso


@pytest.mark.parametrize("stop", STOPS)
def test_gdb_frames_follow_the_resolver_cfi(lazy: tuple[Path, dict[str, Stopped]],
                                             stop: str) -> None:
    """What gdb shows, from the source and the CFI (the module docstring): after the PLT or
    ld.so frames comes the caller; twice while PLT0's push is on the stack, and then either the
    worker (16-byte frame: the second copy's CFA is right) or call_big's ``pad[5]``."""
    _exe, stopped = lazy
    s = stopped[stop]
    caller, point = stop.split(":")
    crash = [f for f in s.gdb.values() if f[0][1] == s.pc]
    assert len(crash) == 1
    frames = [(pc, name) for _t, pc, name in crash[0]]
    first = next(i for i, (_pc, name) in enumerate(frames) if name == caller)
    assert all(name is None or name.endswith("@plt") or name in ("getpid", "getppid")
               for _pc, name in frames[:first]), frames
    after = [name for _pc, name in frames[first:]]
    if point not in PUSHED:
        assert after[:2] == [caller, "worker"], frames
    elif caller == "call_small":
        assert after[:3] == [caller, caller, "worker"], frames
    else:
        assert after[:2] == [caller, caller] and frames[first + 2][0] == 0x1105, frames
    main = [f for f in s.gdb.values() if f is not crash[0]]
    assert len(main) == 1 and "main" in [name for _t, _pc, name in main[0]]
