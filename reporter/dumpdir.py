"""libreport problem directories ("dump dirs") on disk (docs/formats/libreport.md §1).

:class:`DumpDir` is libreport's ``struct dump_dir``: one file per element, the ``.lock``
symlink protocol shared with a running abrtd (:mod:`reporter.dirlock`), ``NAME.new`` +
rename creation (:mod:`reporter.spool`), explicit modes and ownership,
``.libreport/owner``, and the delete protocol. Every element is opened relative to the
directory's file descriptor with ``O_NOFOLLOW`` (:mod:`reporter.dirfs`).

Standard library only and cheap to import: the crash hook imports this module.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from reporter import dirfs, dirlock, elements
from reporter.dirfs import RMDIR_RETRIES, RMDIR_WAIT
from reporter.dirlock import (CREATE_LOCK_WAIT, LOCK_NAME, SYMLINK_RETRY_WAIT,
                              WAIT_FOR_OTHER_PROCESS)
from reporter.elementio import ElementIO
from reporter.errors import ProblemDirError
from reporter.spool import (DEFAULT_SPOOL, NEW_SUFFIX, SPOOL_ENV, is_problem_dir,
                            iter_problem_dirs, new_dir_name, spool_path)
from reporter.spool import mkdir_new as spool_mkdir_new
from reporter.spool import rename_new as spool_rename_new

# The names callers import from here; the spool, lock and fs ones live in their modules.
__all__ = [
    "CREATE_LOCK_WAIT", "DEFAULT_FILE_MODE", "DEFAULT_SPOOL", "LOCK_NAME", "META_DIR",
    "NEW_SUFFIX", "NO_TIME_FILE_RETRIES", "NO_TIME_FILE_WAIT", "OWNER_META", "RMDIR_RETRIES",
    "RMDIR_WAIT", "SPOOL_ENV", "SYMLINK_RETRY_WAIT", "WAIT_FOR_OTHER_PROCESS", "DumpDir",
    "dir_mode_for", "is_problem_dir", "iter_problem_dirs", "new_dir_name", "spool_path",
]

META_DIR = ".libreport"
OWNER_META = "owner"

DEFAULT_FILE_MODE = 0o640
NO_TIME_FILE_RETRIES = 10  # opener: locked dir without valid time/type, retries ...
NO_TIME_FILE_WAIT = 0.05  # ... this far apart, then "not a problem directory"
# Readonly opens fall back to an unlocked directory on these (libreport: EACCES; a
# read-only filesystem or an immutable directory says the same thing).
_NOT_WRITABLE = (errno.EACCES, errno.EROFS, errno.EPERM)


def dir_mode_for(file_mode: int) -> int:
    """Directory mode of a dump dir whose files get *file_mode*: add x wherever r is set."""
    return file_mode | ((file_mode & 0o444) >> 2)


class DumpDir(ElementIO):
    """An open (normally locked) problem directory; use as a context manager.

    Obtain one with :meth:`create` (a new ``NAME.new`` directory) or :meth:`open` (an
    existing problem directory). :meth:`close` releases the lock.
    """

    def __init__(self, path: str, fd: int, parent_fd: int, name: str, *, file_mode: int, uid: int,
                 gid: int, readonly: bool, locked: bool, owns_lock: bool, new: bool) -> None:
        self.path = path
        self._fd = fd
        # The directory that held it when opened, and its name there: renaming and removal
        # work on these, never on a path resolved again.
        self._parent_fd = parent_fd
        self._name = name
        self.file_mode = file_mode
        self.uid = uid
        self.gid = gid
        self.readonly = readonly
        self.locked = locked
        self._owns_lock = owns_lock
        self._new = new
        self._wanted_name: str | None = None
        # A forked child inherits this object; only the locking process may unlock.
        self._lock_pid = os.getpid()

    # ---------------------------------------------------------------- opening

    @classmethod
    def create(cls, spool: str, name: str, *, owner_uid: int = 0, uid: int = 0, gid: int = 0,
               mode: int = DEFAULT_FILE_MODE) -> DumpDir:
        """Create ``spool/NAME.new`` locked, with mode ``mode`` + x (0750 by default), owned
        by *uid*:*gid*, and ``.libreport/owner`` = *owner_uid*.

        If ``NAME`` or ``NAME.new`` is taken, ``NAME.2``, ``NAME.3``... are tried. Fill the
        directory, then :meth:`commit` it (or :meth:`discard` it).
        """
        if not elements.is_valid_element_name(name) or name.endswith(NEW_SUFFIX):
            raise ProblemDirError(f"'{name}' is not a valid problem directory name")
        mode &= 0o666
        dmode = dir_mode_for(mode)
        if os.geteuid() != 0:
            uid = gid = -1  # only root can give files away; -1 = leave as created
        spool_fd = dirfs.open_dir(spool)
        try:
            base = spool_mkdir_new(spool_fd, name, dmode)
            fd = dirfs.open_dir(base + NEW_SUFFIX, spool_fd)
        except BaseException:  # cleanup, then re-raised
            os.close(spool_fd)
            raise
        dd = cls(os.path.join(spool, base + NEW_SUFFIX), fd, spool_fd, base + NEW_SUFFIX,
                 file_mode=mode, uid=uid, gid=gid, readonly=False, locked=False, owns_lock=False,
                 new=True)
        dd._wanted_name = name
        try:
            dd._lock(wait=True, check=False, sleep=CREATE_LOCK_WAIT, timeout=None)
            os.fchmod(fd, dmode)  # mkdir's mode went through the umask
            os.fchown(fd, uid, gid)
            dd._save_meta(OWNER_META, str(owner_uid).encode("ascii"))
        except BaseException:  # cleanup, then re-raised
            dd.discard()
            raise
        return dd

    @classmethod
    def open(cls, path: str, *, readonly: bool = False, wait: bool = True,
             timeout: float | None = None) -> DumpDir:
        """Open and lock the problem directory *path* (libreport ``dd_opendir``).

        A live lock holder is waited for (500 ms polls; *timeout* seconds at most if
        given), or :class:`LockedError` is raised at once when *wait* is false. A
        directory without a valid ``time`` and non-empty ``type`` is not a problem
        directory (:class:`ProblemDirError`). With *readonly*, a directory that cannot
        be locked because it is not writable (or whose mode has no write bit at all, which
        root would otherwise ignore) is read unlocked.
        """
        path = dirfs.strip_slashes(path)
        parent_fd, name = _open_parent(path)
        try:
            fd = _open_named_dir(path, parent_fd, name)
        except BaseException:  # cleanup, then re-raised
            os.close(parent_fd)
            raise
        dd = None
        try:
            st = os.fstat(fd)
            # Like dd_opendir: as root, new elements get the directory's owner.
            root = os.geteuid() == 0
            dd = cls(path, fd, parent_fd, name, file_mode=st.st_mode & 0o666,
                     uid=st.st_uid if root else -1, gid=st.st_gid if root else -1,
                     readonly=readonly, locked=False, owns_lock=False, new=False)
            if readonly and not st.st_mode & 0o222:
                dd._check_unlocked()
                return dd
            try:
                dd._lock(wait=wait, check=True, sleep=WAIT_FOR_OTHER_PROCESS, timeout=timeout)
            except OSError as exc:
                if readonly and exc.errno in _NOT_WRITABLE:
                    dd._check_unlocked()
                    return dd
                raise ProblemDirError(f"can't lock '{path}': {exc.strerror}") from exc
            return dd
        except BaseException:  # cleanup, then re-raised
            if dd is not None:
                dd._fd = dd._parent_fd = -1  # so that __del__ does not close reused descriptor numbers
            os.close(fd)
            os.close(parent_fd)
            raise

    def _check_unlocked(self) -> None:
        missing = self._invalid_element()
        if missing:
            raise ProblemDirError(f"'{self.path}' is not a problem directory (no valid '{missing}')")

    # ---------------------------------------------------------------- locking

    def _lock(self, *, wait: bool, check: bool, sleep: float, timeout: float | None) -> None:
        """libreport ``dd_lock``: take the ``.lock`` symlink, then (openers) check validity."""
        deadline = None if timeout is None else time.monotonic() + timeout
        retries = NO_TIME_FILE_RETRIES
        while True:
            self._owns_lock = dirlock.acquire(self._fd, self.path, wait=wait, sleep=sleep,
                                              deadline=deadline)
            self._lock_pid = os.getpid()
            self.locked = True
            if not check:
                return
            missing = self._invalid_element()
            if not missing:
                return
            # Locked a directory somebody is still creating or already deleting: back off.
            self._unlock()
            retries -= 1
            if retries == 0 or not wait:
                raise ProblemDirError(f"'{self.path}' is not a problem directory (no valid '{missing}')")
            time.sleep(NO_TIME_FILE_WAIT)

    def _unlock(self) -> None:
        if self.locked and self._owns_lock and self._lock_pid == os.getpid():
            dirlock.release(self._fd, self._lock_pid)
        self.locked = False
        self._owns_lock = False

    def close(self) -> None:
        """Release the lock (if this object took it) and the descriptors."""
        if self._fd >= 0:
            self._unlock()
            os.close(self._fd)
            self._fd = -1
        self._close_parent()

    def _close_parent(self) -> None:
        if self._parent_fd >= 0:
            os.close(self._parent_fd)
            self._parent_fd = -1

    def __enter__(self) -> DumpDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0 or getattr(self, "_parent_fd", -1) >= 0:
            try:
                self.close()
            except OSError:
                pass

    def __repr__(self) -> str:
        state = "locked" if self.locked else ("closed" if self._fd < 0 else "unlocked")
        return f"<DumpDir {self.path!r} {state}>"

    # ---------------------------------------------------------------- metadata

    def _save_meta(self, name: str, data: bytes) -> None:
        """Write ``.libreport/<name>`` via ``~<name>.tmp`` + rename (libreport metadata)."""
        fd = self._writable_fd()
        dmode = dir_mode_for(self.file_mode)
        try:
            os.mkdir(META_DIR, dmode, dir_fd=fd)
        except FileExistsError:
            pass
        mfd = dirfs.open_dir(META_DIR, fd)
        try:
            os.fchown(mfd, self.uid, self.gid)
            os.fchmod(mfd, dmode)
            dirfs.write_renamed(mfd, name, data, self.file_mode, self.uid, self.gid)
        finally:
            os.close(mfd)

    def owner(self) -> int | None:
        """The uid in ``.libreport/owner`` (``None`` if absent or invalid)."""
        try:
            mfd = dirfs.open_dir(META_DIR, self._fd_checked())
        except OSError:
            return None
        try:
            data = dirfs.read_regular_at(mfd, OWNER_META, elements.MAX_NUMBER_FILE_BYTES + 1)
        finally:
            os.close(mfd)
        return None if data is None else elements.parse_number(data)

    def set_owner(self, uid: int) -> None:
        """Record *uid* as the owner in ``.libreport/owner``."""
        self._save_meta(OWNER_META, elements.format_number(uid))

    # ---------------------------------------------------------------- lifecycle

    def commit(self) -> str:
        """Rename ``NAME.new`` to ``NAME`` (``NAME.2``... if taken); returns the final path.

        The directory must be a valid problem directory by then (``time`` and ``type``).
        It stays open and locked.
        """
        self._writable_fd()
        if not self._new:
            return self.path
        missing = self._invalid_element()
        if missing:
            raise ProblemDirError(f"can't commit '{self.path}': no valid '{missing}' element")
        base = self._wanted_name or self._name[: -len(NEW_SUFFIX)]
        candidate = spool_rename_new(self._parent_fd, self._name, base)
        self.path = os.path.join(os.path.dirname(self.path), candidate)
        self._name = candidate
        self._new = False
        return self.path

    def discard(self) -> None:
        """Remove a half-built ``NAME.new`` directory entirely (and close it)."""
        if not self._new:
            raise ProblemDirError(f"'{self.path}' is not a directory being created")
        self._remove_tree()

    def delete(self) -> None:
        """Delete the problem directory (libreport ``dd_delete``) and close it."""
        self._writable_fd()
        self._remove_tree()

    def _remove_tree(self) -> None:
        """libreport's ``delete_file_dir``: metadata, every entry but ``.lock``, ``.lock``,
        then rmdir retried (a racing locker sees no ``time`` and backs off).

        Everything goes through descriptors: the entries through the directory's, the
        directory itself by its name in the parent it was opened from. A directory moved
        away from that name meanwhile is left alone (and said so).
        """
        fd = self._fd_checked()
        st = os.fstat(fd)
        self._check_still_named(st, "not deleted")
        dirfs.remove_subtree(fd, META_DIR)
        if dirfs.remove_dir_contents(fd, None, skip=LOCK_NAME):
            # Ours (recursively or not): the directory is going away.
            dirfs.unlink_if_exists(LOCK_NAME, fd)
        self.locked = False
        self._owns_lock = False
        os.close(fd)
        self._fd = -1
        try:
            self._check_still_named(st, "emptied, but the directory now under that name is not it")
            dirfs.rmdir_retrying(self._parent_fd, self._name, self.path)
        finally:
            self._close_parent()

    def _check_still_named(self, st: os.stat_result, outcome: str) -> None:
        try:
            now = os.stat(self._name, dir_fd=self._parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        if now is None or not dirfs.same_file(now, st):
            raise ProblemDirError(f"'{self.path}' was moved or replaced while open: {outcome}")


def _open_parent(path: str) -> tuple[int, str]:
    """Descriptor of the directory that holds *path* (resolved once, following symlinks as
    any path lookup does) and *path*'s last component."""
    parent, name = os.path.split(path)
    if name in ("", ".", ".."):
        parent, name = os.path.split(os.path.abspath(path))
    if not name:
        raise ProblemDirError(f"'{path}' is not a problem directory")
    try:
        # O_PATH: the parent needs search permission only, as a plain path lookup does.
        return os.open(parent or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), name
    except FileNotFoundError:
        raise ProblemDirError(f"'{path}' does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise ProblemDirError(f"'{path}' is not a directory") from None
        raise ProblemDirError(f"can't access '{path}': {exc.strerror}") from None


def _open_named_dir(path: str, parent_fd: int, name: str) -> int:
    """``O_NOFOLLOW`` descriptor of directory *name* in *parent_fd*; *path* names it in errors."""
    try:
        return dirfs.open_dir(name, parent_fd)
    except FileNotFoundError:
        raise ProblemDirError(f"'{path}' does not exist") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(name, parent_fd):
            raise ProblemDirError(f"'{path}' is a symbolic link, refusing to follow it") from None
        if exc.errno == errno.ENOTDIR:
            raise ProblemDirError(f"'{path}' is not a directory") from None
        raise ProblemDirError(f"can't access '{path}': {exc.strerror}") from None


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
