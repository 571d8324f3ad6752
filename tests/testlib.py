"""Shared test helpers (imported as ``testlib``; tests/conftest.py hands the fixtures to pytest):
real-world fixtures, test programs, and real crashes through the kernel.

Crash helpers change ``/proc/sys/kernel/core_pattern`` only inside :func:`core_pattern`, which
holds a host-wide lock (so parallel test runs do not fight over it) and restores the previous
pattern and ``core_pipe_limit`` in a ``finally`` block, also when the test fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROGRAMS_SRC = Path(__file__).resolve().parent / "programs"
#: Real-world fixtures (read in place, never copied into the project).
FIXTURES = Path(os.environ.get("CRASHKIT_FIXTURES", REPO.parent / "shared" / "fixtures"))

#: A bug that coripper's ``capture_internal_exceptions`` would log and swallow re-raises under
#: the tests, so that it fails one (subprocesses inherit the setting; CRASHKIT_STRICT=0 turns
#: it off to see what a user would).
os.environ.setdefault("CRASHKIT_STRICT", "1")
#: Table widths are each test's choice: pytest-xdist's workers export COLUMNS=80 and LINES=24,
#: and a user's shell may export its own, which would fit ``crashkit list`` to that width.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")
CORE_PIPE_LIMIT = Path("/proc/sys/kernel/core_pipe_limit")
CORE_PATTERN_LOCK = Path("/run/lock/crashkit-tests-core-pattern.lock")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared real-world fixtures directory; skips the test where it is absent (a user's clone)."""
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES} (set CRASHKIT_FIXTURES)")
    return FIXTURES


def _fixtures_snapshot() -> dict[str, tuple[int, int, int]]:
    """(mode, size, mtime_ns) of every entry below the fixtures, without following links."""
    snap: dict[str, tuple[int, int, int]] = {}
    for root, dirs, files in os.walk(FIXTURES):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            snap[os.path.relpath(path, FIXTURES)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return snap


@pytest.fixture(scope="session", autouse=True)
def fixtures_left_untouched() -> Iterator[None]:
    """The suite reads the shared fixtures in place and never writes into them (no .lock, no
    new or changed file), whether a user's copy is writable or read-only."""
    if not FIXTURES.is_dir():
        yield
        return
    before = _fixtures_snapshot()
    yield
    after = _fixtures_snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests wrote into {FIXTURES}: {changed[:20]}"


# --- core_pattern -------------------------------------------------------------------------

def core_pattern_writable() -> bool:
    """True when this process may change the kernel's core_pattern (root, writable procfs)."""
    return os.geteuid() == 0 and os.access(CORE_PATTERN, os.W_OK)


def require_core_pattern() -> None:
    """Skip unless core_pattern is writable. Where it is writable (CI runs as root) tests run."""
    if not core_pattern_writable():
        pytest.skip("needs root and a writable /proc/sys/kernel/core_pattern")


@contextlib.contextmanager
def core_pattern_lock(shared: bool = False) -> Iterator[None]:
    """Hold the host-wide lock that serializes every test that changes core_pattern
    (exclusive), or that lets a process dump core under the host's own pattern (*shared*)."""
    CORE_PATTERN_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(CORE_PATTERN_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def host_core_pattern() -> Iterator[None]:
    """For a block in which a process dies of a core-dumping signal without the test choosing
    the pattern (qemu-user, which dumps itself after writing the guest core): no test in
    another pytest-xdist worker or run may point core_pattern at its own hook meanwhile, or
    that hook would record this crash. Without root nothing changes the pattern: no lock."""
    if not core_pattern_writable():
        yield
        return
    with core_pattern_lock(shared=True):
        yield


@contextlib.contextmanager
def core_pattern(pattern: str, pipe_limit: int | None = None) -> Iterator[None]:
    """Set core_pattern (and optionally core_pipe_limit) for the block, restoring both afterwards."""
    require_core_pattern()
    with core_pattern_lock():
        old_pattern = CORE_PATTERN.read_text().rstrip("\n")
        old_limit = CORE_PIPE_LIMIT.read_text().strip()
        try:
            CORE_PATTERN.write_text(pattern)
            if pipe_limit is not None:
                CORE_PIPE_LIMIT.write_text(str(pipe_limit))
            yield
        finally:
            CORE_PATTERN.write_text(old_pattern)
            CORE_PIPE_LIMIT.write_text(old_limit)


def _unlimited_core() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


# --- test programs ------------------------------------------------------------------------

@dataclass(frozen=True)
class Crash:
    """A process that died through the kernel, and where its core went."""

    argv: tuple[str, ...]
    pid: int
    signal: int
    core: Path | None


class Programs:
    """Builds the C/C++ test programs of tests/programs once per session, in variants."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _build(self, out_name: str, argv: Sequence[str]) -> Path:
        out = self.root / out_name
        if not out.exists():
            subprocess.run([*argv, "-o", str(out)], check=True, capture_output=True, text=True)
        return out

    def crasher(self, variant: str = "pie") -> Path:
        """crasher.c as ``pie`` (default), ``nopie``, ``static`` or ``O0``."""
        flags = {
            "pie": ["-O1", "-fPIE", "-pie"],
            "nopie": ["-O1", "-fno-PIE", "-no-pie"],
            "static": ["-O1", "-static"],
            "O0": ["-O0"],
        }[variant]
        return self._build(f"crasher-{variant}", ["gcc", "-g", "-pthread", *flags,
                                                  str(PROGRAMS_SRC / "crasher.c")])

    def crasher_aarch64(self) -> Path:
        """crasher.c cross-compiled for aarch64 (static, to run under qemu-aarch64)."""
        if not shutil.which("aarch64-linux-gnu-gcc") or not shutil.which("qemu-aarch64"):
            pytest.skip("needs gcc-aarch64-linux-gnu and qemu-user")
        return self._build("crasher-aarch64", ["aarch64-linux-gnu-gcc", "-g", "-O1", "-static",
                                               "-pthread", str(PROGRAMS_SRC / "crasher.c")])

    def throw(self) -> Path:
        """throw.cpp: dies of an uncaught C++ exception."""
        return self._build("throw", ["g++", "-g", "-O1", str(PROGRAMS_SRC / "throw.cpp")])

    def dlopen_many(self, count: int = 200) -> tuple[Path, list[Path]]:
        """dlopen_many.c plus ``count`` generated shared libraries to pass as its arguments."""
        exe = self._build("dlopen_many", ["gcc", "-g", "-O1", str(PROGRAMS_SRC / "dlopen_many.c"),
                                          "-ldl"])
        libdir = self.root / f"libs{count}"
        libs = [libdir / f"libck{i:03d}.so" for i in range(count)]
        if not all(lib.exists() for lib in libs):
            libdir.mkdir(exist_ok=True)
            src = libdir / "lib.c"
            for i, lib in enumerate(libs):
                src.write_text(f"int lib_value_{i} = {i};\nint lib_entry(void) {{ return lib_value_{i}; }}\n")
                subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(src)],
                               check=True, capture_output=True)
        return exe, libs


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Programs:
    """The session's test programs, compiled on first use."""
    return Programs(tmp_path_factory.mktemp("programs"))


def crash_through_kernel(argv: Sequence[str | os.PathLike[str]], core_dir: Path,
                         timeout: float = 120.0, env: dict[str, str] | None = None) -> Crash:
    """Run ``argv`` with RLIMIT_CORE unlimited and let the kernel write its core into ``core_dir``.

    The pattern is ``<core_dir>/core.%P``; the kernel finishes writing the file before the
    parent's wait() returns, so the core is complete when this returns.
    """
    core_dir.mkdir(parents=True, exist_ok=True)
    args = tuple(str(a) for a in argv)
    with core_pattern(f"{core_dir}/core.%P"):
        proc = subprocess.Popen(args, preexec_fn=_unlimited_core, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        rc = proc.wait(timeout=timeout)
    core = core_dir / f"core.{proc.pid}"
    return Crash(args, proc.pid, -rc if rc < 0 else 0, core if core.exists() else None)


def run_until_crash_with_pattern(argv: Sequence[str | os.PathLike[str]], pattern: str,
                                 pipe_limit: int | None = None, timeout: float = 120.0,
                                 env: dict[str, str] | None = None,
                                 preexec: object = None) -> tuple[int, int]:
    """Run ``argv`` under an arbitrary core_pattern (e.g. a ``|hook`` pipe); return (pid, signal)."""
    def _pre() -> None:
        _unlimited_core()
        if callable(preexec):
            preexec()

    with core_pattern(pattern, pipe_limit):
        proc = subprocess.Popen([str(a) for a in argv], preexec_fn=_pre, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
        rc = proc.wait(timeout=timeout)
    return proc.pid, (-rc if rc < 0 else 0)


def crash_many_with_pattern(argvs: Sequence[Sequence[str | os.PathLike[str]]], pattern: str,
                            pipe_limit: int | None = None, timeout: float = 300.0) -> list[int]:
    """Start every argv of *argvs* at once under *pattern* (a storm); wait for all of them to
    die; return the signals they died of (0: exited)."""
    with core_pattern(pattern, pipe_limit):
        procs = [subprocess.Popen([str(a) for a in argv], preexec_fn=_unlimited_core,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for argv in argvs]
        codes = [proc.wait(timeout=timeout) for proc in procs]
    return [-rc if rc < 0 else 0 for rc in codes]


def gcore(argv: Sequence[str | os.PathLike[str]], out: Path, timeout: float = 60.0) -> Path:
    """Start ``argv`` (a program that prints ``ready`` then blocks), dump it with gdb's gcore, kill it."""
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"ready" in line, f"{argv[0]} did not become ready"
        subprocess.run(["gcore", "-o", str(out), str(proc.pid)], check=True, capture_output=True,
                       timeout=timeout)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return out.with_name(f"{out.name}.{proc.pid}")


class CoreCache:
    """Cores of the test programs, made once per session through the kernel."""

    def __init__(self, programs: Programs, root: Path) -> None:
        self.programs = programs
        self.root = root
        self._cores: dict[tuple[str, ...], Crash] = {}

    def crash(self, name: str, argv: Sequence[str | os.PathLike[str]]) -> Crash:
        """Crash ``argv`` once per session under the key ``name``; return the cached result."""
        key = (name,)
        if key not in self._cores:
            crash = crash_through_kernel(argv, self.root / name)
            if crash.core is None:
                raise AssertionError(f"kernel wrote no core for {name} ({argv})")
            self._cores[key] = crash
        return self._cores[key]

    def standard(self, kind: str) -> Crash:
        """One of the standard crashes: segv, threads, abort, recurse, overflow, static, nopie, throw, fpe."""
        p = self.programs
        table: dict[str, list[str | os.PathLike[str]]] = {
            "segv": [p.crasher(), "segv"],
            "threads": [p.crasher(), "segv", "-t", "9"],
            "abort": [p.crasher(), "abort", "-t", "2"],
            "recurse": [p.crasher(), "recurse", "-d", "200"],
            "overflow": [p.crasher(), "overflow"],
            "static": [p.crasher("static"), "segv", "-t", "2"],
            "nopie": [p.crasher("nopie"), "segv"],
            "fpe": [p.crasher(), "fpe"],
            "throw": [p.throw()],
        }
        return self.crash(kind, table[kind])


@pytest.fixture(scope="session")
def cores(programs: Programs, tmp_path_factory: pytest.TempPathFactory) -> CoreCache:
    """Real cores of the test programs, written by the kernel (skips where core_pattern is read-only)."""
    require_core_pattern()
    return CoreCache(programs, tmp_path_factory.mktemp("cores"))


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return bool(value)
        time.sleep(interval)


def python_exe() -> str:
    """The interpreter running the tests (for subprocess CLI tests)."""
    return sys.executable


@pytest.fixture(scope="module")
def minimize() -> Callable[[Path, Path], Path]:
    """Minimize a core file (coripper's file mode) into ``out``; returns ``out``."""
    from coripper.minimizer.stream import minimize_file

    def run(core: Path, out: Path) -> Path:
        with open(core, "rb") as src, open(out, "wb") as dst:
            minimize_file(src, dst)
        return out
    return run
