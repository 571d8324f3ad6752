"""coripper.unwinder.rootfs: paths named by a core resolved below a root descriptor, with openat2 and with
the pure-Python walk (forced by making openat2 answer ENOSYS, as an old kernel does).

Trees are real directories with real symlinks, FIFOs and device nodes; "never opened" is
observed from the kernel's side: a FIFO's writer, opened without blocking, finds a reader only
if someone opened the FIFO for reading.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coripper.unwinder import rootfs
from coripper.unwinder.rootfs import FileCache, RootFS

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chroot, setuid)")


def _enosys(*_args: object) -> int:
    raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the kernel's openat2, then with the Python walk (openat2 -> ENOSYS)."""
    monkeypatch.setattr(rootfs, "_openat2_missing", False)
    if request.param == "walk":
        monkeypatch.setattr(rootfs, "_openat2", _enosys)
    return str(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A container-like tree: /lib -> usr/lib, absolute and relative links, a build-id link,
    a FIFO, links to host files and devices, and a host file outside the tree."""
    root = tmp_path / "root"
    (root / "usr/lib/debug/.build-id/ab").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("tree passwd\n")
    (root / "usr/lib/libc.so.6").write_bytes(b"\x7fELF tree libc")
    (root / "usr/lib/debug/libc.debug").write_bytes(b"debug data")
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/debug/.build-id/ab/cdef.debug").symlink_to("../../libc.debug")
    (root / "usr/lib/abs").symlink_to("/etc/passwd")
    (root / "usr/lib/dots").symlink_to("../../../../../../../../etc/passwd")
    (root / "usr/lib/zero").symlink_to("/dev/zero")
    (root / "usr/lib/magic").symlink_to("/proc/self/root/etc/hostname")
    (root / "usr/lib/loop").symlink_to("loop")
    (root / "usr/lib/dangling").symlink_to("/nowhere")
    os.mkfifo(root / "usr/lib/fifo.so")
    (tmp_path / "host-secret").write_text("host secret\n")
    (root / "usr/lib/escape").symlink_to(str(tmp_path / "host-secret"))
    return root


def _read(root: RootFS, path: str) -> bytes | int:
    """The contents of ``path`` below ``root``, or the errno of the failure."""
    try:
        with root.open_file(path) as f:
            return f.pread(0, 1 << 16)
    except OSError as exc:
        assert exc.filename == path           # every error names the path as given
        return exc.errno if exc.errno is not None else -1


def test_symlinks_resolve_inside_the_tree(tree: Path, resolver: str) -> None:
    with RootFS.open(str(tree)) as root:
        assert not root.is_host
        assert _read(root, "/lib/libc.so.6") == b"\x7fELF tree libc"
        assert _read(root, "/usr/lib/debug/.build-id/ab/cdef.debug") == b"debug data"
        # absolute targets and ".." beyond the root stay in the tree
        assert _read(root, "/usr/lib/abs") == b"tree passwd\n"
        assert _read(root, "/usr/lib/dots") == b"tree passwd\n"
        assert _read(root, "/lib/../../../../etc/passwd") == b"tree passwd\n"
        assert _read(root, "usr/lib/libc.so.6") == b"\x7fELF tree libc"    # relative: from root
        # a link to a host file is looked up in the tree, where it is not
        assert _read(root, "/usr/lib/escape") == errno.ENOENT
        assert _read(root, "/usr/lib/zero") == errno.ENOENT
        assert _read(root, "/usr/lib/dangling") == errno.ENOENT
        assert _read(root, "/usr/lib/loop") == errno.ELOOP


def test_only_regular_files_open(tree: Path, resolver: str) -> None:
    with RootFS.open(str(tree)) as root:
        for path, kind in (("/usr/lib/fifo.so", "a FIFO"), ("/lib", "a directory")):
            with pytest.raises(OSError, match=kind) as info:
                root.open_file(path)
            assert info.value.filename == path
        assert _read(root, "/lib/libc.so.6/") == errno.ENOTDIR
        assert _read(root, "/lib/libc.so.6/x") == errno.ENOTDIR
        with pytest.raises(OSError, match="NUL"):
            root.open_file("/lib/libc.so.6\0.txt")


def _writer_sees_reader(fifo: Path) -> bool:
    """True when some process holds (or is opening) ``fifo`` for reading."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        assert exc.errno == errno.ENXIO
        return False
    os.close(fd)
    return True


def test_fifo_is_never_opened_for_reading(tree: Path, resolver: str) -> None:
    """While open_file runs against the FIFO, a writer blocked in open() waits for a reader:
    it must still be waiting afterwards (O_PATH opens nothing)."""
    fifo = tree / "usr/lib/fifo.so"
    opened = threading.Event()

    def writer() -> None:
        fd = os.open(fifo, os.O_WRONLY)           # returns only once a reader opened it
        opened.set()
        os.close(fd)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(0.05)
    start = time.monotonic()
    with RootFS.open(str(tree)) as root:
        for path in ("/usr/lib/fifo.so", "/lib/fifo.so"):
            with pytest.raises(OSError, match="FIFO"):
                root.open_file(path)
    assert time.monotonic() - start < 1.0
    time.sleep(0.05)
    assert not opened.is_set()
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # release the writer thread
    t.join(5)
    os.close(fd)
    assert opened.is_set()


@needs_root
def test_device_node_is_refused(tree: Path, resolver: str) -> None:
    os.mknod(tree / "usr/lib/libdev.so", stat.S_IFCHR | 0o644, os.makedev(1, 5))
    with RootFS.open(str(tree)) as root, pytest.raises(OSError, match="character device"):
        root.open_file("/lib/libdev.so")


def test_magic_links_are_not_followed(resolver: str) -> None:
    """/proc/self/root is a magic link to the host's /: below a root it leads nowhere."""
    with RootFS.open(f"/proc/{os.getpid()}") as root:
        assert isinstance(_read(root, "/root/etc/hostname"), int)
        assert isinstance(_read(root, "/cwd/nothing"), int)


def test_symlink_limit_is_the_kernels(tmp_path: Path, resolver: str) -> None:
    """40 links in a row resolve, 41 do not (MAXSYMLINKS), as openat2 decides."""
    (tmp_path / "target").write_text("end")
    for n in range(1, 42):
        (tmp_path / f"l{n}").symlink_to("target" if n == 1 else f"l{n - 1}")
    with RootFS.open(str(tmp_path)) as root:
        assert _read(root, "/l40") == b"end"
        assert _read(root, "/l41") == errno.ELOOP


def test_both_resolvers_agree(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = ["/lib/libc.so.6", "/usr/lib/abs", "/usr/lib/dots", "/usr/lib/escape",
             "/usr/lib/zero", "/usr/lib/loop", "/usr/lib/fifo.so", "/lib", "/lib/",
             "/lib/./libc.so.6", "//lib//libc.so.6", "/lib/../lib/libc.so.6", "/../..",
             "/usr/lib/debug/.build-id/ab/cdef.debug", "/usr/lib/abs/x", "", "/nothing"]
    monkeypatch.setattr(rootfs, "_openat2_missing", False)
    with RootFS.open(str(tree)) as root:
        kernel = [_read(root, p) for p in paths]
        monkeypatch.setattr(rootfs, "_openat2", _enosys)
        walked = [_read(root, p) for p in paths]
    assert walked == kernel
    assert rootfs._openat2_missing               # ENOSYS is remembered


def test_open_refuses_a_symlink_anywhere_on_the_way(tmp_path: Path, resolver: str) -> None:
    (tmp_path / "real/sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to("real")
    (tmp_path / "file").write_text("")
    with RootFS.open(str(tmp_path / "real/sub")) as root:
        assert root.listdir("/") == []
    for bad in ("link/sub", "link"):
        with pytest.raises(OSError, match="symbolic link") as info:
            RootFS.open(str(tmp_path / bad))
        assert info.value.errno == errno.ELOOP
    with pytest.raises(NotADirectoryError):
        RootFS.open(str(tmp_path / "file"))
    with pytest.raises(FileNotFoundError):
        RootFS.open(str(tmp_path / "none"))


def test_relative_open_uses_the_working_directory(tmp_path: Path, resolver: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "r/etc").mkdir(parents=True)
    (tmp_path / "r/etc/os-release").write_text("x")
    monkeypatch.chdir(tmp_path)
    with RootFS.open("r") as root:
        assert _read(root, "/etc/os-release") == b"x"


def test_helpers(tree: Path, resolver: str) -> None:
    with RootFS.open(str(tree)) as root:
        assert root.exists("/lib") and root.exists("/usr/lib/fifo.so")
        assert not root.exists("/usr/lib/escape")
        assert root.is_file("/lib/libc.so.6") and not root.is_file("/usr/lib/fifo.so")
        assert stat.S_ISDIR(root.stat("/lib").st_mode)
        assert "libc.so.6" in root.listdir("/lib")
        assert root.realpath("/lib/libc.so.6") == "/usr/lib/libc.so.6"
        assert root.realpath("/usr/lib/abs") == "/etc/passwd"
        assert root.realpath("/lib/../..") == "/"
        with pytest.raises(NotADirectoryError):
            root.listdir("/lib/libc.so.6")


def test_host_and_from_fd(tree: Path) -> None:
    with RootFS.host() as host:
        assert host.is_host
        assert _read(host, "/proc/self/root/etc/hostname") == errno.ELOOP     # magic link
    fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    root = RootFS.from_fd(fd)
    os.close(fd)                                  # the RootFS has its own descriptor
    assert _read(root, "/lib/libc.so.6") == b"\x7fELF tree libc"
    root.close()
    root.close()
    assert root.closed
    with pytest.raises(ValueError, match="closed"):
        root.open_file("/lib/libc.so.6")
    fd = os.open(tree / "etc/passwd", os.O_PATH)
    with pytest.raises(NotADirectoryError):
        RootFS.from_fd(fd, take=True)
    with pytest.raises(OSError):
        os.fstat(fd)                              # taken, and closed on the error
    fd = os.open(tree, os.O_PATH | os.O_DIRECTORY)
    with RootFS.from_fd(fd, take=True) as root:
        assert root.fd == fd
    with pytest.raises(OSError):
        os.fstat(fd)


def test_open_file_pins_the_inode(tree: Path, resolver: str) -> None:
    """A module swapped for a FIFO after it was opened: reads still see the file opened."""
    lib = tree / "usr/lib/libc.so.6"
    with RootFS.open(str(tree)) as root, root.open_file("/lib/libc.so.6") as f:
        os.mkfifo(tree / "swap")
        os.rename(tree / "swap", lib)
        assert f.pread(0, 4) == b"\x7fELF"
        s1, s2 = f.stream(), f.stream()           # independent positions, one descriptor
        assert s1.read(4) == b"\x7fELF" and s2.read(1) == b"\x7f"
        s1.seek(-4, os.SEEK_END)
        assert s1.read() == b"libc" and s2.read(3) == b"ELF"
        s1.close()
        assert f.pread(5, 4) == b"tree" and not f.closed
        assert f.identity[1] != os.stat(lib).st_ino


def test_file_cache_opens_each_path_once(tree: Path) -> None:
    with FileCache(RootFS.open(str(tree)), own_root=True) as files:
        a = files.get("/lib/libc.so.6")
        assert a is not None and files.get("/lib/libc.so.6") is a
        assert files.get("/usr/lib/fifo.so") is None
        assert "FIFO" in str(files.errors["/usr/lib/fifo.so"])
    assert a.closed and files.root.closed


@pytest.fixture
def fake_proc_tree(tmp_path: Path) -> Iterator[Path]:
    """A tree with a fake /proc/self/fd/N for every N, each a link to a FIFO: what a
    container root can plant for code chrooted into its tree."""
    root = tmp_path / "root"
    (root / "proc/self/fd").mkdir(parents=True)
    os.mkfifo(root / "trap")
    for n in range(256):
        (root / f"proc/self/fd/{n}").symlink_to("/trap")
    (root / "lib.so").write_bytes(b"\x7fELF")
    yield root


@needs_root
def test_a_fake_procfs_is_never_used(fake_proc_tree: Path) -> None:
    """Chrooted into a tree with a planted /proc, open_file refuses (no procfs to reopen
    through) instead of following the planted links: the FIFO never gets a reader."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chroot(fake_proc_tree)
            os.chdir("/")
            with RootFS.host() as root:
                try:
                    root.open_file("/lib.so")
                except OSError as exc:
                    code = 0 if "procfs" in str(exc) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert not _writer_sees_reader(fake_proc_tree / "trap")
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("open_file blocked in a chroot with a planted /proc")


@needs_root
def test_reopen_works_after_dropping_privileges(tree: Path, resolver: str) -> None:
    """The unwinder runs as nobody after setuid (non-dumpable): /proc/self/fd still reopens."""
    for p in (tree, tree / "usr", tree / "usr/lib"):
        p.chmod(0o755)
    (tree / "usr/lib/libc.so.6").chmod(0o644)
    root = RootFS.open(str(tree))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            with root.open_file("/lib/libc.so.6") as f:
                code = 0 if f.pread(0, 4) == b"\x7fELF" else 3
        finally:
            os._exit(code)
    root.close()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
