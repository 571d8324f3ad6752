"""Files named by a core, opened below a root directory that the crashing side may control.

A core names files as the crashed process saw them: ``NT_FILE`` paths, ``link_map`` names, the
build-id directory, ``.gnu_debuglink`` names. Whoever owns that tree (a container's root, a
user with a writable library directory) can put a symlink, a FIFO or a device where a library
should be. :class:`RootFS` is the one way the unwinder opens such files:

* the root is a directory descriptor, opened following no symlink at all
  (:meth:`RootFS.open`), or handed over as a descriptor (:meth:`RootFS.from_fd`);
* a path is resolved as the process saw it, below that descriptor:
  ``openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`` with ``O_PATH``, so symlinks in the tree
  resolve inside the tree (``/lib -> usr/lib``, build-id links), and neither an absolute
  symlink nor ``..`` leads out of it;
* the ``O_PATH`` descriptor opens nothing (no FIFO blocks, no driver's ``open`` runs); only when
  ``fstat`` says it is a regular file is it reopened for reading through ``/proc/self/fd``,
  which reaches that very inode, so no swap after the check is possible.

Kernels without ``openat2`` (before 5.6, or a seccomp filter answering ``ENOSYS``) get the same
semantics from a walk in Python: one ``openat(O_PATH | O_NOFOLLOW)`` per component, symlinks
read and resolved against the root here (absolute targets restart at the root, ``..`` at the
root stays there, at most 40 links). The kernel never follows a link in that walk; what it
cannot do as ``openat2`` does is notice a directory renamed out of the tree mid-walk by someone
who can write outside it.

Every failure is an :class:`OSError` whose ``filename`` is the path as named below the root.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import io
import os
import stat
from types import TracebackType
from typing import Any, BinaryIO

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
#: openat2's number in the generic syscall table, which x86_64 and aarch64 share from 424 on.
SYS_OPENAT2 = 437
AT_FDCWD = -100
#: Symlinks followed in one resolution (the kernel's MAXSYMLINKS).
MAX_SYMLINKS = 40
PROC_SUPER_MAGIC = 0x9FA0
#: openat2 answers EAGAIN when a rename raced RESOLVE_IN_ROOT; it is retried this often.
_EAGAIN_RETRIES = 16

_PATH_FLAGS = os.O_PATH | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


class _StatFs(ctypes.Structure):
    # struct statfs begins with f_type (__fsword_t, a long) on x86_64 and aarch64; the rest is
    # room for the remaining fields (120 bytes on both).
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 248)]


_libc: Any = None
#: Set once openat2 answered ENOSYS: every later resolution walks in Python.
_openat2_missing = False


def _get_libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    """The raw ``openat2`` system call (no Python binding); raises OSError."""
    how = _OpenHow(flags, 0, resolve)
    raw = os.fsencode(path)
    for _ in range(_EAGAIN_RETRIES):
        fd = int(_get_libc().syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_long(dirfd),
                                     ctypes.c_char_p(raw), ctypes.byref(how),
                                     ctypes.c_size_t(ctypes.sizeof(how))))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, "the tree kept changing during the lookup", path)


def _check_path(path: str) -> None:
    if "\0" in path:
        raise OSError(errno.EINVAL, "embedded NUL in path", path)


def _split(path: str) -> list[str]:
    # Empty parts are kept after the first: a trailing "/" must name a directory.
    parts = path.split("/")
    return parts[1:] if parts and parts[0] == "" else parts


def _walk(root_fd: int, path: str, *, in_root: bool) -> tuple[int, str]:
    """Resolve ``path`` below ``root_fd`` one component at a time, never letting the kernel follow
    a link. Returns an ``O_PATH`` descriptor of the result and its canonical path below the root.

    ``in_root``: symlinks are read and resolved against the root (RESOLVE_IN_ROOT); otherwise
    any symlink is refused with ``ELOOP`` (RESOLVE_NO_SYMLINKS).
    """
    _check_path(path)
    if not path:
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)    # as the kernel
    parts = collections.deque(_split(path))
    stack: list[tuple[str, int]] = []      # directories below the root, descriptors we own
    links = 0
    try:
        while parts:
            name = parts.popleft()
            if name in ("", "."):
                continue        # after a component that is not a directory we raised already
            if name == "..":
                if stack:                   # ".." at the root stays at the root
                    os.close(stack.pop()[1])
                continue
            cur = stack[-1][1] if stack else root_fd
            fd = os.open(name, _PATH_FLAGS | os.O_NOFOLLOW, dir_fd=cur)
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                try:
                    links += 1
                    if not in_root or links > MAX_SYMLINKS:
                        raise OSError(errno.ELOOP, "too many levels of symbolic links" if in_root
                                      else "a symbolic link in the path", path)
                    target = os.readlink("", dir_fd=fd)
                finally:
                    os.close(fd)
                if target.startswith("/"):
                    while stack:
                        os.close(stack.pop()[1])
                parts.extendleft(reversed(_split(target)))
                continue
            stack.append((name, fd))
            if parts and not stat.S_ISDIR(mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        canonical = "/" + "/".join(n for n, _fd in stack)
        result = stack.pop()[1] if stack else os.dup(root_fd)
        return result, canonical
    except OSError as exc:
        if exc.filename == path:
            raise
        raise OSError(exc.errno, exc.strerror, path) from None     # name the whole path
    finally:
        for _name, fd in stack:
            os.close(fd)


def _fs_type(fd: int) -> int | None:
    buf = _StatFs()
    if _get_libc().fstatfs(ctypes.c_int(fd), ctypes.byref(buf)) != 0:
        return None
    return int(buf.f_type)


def _open_host_dir(path: str) -> int:
    """``O_PATH`` descriptor of the host directory ``path``, following no symlink at all."""
    global _openat2_missing
    _check_path(path)
    if not path.startswith("/"):
        path = os.path.join(os.getcwd(), path)      # getcwd() has no symlinks in it
    if not _openat2_missing:
        try:
            return _openat2(AT_FDCWD, path, _PATH_FLAGS | os.O_DIRECTORY,
                            RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(errno.ELOOP, "a symbolic link in the path", path) from None
            if exc.errno != errno.ENOSYS:
                raise
            _openat2_missing = True
    top = os.open("/", _PATH_FLAGS | os.O_DIRECTORY)
    try:
        fd, _canonical = _walk(top, path, in_root=False)
    finally:
        os.close(top)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    return fd


def _open_procfs() -> int | None:
    """``O_PATH`` descriptor of ``/proc`` if it is procfs (a tree we were chrooted into could
    plant a fake one), else None."""
    try:
        fd = _open_host_dir("/proc")
    except OSError:
        return None
    if _fs_type(fd) != PROC_SUPER_MAGIC:
        os.close(fd)
        return None
    return fd


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


class RootFS:
    """A directory that paths named by a core are resolved below (see the module docstring).

    Make one with :meth:`open`, :meth:`from_fd` or :meth:`host`; close it (or use ``with``).
    """

    def __init__(self, fd: int, name: str) -> None:
        """Take ownership of ``fd`` (an ``O_PATH`` or ``O_RDONLY`` directory descriptor)."""
        try:
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
            top = os.stat("/")
        except BaseException:  # cleanup, then re-raised
            os.close(fd)
            raise
        self._fd = fd
        self.name = name
        #: True when this is the process's own ``/`` (the host, for the crash hook).
        self.is_host = (st.st_dev, st.st_ino) == (top.st_dev, top.st_ino)
        self._proc = _open_procfs()

    @classmethod
    def open(cls, path: str) -> RootFS:
        """Open the host directory ``path`` as a root, following no symlink in any component
        (a relative path is taken from the working directory)."""
        return cls(_open_host_dir(path), path)

    @classmethod
    def from_fd(cls, fd: int, *, take: bool = False) -> RootFS:
        """A root from a directory descriptor opened by someone else (e.g. by root before
        dropping privileges). The descriptor is duplicated, and the caller still owns ``fd``;
        with ``take`` it is not, and this RootFS closes it."""
        return cls(fd if take else os.dup(fd), f"fd {fd}")

    @classmethod
    def host(cls) -> RootFS:
        """The process's own ``/``."""
        return cls.open("/")

    @property
    def fd(self) -> int:
        """The root's directory descriptor (owned by this object)."""
        if self._fd < 0:
            raise ValueError("RootFS is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Close the root descriptor (and the procfs one); idempotent."""
        for fd in (self._fd, self._proc):
            if fd is not None and fd >= 0:
                os.close(fd)
        self._fd, self._proc = -1, None

    def __enter__(self) -> RootFS:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RootFS({self.name!r}{', host' if self.is_host else ''})"

    # --- resolving --------------------------------------------------------------------------

    def _resolve(self, path: str) -> int:
        """An ``O_PATH`` descriptor of ``path`` as the process saw it, below the root."""
        global _openat2_missing
        _check_path(path)
        if not _openat2_missing:
            try:
                return _openat2(self.fd, path, _PATH_FLAGS,
                                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
            except OSError as exc:
                if exc.errno != errno.ENOSYS:
                    raise
                _openat2_missing = True
        return _walk(self.fd, path, in_root=True)[0]

    def _reopen(self, pfd: int, flags: int, path: str) -> int:
        """A real descriptor of the inode ``pfd`` (an ``O_PATH`` one) pins, through procfs."""
        if self._proc is None:
            raise OSError(errno.ENOENT, "procfs is not mounted on /proc: no safe way to reopen",
                          path)
        fd = os.open(f"self/fd/{pfd}", flags | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=self._proc)
        a, b = os.fstat(pfd), os.fstat(fd)
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
            os.close(fd)
            raise OSError(errno.EXDEV, "procfs reopened another file", path)
        return fd

    def open_file(self, path: str) -> RegularFile:
        """Open the regular file ``path`` (as the process saw it) for reading.

        Raises OSError (``filename`` = ``path``) when it does not resolve below the root or is
        not a regular file (a FIFO, device, socket or directory is never opened for reading).
        """
        pfd = self._resolve(path)
        try:
            st = os.fstat(pfd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, f"{_kind(st.st_mode)}, not a regular file", path)
            fd = self._reopen(pfd, os.O_RDONLY, path)
        finally:
            os.close(pfd)
        return RegularFile(fd, path, st)

    def stat(self, path: str) -> os.stat_result:
        """``stat`` of ``path`` resolved below the root (symlinks followed inside the tree)."""
        pfd = self._resolve(path)
        try:
            return os.fstat(pfd)
        finally:
            os.close(pfd)

    def exists(self, path: str) -> bool:
        """True when ``path`` resolves below the root."""
        try:
            os.close(self._resolve(path))
        except OSError:
            return False
        return True

    def is_file(self, path: str) -> bool:
        """True when ``path`` resolves below the root to a regular file."""
        try:
            return stat.S_ISREG(self.stat(path).st_mode)
        except OSError:
            return False

    def listdir(self, path: str) -> list[str]:
        """The names in the directory ``path`` below the root."""
        pfd = self._resolve(path)
        try:
            if not stat.S_ISDIR(os.fstat(pfd).st_mode):
                raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
            fd = self._reopen(pfd, os.O_RDONLY | os.O_DIRECTORY, path)
        finally:
            os.close(pfd)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def realpath(self, path: str) -> str:
        """The canonical path ``path`` resolves to below the root (symlinks expanded inside the
        tree). For naming only (gdb's debug directories): open with :meth:`open_file`."""
        fd, canonical = _walk(self.fd, path, in_root=True)
        os.close(fd)
        return canonical


class RegularFile:
    """A regular file opened below a root: one read-only descriptor pinned to one inode.

    :meth:`pread` reads at an offset; :meth:`stream` gives a file object with a position of its
    own over the same descriptor, so several readers (pyelftools, memory reads) share it.
    """

    def __init__(self, fd: int, path: str, st: os.stat_result) -> None:
        self._fd = fd
        self.path = path            # as named below the root
        self.size = st.st_size
        #: Equal for the same file in the same state (cache keys; sameness of two paths).
        self.identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def fileno(self) -> int:
        if self._fd < 0:
            raise ValueError(f"{self.path}: file is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer only at the end of the file)."""
        if offset < 0 or size < 0:
            return b""
        chunks: list[bytes] = []
        while size > 0:
            chunk = os.pread(self.fileno(), min(size, 1 << 24), offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def stream(self) -> BinaryIO:
        """A new buffered reader over this file, with its own position; closing it leaves the
        descriptor open."""
        return io.BufferedReader(_PreadRaw(self))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RegularFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegularFile({self.path!r}, fd={self._fd})"


class _PreadRaw(io.RawIOBase):
    """Raw reads of a :class:`RegularFile` at a private position (``preadv``)."""

    def __init__(self, file: RegularFile) -> None:
        super().__init__()
        self._file = file
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = os.preadv(self._file.fileno(), [buffer], self._pos)
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos,
                os.SEEK_END: os.fstat(self._file.fileno()).st_size}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


class FileCache:
    """The files one unwind reads below a root: each path opened at most once (a failure is
    remembered too), all closed together by :meth:`close`."""

    def __init__(self, root: RootFS, *, own_root: bool = False) -> None:
        self.root = root
        self._own_root = own_root
        self._files: dict[str, RegularFile | None] = {}
        #: Why each path that failed could not be opened.
        self.errors: dict[str, OSError] = {}

    def get(self, path: str) -> RegularFile | None:
        """The regular file ``path`` below the root, or None when it cannot be opened."""
        if path not in self._files:
            try:
                self._files[path] = self.root.open_file(path)
            except OSError as exc:
                self._files[path] = None
                self.errors[path] = exc
        return self._files[path]

    def close(self) -> None:
        for f in self._files.values():
            if f is not None:
                f.close()
        self._files.clear()
        if self._own_root:
            self.root.close()

    def __enter__(self) -> FileCache:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def preload() -> None:
    """Load libc and look up the functions used through ctypes now (before imports are
    forbidden, see :func:`coripper.unwinder.backtrace.preload_unwinder`)."""
    libc = _get_libc()
    for name in ("syscall", "fstatfs"):
        getattr(libc, name)
