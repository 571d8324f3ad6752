"""Reading the spool for ``crashkit list`` / ``info`` / ``gdb`` / ``dump``: one summary row per
problem directory, and the directories that cannot be read, with the reason.

A row is the ``crashkit list --json`` object (keys in docs/cli.md). Every element read is
bounded, through one descriptor opened without following links (:mod:`reporter.dirfs`, as
:class:`DumpDir` reads); an element that cannot be read is ``null`` in the row and named in
``problems``, and the row stays. A spool entry that cannot be opened at all (permissions, a
lock held too long) is listed too, with ``problems`` = ``{".": reason}``, other fields ``null``.

A scan does not lock a directory nobody is writing: it reads it unlocked when no ``.lock``
is there and the directory's mtime (which every element write and the lock itself move) is
the same before and after; otherwise it reads it again under the lock, as libreport's
readers do. Taking and dropping 100 locks costs more than reading the 100 directories.
"""

from __future__ import annotations

import os
import stat

from reporter import elements, reported_to
from reporter.dirfs import lexists, open_dir, open_element, read_bounded
from reporter.dirlock import LOCK_NAME
from reporter.dumpdir import DumpDir
from reporter.errors import BadElementError, ProblemDirError, ReporterError
from reporter.spool import NEW_SUFFIX

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections.abc cost milliseconds at start-up
    from collections.abc import Callable, Iterator
    from typing import Any

#: How long a command waits for a live lock holder (e.g. abrtd running an event).
LOCK_TIMEOUT = 10.0
#: The stored core, in the order the hook and libreport name it.
CORE_ELEMENTS = ("coredump", "coredump.zst")
#: The row's key for a problem with the directory itself.
DIRECTORY_KEY = "."
_NUMBERS = ("count", "pid", "global_pid", "uid", "signal")
_TEXTS = ("type", "executable", "reason", "container", "container_id", "container_hostname")


# A loader reads element NAME with a LIMIT: (size, data or None), None when it is missing,
# BadElementError when it is not an element (DumpDir.load_bounded's contract).


def _text(load: Callable[[str, int], tuple[int, bytes | None] | None], name: str,
          problems: dict[str, str]) -> str | None:
    """Text element *name* read with libreport's text limit; ``None`` if missing or not read."""
    try:
        got = load(name, elements.MAX_TEXT_SIZE)
    except BadElementError as exc:
        problems.setdefault(exc.element, exc.problem)
        return None
    if got is None:
        return None
    size, data = got
    if data is None:
        problems.setdefault(name, f"{size} bytes, more than the {elements.MAX_TEXT_SIZE} of a "
                                  "text element: not read")
        return None
    return elements.load_text(data)


def read_text(dd: DumpDir, name: str, problems: dict[str, str]) -> str | None:
    """Text element *name* of an open directory, bounded (``None``: missing or not read, with
    the reason in *problems*)."""
    return _text(dd.load_bounded, name, problems)


def _number(load: Callable[[str, int], tuple[int, bytes | None] | None], name: str,
            problems: dict[str, str]) -> int | None:
    try:
        got = load(name, elements.MAX_NUMBER_FILE_BYTES)
    except BadElementError as exc:
        problems.setdefault(exc.element, exc.problem)
        return None
    return None if got is None or got[1] is None else elements.parse_number(got[1])


def _stored_core(load: Callable[[str, int], tuple[int, bytes | None] | None],
                 problems: dict[str, str]) -> tuple[str, int] | None:
    found: tuple[str, int] | None = None
    for name in CORE_ELEMENTS:
        try:
            got = load(name, 0)  # only the size: nothing is read
        except BadElementError as exc:
            problems.setdefault(exc.element, exc.problem)
            continue
        if got is not None:
            if got[0] > 0:
                return name, got[0]
            found = found or (name, 0)
    return found


def stored_core(dd: DumpDir) -> tuple[str, int] | None:
    """``(element, size on disk)`` of the stored core: ``coredump`` unless it is empty or
    missing, else ``coredump.zst``; ``None`` when there is neither (or neither is readable)."""
    return _stored_core(dd.load_bounded, {})


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def _entry_problems(fd: int) -> dict[str, str]:
    """Entries of the directory at *fd* that are not regular files or have invalid names,
    from the listing's file types (``stat`` only for what is not a regular file; hard links
    are caught where an element is read, by :func:`reporter.dirfs.open_element`)."""
    problems: dict[str, str] = {}
    with os.scandir(fd) as it:
        for entry in it:
            name = entry.name
            if name in elements.RESERVED_NAMES:
                continue
            if not entry.is_file(follow_symlinks=False):
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue  # removed meanwhile
                kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
                problems[name] = f"{kind}, not followed" if stat.S_ISLNK(mode) else f"{kind}, not a regular file"
            elif not (len(name) <= elements.MAX_NAME_BYTES and name.isascii() and name.isprintable()) \
                    and not elements.is_valid_element_name(name):
                problems[name] = "not a valid element name"
    return problems


def _summary(path: str, load: Callable[[str, int], tuple[int, bytes | None] | None],
             problems: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {"directory": path, "name": os.path.basename(path)}
    first = _number(load, "time", problems)
    last = _number(load, "last_occurrence", problems)
    row["time"] = first
    row["last_occurrence"] = first if last is None else last if first is None else max(last, first)
    for name in _TEXTS:
        row[name] = _text(load, name, problems) or None
    for name in _NUMBERS:
        row[name] = _number(load, name, problems)
    core = _stored_core(load, problems)
    row["core"], row["core_size"] = core if core is not None else (None, None)
    last_url: dict[str, str | None] = {}
    for record in reported_to.parse(_text(load, "reported_to", problems) or ""):
        last_url[record.label] = record.url  # the last record of each label wins
    row["reported"] = [{"label": k, "url": v} for k, v in last_url.items()] if last_url else False
    row["problems"] = dict(sorted(problems.items()))
    return row


def summarize(dd: DumpDir) -> dict[str, Any]:
    """The ``crashkit list --json`` object of one open (locked) problem directory.

    Every read is bounded; an element that cannot be read (not a regular file, hard-linked,
    too big) is ``null`` and named in ``problems``, with the other fields still filled.
    """
    return _summary(dd.path, dd.load_bounded, dd.entry_problems())


def _fd_loader(fd: int, path: str) -> Callable[[str, int], tuple[int, bytes | None] | None]:
    def load(name: str, limit: int) -> tuple[int, bytes | None] | None:
        efd = open_element(fd, name, path)
        if efd is None:
            return None
        try:
            return read_bounded(efd, limit)
        finally:
            os.close(efd)
    return load


def _valid(row: dict[str, Any]) -> bool:
    return row["time"] is not None and bool(row["type"])


def _read_unlocked(spool_fd: int, name: str, path: str) -> dict[str, Any] | None:
    """The row of *name*, read without taking its lock when nobody holds it and the directory
    did not change while it was read (its mtime moves with every element written and with
    the lock itself); ``None`` when that could not be done (then: read it locked)."""
    fd = open_dir(name, spool_fd)
    try:
        before = os.fstat(fd).st_mtime_ns
        if lexists(LOCK_NAME, fd):
            return None
        row = _summary(path, _fd_loader(fd, path), _entry_problems(fd))
        if os.fstat(fd).st_mtime_ns != before or lexists(LOCK_NAME, fd):
            return None
        return row
    finally:
        os.close(fd)


def _open_row(spool_fd: int, name: str, path: str, timeout: float) -> dict[str, Any] | None:
    """The row of spool entry *name*; ``None`` when it is not a problem directory."""
    try:
        row = _read_unlocked(spool_fd, name, path)
        if row is not None:
            if _valid(row):
                return row
            if not _has_entry(spool_fd, name, "time"):
                return None  # no time at all: an ordinary directory (libreport's rule)
        with DumpDir.open(path, readonly=True, timeout=timeout) as dd:
            return summarize(dd)
    except PermissionError as exc:
        return unreadable_row(path, f"can't be opened: {exc.strerror}")
    except ProblemDirError as exc:
        if "not a problem directory" in str(exc) and not _has_entry(spool_fd, name, "time"):
            return None
        return unreadable_row(path, " ".join(str(exc).split()))
    except (ReporterError, OSError) as exc:  # vanished, or a lock held past the timeout
        if isinstance(exc, FileNotFoundError):
            return None
        return unreadable_row(path, " ".join(str(exc).split()))


def _has_entry(spool_fd: int, name: str, element: str) -> bool:
    try:
        os.stat(f"{name}/{element}", dir_fd=spool_fd, follow_symlinks=False)
    except OSError:
        return False
    return True


def unreadable_row(path: str, reason: str) -> dict[str, Any]:
    """The row of a directory that could not be opened: every field ``null`` but the reason."""
    row: dict[str, Any] = {"directory": path, "name": os.path.basename(path)}
    for key in ("time", "last_occurrence", *_TEXTS, *_NUMBERS, "core", "core_size"):
        row[key] = None
    row["reported"] = False
    row["problems"] = {DIRECTORY_KEY: reason}
    return row


def scan(spool: str, timeout: float = LOCK_TIMEOUT) -> Iterator[dict[str, Any]]:
    """Rows of every problem directory directly in *spool*, in name order: sound ones, those
    with bad elements, and those that cannot be read (with the reason). Symlinks and ``*.new``
    directories (being created) are skipped; a missing spool has no rows."""
    try:
        spool_fd = open_dir(spool)
    except FileNotFoundError:
        return
    try:
        with os.scandir(spool_fd) as it:
            names = sorted(e.name for e in it if e.is_dir(follow_symlinks=False)
                           and not e.name.endswith(NEW_SUFFIX))
        for name in names:
            row = _open_row(spool_fd, name, os.path.join(spool, name), timeout)
            if row is not None:
                yield row
    finally:
        os.close(spool_fd)


def open_row(path: str, timeout: float = LOCK_TIMEOUT) -> dict[str, Any]:
    """The row of the problem directory the user named by path (errors are raised)."""
    with DumpDir.open(path, readonly=True, timeout=timeout) as dd:
        return summarize(dd)
