"""The spool: where problem directories live, how they are named and found.

Names follow libreport's ``create_dump_dir_ext``; a directory being built is called
``NAME.new`` until it is committed. Validity is libreport's ``dd_check``: a regular
``time`` holding a number and a regular, non-empty ``type``.

Standard library only and cheap to import: the crash hook imports this module.
"""

from __future__ import annotations

import errno
import os

from reporter import elements
from reporter.dirfs import lexists, open_dir, read_regular_at, strip_slashes

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs milliseconds at hook start-up
    from collections.abc import Iterator

DEFAULT_SPOOL = "/var/spool/crashkit"
SPOOL_ENV = "CRASHKIT_SPOOL"
NEW_SUFFIX = ".new"


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


def candidate_names(base: str) -> Iterator[str]:
    """*base*, then ``base.2``, ``base.3``... without end."""
    yield base
    n = 2
    while True:
        yield f"{base}.{n}"
        n += 1


def mkdir_new(spool_fd: int, name: str, mode: int) -> str:
    """Create ``BASE.new`` in *spool_fd* for the first free BASE of :func:`candidate_names`
    (neither BASE nor ``BASE.new`` taken); returns BASE."""
    for base in candidate_names(name):
        if lexists(base, spool_fd):
            continue
        try:
            os.mkdir(base + NEW_SUFFIX, mode, dir_fd=spool_fd)
        except FileExistsError:
            continue
        return base
    raise AssertionError("unreachable")  # pragma: no cover - candidate_names is endless


def rename_new(spool_fd: int, new_name: str, base: str) -> str:
    """Rename *new_name* in *spool_fd* to the first free name of :func:`candidate_names`
    (*base*); returns it."""
    for candidate in candidate_names(base):
        # rename() would silently replace an empty directory: look before leaping.
        if lexists(candidate, spool_fd):
            continue
        try:
            os.rename(new_name, candidate, src_dir_fd=spool_fd, dst_dir_fd=spool_fd)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                continue
            raise
        return candidate
    raise AssertionError("unreachable")  # pragma: no cover - candidate_names is endless


def dir_is_valid(fd: int) -> bool:
    """True when the directory at *fd* has a valid ``time`` and a non-empty ``type``."""
    data = read_regular_at(fd, "time", elements.MAX_NUMBER_FILE_BYTES + 1)
    if data is None or elements.parse_number(data) is None:
        return False
    data = read_regular_at(fd, "type", elements.TYPE_PROBE_SIZE)
    return data is not None and bool(elements.load_text(data))


def iter_problem_dirs(spool: str) -> Iterator[str]:
    """Paths of the valid problem directories directly in *spool*, sorted by name.

    Symlinks are never followed, ``*.new`` directories (being created) are skipped, and
    so is anything without a valid ``time`` and non-empty ``type``. No locks are taken.
    """
    try:
        spool_fd = open_dir(spool)
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
    return _is_valid_at(None, strip_slashes(path))


def _is_valid_at(dir_fd: int | None, name: str) -> bool:
    try:
        fd = open_dir(name, dir_fd)
    except OSError:
        return False
    try:
        return dir_is_valid(fd)
    finally:
        os.close(fd)
