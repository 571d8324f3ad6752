"""Element reads and writes of an open problem directory (docs/formats/libreport.md §1.2).

:class:`ElementIO` is the element half of :class:`reporter.dumpdir.DumpDir`, which adds
opening, locking, creation and deletion: one file per element, opened relative to the
directory's descriptor with ``O_NOFOLLOW`` (:mod:`reporter.dirfs`), libreport's text and
number rules (:mod:`reporter.elements`), and the ``time`` / ``count`` bookkeeping.

Standard library only and cheap to import: the crash hook imports this module.
"""

from __future__ import annotations

import os
import stat
import time

from reporter import dirfs, elements
from reporter.errors import ProblemDirError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at hook start-up
    from typing import BinaryIO


class ElementIO:
    """Element access over the directory descriptor ``_fd`` (``-1`` once closed).

    Writes need ``locked`` and not ``readonly``; new files get ``file_mode`` and
    ``uid``:``gid`` (-1: leave as created).
    """

    path: str
    file_mode: int
    uid: int
    gid: int
    readonly: bool
    locked: bool
    _fd: int

    # ---------------------------------------------------------------- reading

    def _fd_checked(self) -> int:
        if self._fd < 0:
            raise ProblemDirError(f"problem directory '{self.path}' is closed")
        return self._fd

    def _open_element(self, name: str) -> int | None:
        """O_NOFOLLOW-open element *name* for reading (:func:`reporter.dirfs.open_element`)."""
        check_name(name)
        return dirfs.open_element(self._fd_checked(), name, self.path)

    def load_bytes(self, name: str) -> bytes | None:
        """Raw content of element *name*, ``None`` if it does not exist."""
        fd = self._open_element(name)
        if fd is None:
            return None
        try:
            return dirfs.read_all(fd)
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
        check_name(name)
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

    def load_bounded(self, name: str, limit: int) -> tuple[int, bytes | None] | None:
        """``(size, data)`` of element *name*, through one descriptor: *data* is the content
        when the element has at most *limit* bytes, else ``None`` and nothing is read.
        ``None`` if the element does not exist."""
        fd = self._open_element(name)
        if fd is None:
            return None
        try:
            return dirfs.read_bounded(fd, limit)
        finally:
            os.close(fd)

    def entry_problems(self) -> dict[str, str]:
        """Entries of the directory that are not readable elements, with the reason: not a
        regular file, more than one hard link, or an invalid name (``.lock`` and
        ``.libreport`` are the protocol's own and not listed). Nothing is opened."""
        problems: dict[str, str] = {}
        with os.scandir(self._fd_checked()) as it:
            for entry in it:
                if entry.name in elements.RESERVED_NAMES:
                    continue
                try:
                    problem = dirfs.entry_problem(entry.stat(follow_symlinks=False))
                except FileNotFoundError:
                    continue  # removed meanwhile
                if problem is None and not elements.is_valid_element_name(entry.name):
                    problem = "not a valid element name"
                if problem is not None:
                    problems[entry.name] = problem
        return problems

    def _invalid_element(self) -> str | None:
        """libreport ``dd_check``: name of the first of time/type that is missing or invalid.

        Reads are bounded: a number has at most 24 bytes, and ``type`` is judged on its first
        4 KiB, as :func:`reporter.spool.dir_is_valid` does.
        """
        for name, limit in (("time", elements.MAX_NUMBER_FILE_BYTES + 1), ("type", elements.TYPE_PROBE_SIZE)):
            try:
                fd = self._open_element(name)
            except ProblemDirError:
                return name
            if fd is None:
                return name
            try:
                data = os.read(fd, limit)
            finally:
                os.close(fd)
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
        check_name(name)
        fd = self._writable_fd()
        try:
            dirfs.unlink_if_exists(name, fd)
        except IsADirectoryError:
            raise ProblemDirError(f"element '{name}' of '{self.path}' is a directory") from None
        try:
            efd = os.open(name, dirfs.CREATE_FLAGS, self.file_mode, dir_fd=fd)
        except OSError as exc:
            raise ProblemDirError(f"can't create element '{name}' of '{self.path}': {exc.strerror}") from exc
        dirfs.give_file(efd, self.file_mode, self.uid, self.gid)
        # Duck-typed BinaryIO: every method it does not override is the file's own.
        return dirfs.SyncingFile(efd, "wb")  # type: ignore[return-value]

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
        check_name(name)
        dirfs.unlink_if_exists(name, self._writable_fd())

    def add_reported_to(self, line: str) -> None:
        """Append *line* to ``reported_to`` unless an identical line is already there."""
        from reporter.reported_to import append_line

        updated = append_line(self.load_text("reported_to"), line)
        if updated is not None:
            self.save_text("reported_to", updated)


def check_name(name: str) -> None:
    """Raise :class:`ProblemDirError` unless *name* is a valid element name."""
    if not elements.is_valid_element_name(name):
        raise ProblemDirError(f"'{name}' is not a valid element name")
