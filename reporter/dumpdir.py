"""libreport problem directories ("dump dirs") on disk (formats/libreport.md §1).

:class:`DumpDir` is libreport's ``struct dump_dir``: one file per element, the ``.lock``
symlink protocol shared with a running abrtd, ``NAME.new`` + rename creation, explicit
modes and ownership, ``.libreport/owner``, and the delete protocol. Every element is opened
relative to the directory's file descriptor with ``O_NOFOLLOW``.

Standard library only and cheap to import: the crash hook imports this module.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from reporter import elements
from reporter.errors import LockedError, ProblemDirError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc cost milliseconds at hook start-up
    from collections.abc import Iterator
    from typing import Any, BinaryIO

DEFAULT_SPOOL = "/var/spool/crashkit"
SPOOL_ENV = "CRASHKIT_SPOOL"

LOCK_NAME = ".lock"
META_DIR = ".libreport"
OWNER_META = "owner"
NEW_SUFFIX = ".new"

DEFAULT_FILE_MODE = 0o640
# Waits of libreport's dd_lock()/delete_file_dir() (microseconds there, seconds here).
WAIT_FOR_OTHER_PROCESS = 0.5  # opener waiting for a live lock holder
CREATE_LOCK_WAIT = 0.01  # creator waiting for a live lock holder
SYMLINK_RETRY_WAIT = 0.01  # .lock vanished between symlink() and readlink()
NO_TIME_FILE_RETRIES = 10  # opener: locked dir without valid time/type, retries ...
NO_TIME_FILE_WAIT = 0.05  # ... this far apart, then "not a problem directory"
RMDIR_RETRIES = 50
RMDIR_WAIT = 0.01

_O_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _O_NOFOLLOW
# Readonly opens fall back to an unlocked directory on these (libreport: EACCES; a
# read-only filesystem or an immutable directory says the same thing).
_NOT_WRITABLE = (errno.EACCES, errno.EROFS, errno.EPERM)


def spool_path(option: str | None = None) -> str:
    """The spool directory: *option* (``--spool``) > ``$CRASHKIT_SPOOL`` > :data:`DEFAULT_SPOOL`."""
    if option:
        return option
    return os.environ.get(SPOOL_ENV) or DEFAULT_SPOOL


def new_dir_name(prefix: str, when: float, pid: int) -> str:
    """libreport's ``create_dump_dir_ext`` name: ``<prefix>-<local ISO date>.<usec>-<pid>``.

    The microseconds are printed unpadded, as libreport's ``%ld`` does
    (``ccpp-2016-05-11-14:43:31.123456-19861``, ``…:31.5-19861``).
    """
    seconds, usec = divmod(round(when * 1_000_000), 1_000_000)
    return f"{prefix}-{elements.iso_date(seconds)}.{usec}-{pid}"


def dir_mode_for(file_mode: int) -> int:
    """Directory mode of a dump dir whose files get *file_mode*: add x wherever r is set."""
    return file_mode | ((file_mode & 0o444) >> 2)


class DumpDir:
    """An open (normally locked) problem directory; use as a context manager.

    Obtain one with :meth:`create` (a new ``NAME.new`` directory) or :meth:`open` (an
    existing problem directory). :meth:`close` releases the lock.
    """

    path: str

    def __init__(self, path: str, fd: int, *, file_mode: int, uid: int, gid: int,
                 readonly: bool, locked: bool, owns_lock: bool, new: bool) -> None:
        self.path = path
        self._fd = fd
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
        spool_fd = _open_dir(spool)
        try:
            for base in _candidate_names(name):
                if _lexists(base, spool_fd):
                    continue
                try:
                    os.mkdir(base + NEW_SUFFIX, dmode, dir_fd=spool_fd)
                except FileExistsError:
                    continue
                break
            else:  # pragma: no cover - _candidate_names is endless
                raise AssertionError
            path = os.path.join(spool, base + NEW_SUFFIX)
            fd = os.open(base + NEW_SUFFIX, _DIR_FLAGS, dir_fd=spool_fd)
        finally:
            os.close(spool_fd)
        dd = cls(path, fd, file_mode=mode, uid=uid, gid=gid, readonly=False, locked=False,
                 owns_lock=False, new=True)
        dd._wanted_name = name
        try:
            dd._lock(wait=True, check=False, sleep=CREATE_LOCK_WAIT, timeout=None)
            os.fchmod(fd, dmode)  # mkdir's mode went through the umask
            os.fchown(fd, uid, gid)
            dd._save_meta(OWNER_META, str(owner_uid).encode("ascii"))
        except BaseException:
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
        path = _strip_slashes(path)
        try:
            fd = os.open(path, _DIR_FLAGS)
        except FileNotFoundError:
            raise ProblemDirError(f"'{path}' does not exist") from None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
                raise ProblemDirError(f"'{path}' is a symbolic link, refusing to follow it") from None
            if exc.errno == errno.ENOTDIR:
                raise ProblemDirError(f"'{path}' is not a directory") from None
            raise ProblemDirError(f"can't access '{path}': {exc.strerror}") from None
        dd = None
        try:
            st = os.fstat(fd)
            # Like dd_opendir: as root, new elements get the directory's owner.
            root = os.geteuid() == 0
            dd = cls(path, fd, file_mode=st.st_mode & 0o666, uid=st.st_uid if root else -1,
                     gid=st.st_gid if root else -1,
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
                raise ProblemDirError(f"can't lock '{path}': {exc.strerror}") from None
            return dd
        except BaseException:
            if dd is not None:
                dd._fd = -1  # so that __del__ does not close a reused descriptor number
            os.close(fd)
            raise

    def _check_unlocked(self) -> None:
        missing = self._invalid_element()
        if missing:
            raise ProblemDirError(f"'{self.path}' is not a problem directory (no valid '{missing}')")

    # ---------------------------------------------------------------- locking

    def _lock(self, *, wait: bool, check: bool, sleep: float, timeout: float | None) -> None:
        """libreport ``dd_lock``: take the ``.lock`` symlink, then (openers) check validity."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pid = str(os.getpid())
        retries = NO_TIME_FILE_RETRIES
        while True:
            while True:
                state, holder = _try_lock(self._fd, pid)
                if state != "busy":
                    break
                now = time.monotonic()
                if not wait or (deadline is not None and now >= deadline):
                    raise LockedError(f"'{self.path}' is locked by process {holder}")
                time.sleep(sleep if deadline is None else min(sleep, deadline - now))
            self._owns_lock = state == "locked"
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
            try:
                # Only remove the lock if it is still ours (never somebody else's).
                if os.readlink(LOCK_NAME, dir_fd=self._fd) == str(self._lock_pid):
                    os.unlink(LOCK_NAME, dir_fd=self._fd)
            except (FileNotFoundError, OSError):
                pass
        self.locked = False
        self._owns_lock = False

    def close(self) -> None:
        """Release the lock (if this object took it) and the directory descriptor."""
        if self._fd < 0:
            return
        self._unlock()
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> DumpDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            try:
                self.close()
            except OSError:
                pass

    def __repr__(self) -> str:
        state = "locked" if self.locked else ("closed" if self._fd < 0 else "unlocked")
        return f"<DumpDir {self.path!r} {state}>"

    # ---------------------------------------------------------------- reading

    def _fd_checked(self) -> int:
        if self._fd < 0:
            raise ProblemDirError(f"problem directory '{self.path}' is closed")
        return self._fd

    def _open_element(self, name: str) -> int | None:
        """O_NOFOLLOW-open element *name* for reading; ``None`` if it does not exist.

        Refuses symlinks, non-regular files and files with more than one hard link
        (libreport's ``secure_openat_read``).
        """
        _check_name(name)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW, dir_fd=self._fd_checked())
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ProblemDirError(f"element '{name}' of '{self.path}' is a symbolic link") from None
            raise ProblemDirError(f"can't open element '{name}' of '{self.path}': {exc.strerror}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ProblemDirError(f"element '{name}' of '{self.path}' is not a regular file")
        if st.st_nlink > 1:
            os.close(fd)
            raise ProblemDirError(f"element '{name}' of '{self.path}' has {st.st_nlink} hard links")
        return fd

    def load_bytes(self, name: str) -> bytes | None:
        """Raw content of element *name*, ``None`` if it does not exist."""
        fd = self._open_element(name)
        if fd is None:
            return None
        try:
            return _read_all(fd)
        finally:
            os.close(fd)

    def load_text(self, name: str, default: str = "") -> str:
        """Element *name* as text with libreport's ``dd_load_text`` rules; *default* if missing.

        ``release`` is the legacy name of ``os_release``.
        """
        if name == "release":
            name = "os_release"
        data = self.load_bytes(name)
        return default if data is None else elements.load_text(data)

    def load_int(self, name: str) -> int | None:
        """Numeric element *name*; ``None`` when missing or not an unsigned decimal."""
        fd = self._open_element(name)
        if fd is None:
            return None
        try:
            data = os.read(fd, elements.MAX_NUMBER_FILE_BYTES + 1)
        finally:
            os.close(fd)
        return elements.parse_number(data)

    def has_element(self, name: str) -> bool:
        """True when element *name* exists as a regular file (symlinks do not count)."""
        _check_name(name)
        try:
            st = os.stat(name, dir_fd=self._fd_checked(), follow_symlinks=False)
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode)

    def list_elements(self) -> list[str]:
        """Names of all elements (regular files with valid names), sorted."""
        names = []
        with os.scandir(self._fd_checked()) as it:
            for entry in it:
                if entry.is_file(follow_symlinks=False) and elements.is_valid_element_name(entry.name):
                    names.append(entry.name)
        return sorted(names)

    def element_size(self, name: str) -> int | None:
        """Size in bytes of element *name* (``None`` if it is missing)."""
        fd = self._open_element(name)
        if fd is None:
            return None
        try:
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def _invalid_element(self) -> str | None:
        """libreport ``dd_check``: name of the first of time/type that is missing or invalid."""
        for name in ("time", "type"):
            try:
                data = self.load_bytes(name)
            except ProblemDirError:
                return name
            if name == "time" and elements.parse_number(data) is None:
                return name
            if name == "type" and not (data and elements.load_text(data)):
                return name
        return None

    # ---------------------------------------------------------------- time and counters

    def time(self) -> int | None:
        """First occurrence (``time``), unix seconds."""
        return self.load_int("time")

    def last_occurrence(self) -> int | None:
        """``last_occurrence``, clamped to be at least ``time`` (``time`` if missing/invalid)."""
        first = self.time()
        last = self.load_int("last_occurrence")
        if last is None:
            return first
        return last if first is None else max(last, first)

    def count(self) -> int | None:
        """``count`` (``None``: not processed by post-create yet)."""
        return self.load_int("count")

    def set_time(self, when: float) -> None:
        """Write ``time`` and ``last_occurrence`` (both *when*, whole seconds)."""
        seconds = int(when)
        self.save_int("time", seconds)
        self.save_int("last_occurrence", seconds)

    def increment_count(self, when: float | None = None) -> int:
        """One more occurrence: ``count`` + 1 and ``last_occurrence`` = *when* (clamped to
        be at least ``time``; default now). Returns the new count."""
        count = (self.count() or 0) + 1
        self.save_int("count", count)
        seconds = int(time.time() if when is None else when)
        first = self.time()
        if first is not None:
            seconds = max(seconds, first)
        self.save_int("last_occurrence", seconds)
        return count

    # ---------------------------------------------------------------- writing

    def _writable_fd(self) -> int:
        fd = self._fd_checked()
        if self.readonly or not self.locked:
            raise ProblemDirError(f"problem directory '{self.path}' is not opened for writing")
        return fd

    def open_element_writer(self, name: str) -> BinaryIO:
        """A new, empty element file for streaming writes (e.g. a core).

        The old element is unlinked, the new one created ``O_EXCL|O_NOFOLLOW`` with the
        directory's file mode and owner. Close it (it is fsynced on close).
        """
        _check_name(name)
        fd = self._writable_fd()
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise ProblemDirError(f"element '{name}' of '{self.path}' is a directory") from None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW
        try:
            efd = os.open(name, flags, self.file_mode, dir_fd=fd)
        except OSError as exc:
            raise ProblemDirError(f"can't create element '{name}' of '{self.path}': {exc.strerror}") from None
        try:
            os.fchown(efd, self.uid, self.gid)  # -1:-1 changes nothing
            os.fchmod(efd, self.file_mode)
        except BaseException:
            os.close(efd)
            raise
        # Duck-typed BinaryIO: every method it does not override is the file's own.
        return _SyncingFile(efd, "wb")  # type: ignore[return-value]

    def save_bytes(self, name: str, data: bytes) -> None:
        """Write element *name* atomically with respect to readers (unlink + O_EXCL create + fsync)."""
        with self.open_element_writer(name) as f:
            f.write(data)

    def save_text(self, name: str, text: str) -> None:
        """Write element *name* as UTF-8 text."""
        self.save_bytes(name, text.encode("utf-8", "surrogateescape"))

    def save_int(self, name: str, value: int) -> None:
        """Write numeric element *name*: decimal, no trailing newline."""
        self.save_bytes(name, elements.format_number(value))

    def delete_element(self, name: str) -> None:
        """Remove element *name* (no error if it is missing)."""
        _check_name(name)
        try:
            os.unlink(name, dir_fd=self._writable_fd())
        except FileNotFoundError:
            pass

    def add_reported_to(self, line: str) -> None:
        """Append *line* to ``reported_to`` unless an identical line is already there."""
        from reporter.reported_to import append_line

        updated = append_line(self.load_text("reported_to"), line)
        if updated is not None:
            self.save_text("reported_to", updated)

    def _save_meta(self, name: str, data: bytes) -> None:
        """Write ``.libreport/<name>`` via ``~<name>.tmp`` + rename (libreport metadata)."""
        fd = self._writable_fd()
        dmode = dir_mode_for(self.file_mode)
        try:
            os.mkdir(META_DIR, dmode, dir_fd=fd)
        except FileExistsError:
            pass
        mfd = os.open(META_DIR, _DIR_FLAGS, dir_fd=fd)
        try:
            os.fchown(mfd, self.uid, self.gid)
            os.fchmod(mfd, dmode)
            tmp = f"~{name}.tmp"
            try:
                os.unlink(tmp, dir_fd=mfd)
            except FileNotFoundError:
                pass
            efd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, self.file_mode, dir_fd=mfd)
            try:
                os.fchown(efd, self.uid, self.gid)
                os.fchmod(efd, self.file_mode)
                _write_all(efd, data)
                os.fsync(efd)
            finally:
                os.close(efd)
            os.rename(tmp, name, src_dir_fd=mfd, dst_dir_fd=mfd)
        finally:
            os.close(mfd)

    def owner(self) -> int | None:
        """The uid in ``.libreport/owner`` (``None`` if absent or invalid)."""
        try:
            mfd = os.open(META_DIR, _DIR_FLAGS, dir_fd=self._fd_checked())
        except OSError:
            return None
        try:
            efd = os.open(OWNER_META, os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW, dir_fd=mfd)
        except OSError:
            return None
        finally:
            os.close(mfd)
        try:
            if not stat.S_ISREG(os.fstat(efd).st_mode):
                return None
            return elements.parse_number(os.read(efd, elements.MAX_NUMBER_FILE_BYTES + 1))
        finally:
            os.close(efd)

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
        spool, new_name = os.path.split(self.path)
        spool_fd = _open_dir(spool or ".")
        try:
            base = self._wanted_name or new_name[: -len(NEW_SUFFIX)]
            for candidate in _candidate_names(base):
                # rename() would silently replace an empty directory: look before leaping.
                if _lexists(candidate, spool_fd):
                    continue
                try:
                    os.rename(new_name, candidate, src_dir_fd=spool_fd, dst_dir_fd=spool_fd)
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                        continue
                    raise
                break
        finally:
            os.close(spool_fd)
        self.path = os.path.join(spool, candidate)
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
        then rmdir retried (a racing locker sees no ``time`` and backs off)."""
        fd = self._fd_checked()
        try:
            _remove_dir_contents(fd, META_DIR)
            os.rmdir(META_DIR, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            os.unlink(META_DIR, dir_fd=fd)  # a file or symlink squatting the name
        saw_lock = _remove_dir_contents(fd, None, skip_lock=True)
        if saw_lock:  # ours (recursively or not): the directory is going away
            try:
                os.unlink(LOCK_NAME, dir_fd=fd)
            except FileNotFoundError:
                pass
        self.locked = False
        self._owns_lock = False
        os.close(fd)
        self._fd = -1
        for _ in range(RMDIR_RETRIES):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
                    raise ProblemDirError(f"can't remove '{self.path}': {exc.strerror}") from None
                last = exc
            time.sleep(RMDIR_WAIT)
        raise ProblemDirError(f"can't remove '{self.path}': {last.strerror}")


def iter_problem_dirs(spool: str) -> Iterator[str]:
    """Paths of the valid problem directories directly in *spool*, sorted by name.

    Symlinks are never followed, ``*.new`` directories (being created) are skipped, and
    so is anything without a valid ``time`` and non-empty ``type``. No locks are taken.
    """
    try:
        spool_fd = _open_dir(spool)
    except FileNotFoundError:
        return
    try:
        with os.scandir(spool_fd) as it:
            names = sorted(e.name for e in it if e.is_dir(follow_symlinks=False)
                           and not e.name.endswith(NEW_SUFFIX))
        for name in names:
            if _is_valid_at(spool_fd, name):
                yield os.path.join(spool, name)
    finally:
        os.close(spool_fd)


def is_problem_dir(path: str) -> bool:
    """True when *path* is (not a symlink to) a directory with a valid ``time`` and ``type``."""
    try:
        fd = os.open(_strip_slashes(path), _DIR_FLAGS)
    except OSError:
        return False
    try:
        return _dir_is_valid(fd)
    finally:
        os.close(fd)


# -------------------------------------------------------------------- helpers


class _SyncingFile:
    """A write-only binary file over an fd that fsyncs before closing."""

    def __init__(self, fd: int, mode: str) -> None:
        self._file = os.fdopen(fd, mode)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._file, attr)

    def write(self, data: bytes) -> int:
        return self._file.write(data)

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def __enter__(self) -> _SyncingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_name(name: str) -> None:
    if not elements.is_valid_element_name(name):
        raise ProblemDirError(f"'{name}' is not a valid element name")


def _strip_slashes(path: str) -> str:
    # "link/" would make the kernel follow the symlink despite O_NOFOLLOW.
    return path.rstrip("/") or "/"


def _open_dir(path: str) -> int:
    return os.open(path, _DIR_FLAGS)


def _lexists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _candidate_names(base: str) -> Iterator[str]:
    yield base
    n = 2
    while True:
        yield f"{base}.{n}"
        n += 1


def _read_all(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _try_lock(dir_fd: int, pid: str) -> tuple[str, str]:
    """libreport ``create_symlink_lockfile_at``: ("locked"|"ours"|"busy", holder pid)."""
    while True:
        try:
            os.symlink(pid, LOCK_NAME, dir_fd=dir_fd)
            return "locked", pid
        except FileExistsError:
            pass
        try:
            holder = os.readlink(LOCK_NAME, dir_fd=dir_fd)
        except FileNotFoundError:
            time.sleep(SYMLINK_RETRY_WAIT)  # unlocked meanwhile; don't spin
            continue
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # .lock is not a symlink: treat as stale junk
                holder = ""
            else:
                raise
        if holder == pid:
            return "ours", pid  # recursive lock: not ours to unlink on close
        if holder.isascii() and holder.isdigit() and os.path.exists(f"/proc/{holder}"):
            return "busy", holder
        # Stale: its holder died (or the target is garbage). It may be gone already.
        try:
            os.unlink(LOCK_NAME, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise ProblemDirError("'.lock' is a directory") from None


def _dir_is_valid(fd: int) -> bool:
    try:
        tfd = os.open("time", os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW, dir_fd=fd)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(tfd).st_mode):
            return False
        if elements.parse_number(os.read(tfd, elements.MAX_NUMBER_FILE_BYTES + 1)) is None:
            return False
    finally:
        os.close(tfd)
    try:
        yfd = os.open("type", os.O_RDONLY | os.O_NONBLOCK | _O_NOFOLLOW, dir_fd=fd)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(yfd).st_mode):
            return False
        return bool(elements.load_text(os.read(yfd, 4096)))
    finally:
        os.close(yfd)


def _is_valid_at(spool_fd: int, name: str) -> bool:
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=spool_fd)
    except OSError:
        return False
    try:
        return _dir_is_valid(fd)
    finally:
        os.close(fd)


def _remove_dir_contents(parent_fd: int, name: str | None, *, skip_lock: bool = False) -> bool:
    """Remove everything inside *name* (relative to *parent_fd*; None = parent itself),
    never following symlinks. Returns whether a ``.lock`` entry was skipped."""
    fd = parent_fd if name is None else os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    saw_lock = False
    try:
        with os.scandir(fd) as it:
            entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
        for entry, is_dir in entries:
            if skip_lock and entry == LOCK_NAME:
                saw_lock = True
                continue
            if is_dir:
                _remove_dir_contents(fd, entry)
                os.rmdir(entry, dir_fd=fd)
            else:
                try:
                    os.unlink(entry, dir_fd=fd)
                except FileNotFoundError:
                    pass
    finally:
        if name is not None:
            os.close(fd)
    return saw_lock
