"""Every entry of the spool, valid or not, with the reason a bad one is bad (shared by the
``reporting.spool_entries`` check and diagnose's problem-directory section)."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass

from reporter.spool import NEW_SUFFIX

#: A ``NAME.new`` directory older than this is abandoned, not being written.
NEW_GRACE = 600.0
#: Hidden spool files of the hook and the oops collector (cursors, locks, rate state).
OWN_FILES = (".oops-cursors", ".crashkit", ".lock", ".rate", ".spool")


@dataclass(frozen=True)
class SpoolEntry:
    name: str
    path: str
    problem: str | None   # None: a valid problem directory (or our own bookkeeping file)


def scan_spool(spool: str, now: float | None = None) -> list[SpoolEntry]:
    """All entries directly in *spool*, sorted by name, never following symlinks."""
    from reporter.dumpdir import is_problem_dir

    now = time.time() if now is None else now
    try:
        names = sorted(os.listdir(spool))
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(spool, name)
        try:
            st = os.lstat(path)
        except OSError as exc:
            out.append(SpoolEntry(name, path, f"cannot stat: {exc.strerror}"))
            continue
        if name.startswith(OWN_FILES) or (name.startswith(".") and not stat.S_ISDIR(st.st_mode)):
            continue
        out.append(SpoolEntry(name, path, _problem(path, name, st, now, is_problem_dir)))
    return out


def _problem(path: str, name: str, st: os.stat_result, now: float, valid: object) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link, not a directory"
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if name.endswith(NEW_SUFFIX):
        return None if now - st.st_mtime < NEW_GRACE else \
            f"abandoned while being written ({int(now - st.st_mtime)} s old)"
    if callable(valid) and valid(path):
        return None
    try:
        names = set(os.listdir(path))
    except OSError as exc:
        return f"cannot be listed: {exc.strerror}"
    if "time" not in names:
        return "no 'time' element"
    if "type" not in names:
        return "no 'type' element"
    return "'time' is not a number or 'type' is empty (or not regular files)"
