"""Source: the kernel log kdump saved from a crashed kernel under /var/crash."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterator
from typing import Any

from collectors.oops.sources.base import LogUnit, Source
from collectors.oops.sources.logfile import LogFile, file_units


class KdumpSource(Source):
    """The kernel log kdump saved from a crashed kernel.

    Fedora/RHEL ``kdump`` writes ``/var/crash/<host>-<date>/vmcore-dmesg.txt``; Debian's
    ``kdump-tools`` writes ``/var/crash/<YYYYMMDDHHMM>/dmesg.<YYYYMMDDHHMM>``.
    """

    name = "kdump"
    description = "kernel logs kdump saved from crashed kernels under /var/crash"

    def __init__(self, crashdir: str = "/var/crash") -> None:
        self.crashdir = crashdir

    def paths(self) -> list[str]:
        """The saved kernel logs, oldest directory first."""
        base = glob.escape(self.crashdir)
        found = glob.glob(os.path.join(base, "*", "vmcore-dmesg.txt"))
        found += glob.glob(os.path.join(base, "*", "dmesg.[0-9]*"))
        return sorted(found)

    def exists(self) -> bool:
        """True when kdump left a kernel log."""
        return bool(self.paths())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per saved kernel log; trusted only when root wrote it (kdump_trust)."""
        yield from file_units(self.name, self.paths(), state, trust=kdump_trust)


def kdump_trust(logf: LogFile) -> str | None:
    """None when only root can have written the kdump log: the file (as opened) and its
    directory are owned by root and writable by no one else. /var/crash is world-writable on
    some distributions (Ubuntu: 1777, for apport), so a user could plant a directory there."""
    problems = _root_only("the file", logf.stat)
    parent = os.path.dirname(logf.path)
    try:
        st = os.lstat(parent)
    except OSError as exc:
        problems.append(f"its directory cannot be checked ({exc.strerror})")
    else:
        if not stat.S_ISDIR(st.st_mode):
            problems.append("its directory is a symbolic link")
        problems += _root_only("its directory", st)
    if not problems:
        return None
    return f"it was read from the kdump log {logf.path}, and {' and '.join(problems)}"


def _root_only(what: str, st: os.stat_result) -> list[str]:
    out = []
    if st.st_uid != 0:
        out.append(f"{what} is owned by uid {st.st_uid}, not root")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        out.append(f"{what} is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'}")
    return out
