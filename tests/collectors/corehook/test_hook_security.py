"""Security properties of the crash hook against a hostile local user (or container root):
the unwinder child's privileges, limits and descriptors, the parent's wall-clock bound,
the post-processing run limit, the self-crash marker, the log file and one-line elements.

The unwinder child is observed from the outside through /proc while it blocks reading a
core from a pipe we hold open (a real child of the real code, nothing mocked).
"""

from __future__ import annotations

import os
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from collectors.corehook import capture, hooklog, postprocess
from collectors.corehook.args import HookArgs
from collectors.corehook.container import ContainerInfo
from collectors.corehook.ccpp_elements import basic_elements
from collectors.corehook.procsnap import ProcSnapshot

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (privilege drop)")


def _children() -> list[int]:
    me = str(os.getpid())
    found = []
    for task in os.listdir(f"/proc/{me}/task"):
        try:
            found += [int(p) for p in Path(f"/proc/{me}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def write_many_thread_core(path: Path, threads: int = 150_000) -> None:
    """An x86-64 ELF core holding nothing but *threads* empty NT_PRSTATUS notes (~50 MB):
    what a process with that many threads looks like to the unwinder, which then works for
    a few seconds, long enough to be looked at from outside."""
    note = struct.pack("<III", 5, 336, 1) + b"CORE\0\0\0\0" + bytes(336)
    notes = note * threads
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 4, 62, 1, 0, 64,
                       0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(notes), 0, 1)
    path.write_bytes(ehdr + phdr + notes)


class Unwinding:
    """compute_elements() in a thread on a slow-to-unwind core; its child is looked at from here."""

    def __init__(self, core: Path, uid: int, gid: int, time_limit: int) -> None:
        self.core_fd = os.open(core, os.O_RDONLY)
        self.result: dict[str, str] | None = None
        self.thread = threading.Thread(target=self._run, args=(uid, gid, time_limit), daemon=True)
        self.before = set(_children())
        self.thread.start()
        self.child = self._find_child()

    def _run(self, uid: int, gid: int, time_limit: int) -> None:
        self.result = postprocess.compute_elements(self.core_fd, None, "/", uid, gid, time_limit)

    def _find_child(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            new = set(_children()) - self.before
            if new:
                return new.pop()
            time.sleep(0.005)
        raise AssertionError("the unwinder child did not start")

    def wait_for_uid(self, uid: int) -> dict[str, str]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = _status(self.child)
            if st["Uid"].split() == [str(uid)] * 4:
                return st
            time.sleep(0.005)
        raise AssertionError(f"child never ran as uid {uid}")

    def close(self) -> None:
        self.thread.join(60)
        if self.thread.is_alive():  # the bug under test: don't leave the child behind
            os.kill(self.child, signal.SIGKILL)
            self.thread.join(30)
        os.close(self.core_fd)


@pytest.fixture(scope="module")
def slow_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("core") / "threads.core"
    write_many_thread_core(path)
    return path


@pytest.fixture
def marker_fd(tmp_path: Path) -> Iterator[int]:
    """A descriptor of the (root) parent that the unprivileged child must not inherit."""
    fd = os.open(tmp_path / "secret", os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    os.close(fd)


@needs_root
def test_unwinder_child_drops_everything_and_is_capped(slow_core: Path, marker_fd: int) -> None:
    run = Unwinding(slow_core, 65534, 65534, time_limit=30)
    try:
        st = run.wait_for_uid(65534)
        assert st["Gid"].split() == ["65534"] * 4
        assert st["Groups"] == ""
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
        fds = {int(n) for n in os.listdir(f"/proc/{run.child}/fd")}
        # Only the core, the root directory and the result pipe, and the child's own /proc
        # once the unwind has begun.
        assert marker_fd not in fds
        assert run.core_fd in fds and len(fds - {0, 1, 2}) in (3, 4), fds
        limits = Path(f"/proc/{run.child}/limits").read_text()
        line = next(x for x in limits.splitlines() if x.startswith("Max address space"))
        assert line.split()[3] == str(postprocess.UNWIND_MEMORY_LIMIT)
        line = next(x for x in limits.splitlines() if x.startswith("Max cpu time"))
        assert line.split()[3] == "30"
    finally:
        run.close()


@pytest.mark.slow
@needs_root
def test_parent_kills_an_unwinder_the_user_stopped(slow_core: Path) -> None:
    # The crashing user may SIGSTOP the child (same uid): its SIGALRM then never acts, and a
    # parent blocked in read() would hold the problem directory's lock forever.
    run = Unwinding(slow_core, 65534, 65534, time_limit=2)
    try:
        run.wait_for_uid(65534)
        os.kill(run.child, signal.SIGSTOP)
        run.thread.join(20)  # time limit 2 s + KILL_GRACE 5 s, with room
        assert not run.thread.is_alive(), "parent still waiting for a stopped child"
        assert run.result == {}
    finally:
        run.close()


def test_unwind_ids_never_root_for_foreign_files() -> None:
    assert postprocess.unwind_ids(0, 0, "/") == (0, 0)
    assert postprocess.unwind_ids(0, 0, "/var/lib/machines/c1") == (capture.NOBODY, capture.NOBODY)
    assert postprocess.unwind_ids(1000, 1000, "/home/u/.local/share/containers/x/merged") == (1000, 1000)


def test_run_limit_queues_then_refuses(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    first = postprocess.acquire_turn(str(spool), running=1, waiting=1, wait=0)
    assert first is not None
    try:
        start = time.monotonic()
        assert postprocess.acquire_turn(str(spool), running=1, waiting=1, wait=0.5) is None
        assert time.monotonic() - start >= 0.4  # it queued and waited
        # While one run waits, a third is refused at once.
        queued = os.open(spool / ".crashkit-hook" / "postprocess-wait.0", os.O_RDWR)
        import fcntl

        fcntl.flock(queued, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            start = time.monotonic()
            assert postprocess.acquire_turn(str(spool), running=1, waiting=1, wait=5) is None
            assert time.monotonic() - start < 1
        finally:
            os.close(queued)
    finally:
        os.close(first)
    again = postprocess.acquire_turn(str(spool), running=1, waiting=1, wait=0)
    assert again is not None
    os.close(again)


def _snapshot(exe: str, environ: bytes, cmdline: bytes = b"x\0") -> ProcSnapshot:
    snap = ProcSnapshot(1234, exe=exe)
    snap.files = {"environ": environ, "cmdline": cmdline}
    return snap


def test_marker_variable_does_not_hide_other_programs_crashes() -> None:
    env = b"PATH=/bin\0CRASHKIT_HOOK_CHILD=1\0"
    # A user running a setuid program with the marker must not keep its crashes unrecorded.
    assert not capture.is_own_process(_snapshot("/usr/bin/sudo", env))
    assert capture.is_own_process(_snapshot("/usr/bin/python3.11", env))
    assert capture.is_own_process(_snapshot("/usr/bin/python3.11", b"",
                                            b"python3\0-m\0collectors.corehook.hook\0"))


def test_log_line_has_no_control_characters() -> None:
    line = hooklog.clean_line("process 1 (\x1b]0;owned\x07evil\nname\r) killed")
    assert line == "process 1 (?]0;owned?evil name ) killed"
    assert line.isprintable()


def test_log_file_fifo_does_not_hang_the_hook(tmp_path: Path) -> None:
    fifo = tmp_path / "hook.log"
    os.mkfifo(fifo)
    code = ("import sys; from collectors.corehook import hooklog; "
            "hooklog.setup(sys.argv[1], use_syslog=False); hooklog.log('x')")
    done = subprocess.run([sys.executable, "-c", code, str(fifo)], timeout=20, check=False)
    assert done.returncode == 0


def test_log_file_hard_link_is_not_written(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"keep\n")
    link = tmp_path / "hook.log"
    os.link(target, link)
    hooklog.setup(str(link), use_syslog=False)
    try:
        hooklog.log("planted")
    finally:
        hooklog.setup(None)
    assert target.read_bytes() == b"keep\n"
    plain = tmp_path / "plain.log"
    hooklog.setup(str(plain), use_syslog=False)
    try:
        hooklog.log("written")
    finally:
        hooklog.setup(None)
    assert b"written" in plain.read_bytes()
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600


def test_reason_is_one_line_whatever_the_comm() -> None:
    args = HookArgs(global_pid=5, pid=5, tid=5, global_tid=5, uid=1000, gid=1000, signal=11,
                    time=1700000000, core_limit=None, hostname="h", dumpable=1,
                    comm="evil\nreason\x1b[2J")
    out = basic_elements(args, ProcSnapshot(5), None, 1000, {}, ContainerInfo(), {})
    assert out["reason"] == b"evil?reason?[2J killed by SIGSEGV"


def test_unwinder_files_are_confined_to_a_foreign_root(tmp_path: Path) -> None:
    # What root inside a container (or a chroot's owner) can plant in its tree: an absolute
    # symlink to a host file, a device node (no device cgroup applies to a host process).
    from coripper.unwinder.rootfs import RootFS

    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "prog").write_bytes(b"\x7fELF")
    secret = tmp_path / "host-secret"
    secret.write_text("host only\n")
    (root / "lib").symlink_to(secret)
    if os.geteuid() == 0:
        os.mknod(root / "zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    with RootFS.open(str(root)) as tree:
        with tree.open_file("/bin/prog") as f:
            assert f.pread(0, 4) == b"\x7fELF"
        with pytest.raises(OSError):  # resolves to <root>/<secret's path>: not there
            tree.open_file("/lib")
        if os.geteuid() == 0:
            with pytest.raises(OSError):
                tree.open_file("/zero")
    assert secret.read_text() == "host only\n"


def test_executable_is_looked_up_inside_the_root() -> None:
    assert postprocess.in_root_path("/srv/ct/rootfs/bin/prog", "/srv/ct/rootfs") == "/bin/prog"
    assert postprocess.in_root_path("/srv/ct/rootfs/bin/prog", "/srv/ct/rootfs/") == "/bin/prog"
    assert postprocess.in_root_path("/srv/ct/rootfsX/prog", "/srv/ct/rootfs") is None
    assert postprocess.in_root_path("/usr/bin/prog", "/") == "/usr/bin/prog"
    assert postprocess.in_root_path(None, "/") is None
