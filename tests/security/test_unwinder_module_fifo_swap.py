"""Issue 15 §4: the unwinder opens module files named by the core unsafely.

A real program crashes through the kernel, chrooted into a container-like tree (so its
``NT_FILE`` names ``/opt/crasher``, ``/lib/x86_64-linux-gnu/libc.so.6``), or on the host (a root
crash: rootdir ``/``). Then the module's path is made to name a FIFO or a symlink to a device:
planted before the unwind, or swapped in (an atomic rename) right after the unwinder mapped the
modules and checked the files, which is where the old code re-opened paths with a plain
``open()`` (file-backed memory, DWARF) and blocked on the FIFO or opened the device.

"Never opened" is watched from the kernel's side while the unwinder runs in a subprocess: a
FIFO's writer, opened without blocking, finds a reader only if someone opened it for reading;
the device node (a ``/dev/zero`` clone standing in for ``/dev/watchdog``, whose open arms it)
is watched with inotify, which reports every real open (an ``O_PATH`` lookup is none).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import shutil
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from testlib import Programs, core_pattern, crash_through_kernel, require_core_pattern

CRASH_FRAMES = ["crash_write_null", "crash_level2", "crash_level1", "main"]
IN_OPEN = 0x20
TIMEOUT = 60.0

#: Runs one unwind; with PLANTED set, renames it over TARGET right after map_modules returns.
CHILD = r"""
import json, os, sys
import coripper.unwinder.backtrace as bt
core, rootdir, target, planted = sys.argv[1:]
real = bt.map_modules
def swap_after(*args, **kwargs):
    found = real(*args, **kwargs)
    if planted:
        os.rename(planted, target)
    return found
bt.map_modules = swap_after
result = bt.core_backtrace(core, rootdir=rootdir)
print(json.dumps({"frames": [f.function_name for f in result.threads[0].frames],
                  "warnings": result.warnings}))
"""


# --- crashes inside a tree (shared with test_unwinder_symlink_escape.py) ---------------------

def shared_libraries(exe: Path) -> list[str]:
    """The absolute paths of the shared objects ``exe`` loads (``ldd``), ld.so included."""
    out = subprocess.run(["ldd", str(exe)], check=True, capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else words[0]
        if path.startswith("/"):
            paths.append(path)
    return paths


def build_tree(root: Path, exe: Path) -> dict[str, Path]:
    """A container-like tree at ``root``: ``exe`` as /opt/crasher and copies of its shared
    libraries at the paths it loads them from (real directories, no links). Returns the
    files by the path the process will see."""
    files = {"/opt/crasher": exe}
    files.update({lib: Path(lib) for lib in shared_libraries(exe)})
    placed = {}
    for inside, src in files.items():
        dst = root / inside.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        placed[inside] = dst
    return placed


def chrooted_crash(root: Path, argv: list[str], core_dir: str) -> Path:
    """Crash ``argv`` (paths inside ``root``) chrooted into ``root``; the kernel writes the
    core inside the chroot (``root``/``core_dir``). Returns the core's host path."""
    inside = root / core_dir.lstrip("/")
    inside.mkdir(parents=True, exist_ok=True)

    def enter() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        os.chroot(root)
        os.chdir("/")

    with core_pattern(f"{core_dir}/core.%P"):
        proc = subprocess.Popen(argv, preexec_fn=enter, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        rc = proc.wait(timeout=60)
    core = inside / f"core.{proc.pid}"
    assert rc < 0 and core.exists(), f"no core from {argv} in {root} (rc {rc})"
    return core


@pytest.fixture(scope="module")
def container_crash(programs: Programs, tmp_path_factory: pytest.TempPathFactory
                    ) -> tuple[Path, Path, dict[str, Path]]:
    """(pristine tree, core inside it, files by in-tree path) of crasher segv run chrooted."""
    require_core_pattern()
    root = tmp_path_factory.mktemp("container") / "rootfs"
    placed = build_tree(root, programs.crasher())
    core = chrooted_crash(root, ["/opt/crasher", "segv"], "/var/crash")
    return root, core, placed


def fresh_tree(container_crash: tuple[Path, Path, dict[str, Path]], dest: Path
               ) -> tuple[Path, Path]:
    """A copy of the crash's tree (tests change it): (tree, core in it)."""
    root, core, _placed = container_crash
    shutil.copytree(root, dest, symlinks=True)
    return dest, dest / core.relative_to(root)


def libc_path(container_crash: tuple[Path, Path, dict[str, Path]]) -> str:
    return next(p for p in container_crash[2] if "/libc.so" in p)


# --- watching for opens -----------------------------------------------------------------------

class Inotify:
    """IN_OPEN events of one file (ctypes: the standard library has no inotify)."""

    def __init__(self, path: Path) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN)
        assert wd >= 0, os.strerror(ctypes.get_errno())

    def opened(self) -> bool:
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return False
        return any(struct.unpack_from("iIII", data, off)[1] & IN_OPEN
                   for off in range(0, len(data), 16) if off + 16 <= len(data))

    def close(self) -> None:
        os.close(self.fd)


def fifo_has_reader(fifo: Path) -> bool:
    """True when some process holds, or is blocked opening, ``fifo`` for reading (our writer
    then releases it: it reads end-of-file). False while ``fifo`` is no FIFO (not swapped yet)."""
    try:
        if not stat.S_ISFIFO(os.lstat(fifo).st_mode):
            return False
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        assert exc.errno in (errno.ENXIO, errno.ENOENT, errno.ENOTDIR, errno.ELOOP), exc
        return False
    os.close(fd)
    return True


def run_unwind(core: Path, rootdir: str, target: Path, planted: Path | None,
               opened: Callable[[], bool], cwd: Path) -> tuple[subprocess.CompletedProcess[str],
                                                               bool, bool]:
    """The CHILD unwind in a subprocess, watched with ``opened`` until it exits: (result,
    opened ever, timed out)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(core), rootdir, str(target),
                             str(planted or "")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)
    seen = timed_out = False
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None:
        seen = opened() or seen
        if time.monotonic() > deadline:
            proc.kill()
            timed_out = True
            break
        time.sleep(0.005)
    out, err = proc.communicate()
    seen = opened() or seen
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen, timed_out


def _plant(kind: str, where: Path, device: Path) -> Path:
    if kind == "fifo":
        os.mkfifo(where)
    else:
        where.symlink_to(device)            # absolute: the host's device node
    return where


@pytest.fixture
def device(tmp_path: Path) -> Path:
    """A character device node outside every tree (a /dev/zero clone, major 1 minor 5)."""
    node = tmp_path / "watchdog"
    os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    return node


def _check(result: subprocess.CompletedProcess[str], seen: bool, timed_out: bool,
           what: str) -> dict[str, list[str]]:
    import json
    assert not timed_out, f"the unwinder blocked on {what}"
    assert not seen, f"the unwinder opened {what}"
    assert result.returncode == 0, result.stderr
    doc: dict[str, list[str]] = json.loads(result.stdout)
    return doc


@pytest.mark.parametrize("kind", ["fifo", "device-link"])
@pytest.mark.parametrize("when", ["swapped-after-mapping", "planted"])
def test_container_library_swapped_or_planted(container_crash, device: Path, tmp_path: Path,
                                              kind: str, when: str) -> None:  # type: ignore[no-untyped-def]
    """The container's libc (rootdir = its tree) becomes a FIFO, or an absolute symlink to a
    host device node: the unwind finishes, opens neither, and names the program's frames."""
    tree, core = fresh_tree(container_crash, tmp_path / "tree")
    target = tree / libc_path(container_crash).lstrip("/")
    side = tmp_path / "side"
    side.mkdir()
    if when == "planted":
        target.unlink()
        planted = None
        _plant(kind, target, device)
    else:
        planted = _plant(kind, tree / "planted", device)
    watch = Inotify(device)

    def opened() -> bool:
        if kind == "fifo":
            return fifo_has_reader(target) or fifo_has_reader(tree / "planted")
        return watch.opened()

    try:
        result, seen, timed_out = run_unwind(core, str(tree), target, planted, opened, side)
    finally:
        watch.close()
    doc = _check(result, seen, timed_out, f"a {kind} at the library's path")
    assert doc["frames"][:4] == CRASH_FRAMES
    if when == "swapped-after-mapping":
        # the descriptor opened before the swap is the one used: libc is still named
        assert "__libc_start_main" in doc["frames"]


@pytest.fixture(scope="module")
def host_crash(programs: Programs, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Path, Path]:
    """(program, core) of a crash on the host, the program in a directory of its own (rootdir
    ``/``: the unwinder reads the host's files, as it does for root's crashes)."""
    require_core_pattern()
    base = tmp_path_factory.mktemp("hostcrash")
    exe = base / "bin" / "crasher"
    exe.parent.mkdir()
    shutil.copy2(programs.crasher(), exe)
    crash = crash_through_kernel([exe, "segv"], base / "cores")
    assert crash.core is not None
    return exe, crash.core


@pytest.mark.parametrize("kind", ["fifo", "device-link"])
def test_host_program_swapped_after_mapping(host_crash: tuple[Path, Path], device: Path,
                                            tmp_path: Path, kind: str) -> None:
    """A root crash (rootdir ``/``) whose program path is writable by someone else: swapped for
    a FIFO or a symlink to a device once the unwinder has mapped it. Neither is opened."""
    exe, core = host_crash
    backup = exe.with_name("crasher.orig")
    shutil.copy2(exe, backup)
    planted = _plant(kind, exe.with_name("planted"), device)
    watch = Inotify(device)

    def opened() -> bool:
        return fifo_has_reader(exe) if kind == "fifo" else watch.opened()

    try:
        result, seen, timed_out = run_unwind(core, "/", exe, planted, opened, tmp_path)
    finally:
        watch.close()
        os.replace(backup, exe)
    doc = _check(result, seen, timed_out, f"a {kind} swapped in for the program")
    assert doc["frames"][:4] == CRASH_FRAMES
