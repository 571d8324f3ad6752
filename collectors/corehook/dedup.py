"""Duplicate crashes: one problem directory per bug, with ``count`` and ``last_occurrence``.

The duplicate key (abrtd's candidate rule, docs/formats/libreport.md §6.4, plus our signature):
``uid``, ``type``, ``executable``, ``container_id`` and a crash signature — the
``duphash`` when post-processing computed one, otherwise executable + signal + the crash
address as an offset in its module (:meth:`coripper.minimizer.stream.MinimizeReport.crash_site`,
stable across ASLR). The hook stores the SHA-1 of the key in the ``crash_signature``
element so later lookups compare one small file instead of re-deriving anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection

from reporter.dumpdir import DumpDir, iter_problem_dirs

SIGNATURE_ELEMENT = "crash_signature"
DUPHASH_SIGNATURE_ELEMENT = "crash_signature_duphash"
#: Occurrences in ``count`` whose core the hook never read (shed, refused by the kernel).
WITHOUT_CORE_ELEMENT = "counted_without_core"
_MAX_SIG = 256
#: Seconds :func:`bump` waits for another holder of the directory's lock (abrtd, a reporter).
BUMP_TIMEOUT = 10.0


def site_signature(executable: str, signal: int, module: str | None, offset: int | None) -> str:
    """The pre-backtrace crash signature text (pure)."""
    where = f"{module}+0x{offset:x}" if module and offset is not None else "unknown"
    return f"site\0{executable}\0{signal}\0{where}"


def proc_signature(executable: str, signal: int) -> str:
    """The signature /proc alone gives (no core read: load shedding, kernel refusals; pure)."""
    return f"proc\0{executable}\0{signal}"


def duphash_signature(duphash: str) -> str:
    return f"duphash\0{duphash}"


def container_key(container: str | None, container_id: str | None) -> str | None:
    """The container part of the duplicate key: technology and id, so that two runtimes'
    containers with one name never share a key (``None`` on the host; pure)."""
    if not container_id:
        return None
    return f"{container}/{container_id}" if container else container_id


def duplicate_key(uid: int | str, type_: str, executable: str, container_id: str | None,
                  signature: str) -> str:
    """SHA-1 hex of the duplicate key (pure)."""
    text = "\0".join((str(uid), type_, executable, container_id or "", signature))
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()


def _read_small(dir_path: str, name: str) -> str | None:
    try:
        fd = os.open(os.path.join(dir_path, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return os.read(fd, _MAX_SIG).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


def find_duplicate(spool: str, key: str, *, element: str = SIGNATURE_ELEMENT,
                   exclude: str | None = None, skip: Collection[str] = ()) -> str | None:
    """Oldest problem directory in *spool* whose *element* equals *key* (``None`` if none),
    leaving out *exclude* and the paths in *skip*."""
    excluded = {os.path.realpath(p) for p in (*skip, *([exclude] if exclude else []))}
    best: tuple[int, str] | None = None
    for path in iter_problem_dirs(spool):
        if excluded and os.path.realpath(path) in excluded:
            continue
        if _read_small(path, element) != key:
            continue
        first = _read_small(path, "time")
        when = int(first) if first and first.isdigit() else 0
        if best is None or when < best[0]:
            best = (when, path)
    return best[1] if best else None


def bump(path: str, when: float, by: int = 1, timeout: float | None = None,
         without_core: int = 0) -> int:
    """Add *by* occurrences to the directory at *path* (count, last_occurrence), of which
    *without_core* had no core read (``counted_without_core``); returns the new count.
    Raises :class:`~reporter.errors.LockedError` after *timeout* seconds (default
    :data:`BUMP_TIMEOUT`) of somebody else holding its lock."""
    wait = BUMP_TIMEOUT if timeout is None else timeout
    with DumpDir.open(path, wait=True, timeout=wait) as dd:
        count = dd.count() or 1
        count = dd.increment_count(when) if by == 1 else count + by
        if by != 1:
            dd.save_int("count", count)
            first = dd.time() or 0
            dd.save_int("last_occurrence", max(int(when), first))
        if without_core:
            dd.save_int(WITHOUT_CORE_ELEMENT, (dd.load_int(WITHOUT_CORE_ELEMENT) or 0) + without_core)
        return count
