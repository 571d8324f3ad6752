"""File operations relative to a directory descriptor that never follow symlinks.

The building blocks of :class:`reporter.dumpdir.DumpDir`: ``O_NOFOLLOW`` opens of regular
files (libreport's ``secure_openat_read``), exclusive creation with an explicit mode and
owner, ``~NAME.tmp`` + rename writes, and removal of a directory tree without following
links (libreport's ``delete_file_dir``).

Standard library only and cheap to import: the crash hook imports this module.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from reporter.errors import BadElementError, ProblemDirError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at hook start-up
    from typing import Any

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW
# O_NONBLOCK: a FIFO planted under an element's name must not hang the reader.
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW

RMDIR_RETRIES = 50
RMDIR_WAIT = 0.01


def strip_slashes(path: str) -> str:
    """*path* without trailing slashes (``/`` stays ``/``)."""
    # "link/" would make the kernel follow the symlink despite O_NOFOLLOW.
    return path.rstrip("/") or "/"


def open_dir(path: str, dir_fd: int | None = None) -> int:
    """Descriptor of directory *path* (relative to *dir_fd* if given), never via a symlink."""
    return os.open(path, DIR_FLAGS, dir_fd=dir_fd)


def lexists(name: str, dir_fd: int) -> bool:
    """True when anything (a dangling symlink too) is called *name* in *dir_fd*."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def unlink_if_exists(name: str, dir_fd: int) -> None:
    """Unlink *name* in *dir_fd*; a missing entry is not an error."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def read_all(fd: int) -> bytes:
    """Everything from *fd* up to end of file."""
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def write_all(fd: int, data: bytes) -> None:
    """Write all of *data* to *fd* (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_regular_at(dir_fd: int, name: str, limit: int) -> bytes | None:
    """At most *limit* bytes of the regular file *name* in *dir_fd*.

    ``None`` when it cannot be opened (missing, a symlink, unreadable) or is not a
    regular file: the lenient probe used for validity checks and metadata.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def open_element(dir_fd: int, name: str, where: str) -> int | None:
    """Open element *name* of the problem directory *where* (at *dir_fd*) for reading.

    ``None`` if it does not exist. Symlinks, non-regular files and files with more than
    one hard link raise :class:`BadElementError` (libreport's ``secure_openat_read``).
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadElementError(name, where, "a symbolic link, not followed") from None
        raise BadElementError(name, where, f"can't be opened: {exc.strerror}") from None
    problem = entry_problem(os.fstat(fd))
    if problem:
        os.close(fd)
        raise BadElementError(name, where, problem)
    return fd


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def entry_problem(st: os.stat_result) -> str | None:
    """Why an entry with (``lstat``) status *st* is not a readable element, ``None`` if it is."""
    if not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "a special file")
        return f"{kind}, not followed" if stat.S_ISLNK(st.st_mode) else f"{kind}, not a regular file"
    if st.st_nlink > 1:
        return f"{st.st_nlink} hard links, not one"
    return None


def read_bounded(fd: int, limit: int) -> tuple[int, bytes | None]:
    """``(size, data)`` of the regular file at *fd*: *data* is its content when it has at most
    *limit* bytes, else ``None`` (and nothing beyond *limit* + 1 bytes is read)."""
    size = os.fstat(fd).st_size
    if size > limit:
        return size, None
    chunks: list[bytes] = []
    got = 0
    while got <= limit:  # the file may have grown since fstat: one byte more tells
        chunk = os.read(fd, min(limit + 1 - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > limit:
        return max(got, os.fstat(fd).st_size), None
    return got, b"".join(chunks)


def give_file(fd: int, mode: int, uid: int, gid: int) -> None:
    """``fchown`` then ``fchmod`` a freshly created file; closes *fd* if either fails."""
    try:
        os.fchown(fd, uid, gid)  # -1:-1 changes nothing
        os.fchmod(fd, mode)
    except BaseException:  # cleanup, then re-raised
        os.close(fd)
        raise


def write_renamed(dir_fd: int, name: str, data: bytes, mode: int, uid: int, gid: int) -> None:
    """Replace *name* in *dir_fd* by *data* via ``~NAME.tmp`` + fsync + rename.

    libreport writes its ``.libreport`` metadata this way, so readers never see a
    partial file.
    """
    tmp = f"~{name}.tmp"
    unlink_if_exists(tmp, dir_fd)
    fd = os.open(tmp, CREATE_FLAGS, mode, dir_fd=dir_fd)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


class SyncingFile:
    """A write-only binary file over an fd that fsyncs before closing."""

    def __init__(self, fd: int, mode: str) -> None:
        self._file = os.fdopen(fd, mode)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._file, attr)

    def write(self, data: bytes) -> int:
        """Write *data* (buffered); returns the number of bytes taken."""
        return self._file.write(data)

    def close(self) -> None:
        """Flush, fsync and close (idempotent)."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def __enter__(self) -> SyncingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_dir_contents(parent_fd: int, name: str | None, *, skip: str | None = None) -> bool:
    """Remove everything inside *name* (relative to *parent_fd*; None = parent itself),
    never following symlinks. Returns whether an entry called *skip* was left in place."""
    fd = parent_fd if name is None else open_dir(name, parent_fd)
    skipped = False
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for entry, is_dir in entries:
            if entry == skip:
                skipped = True
                continue
            if is_dir:
                remove_dir_contents(fd, entry)
                os.rmdir(entry, dir_fd=fd)
            else:
                unlink_if_exists(entry, fd)
    finally:
        if name is not None:
            os.close(fd)
    return skipped


def remove_subtree(parent_fd: int, name: str) -> None:
    """Remove directory *name* of *parent_fd* with its contents; a file or symlink
    squatting the name is unlinked, a missing one is fine."""
    try:
        remove_dir_contents(parent_fd, name)
        os.rmdir(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        os.unlink(name, dir_fd=parent_fd)


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """True when two status results describe the same inode."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def rmdir_retrying(parent_fd: int, name: str, where: str) -> None:
    """``unlinkat(parent_fd, name, AT_REMOVEDIR)``, retried while the directory is not empty:
    a racing locker that finds no ``time`` element backs off and removes its ``.lock``
    (libreport ``delete_file_dir``). *where* names it in errors."""
    for _ in range(RMDIR_RETRIES):
        try:
            os.rmdir(name, dir_fd=parent_fd)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
                raise ProblemDirError(f"can't remove '{where}': {exc.strerror}") from None
            last = exc
        time.sleep(RMDIR_WAIT)
    raise ProblemDirError(f"can't remove '{where}': {last.strerror}")
