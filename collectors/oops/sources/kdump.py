"""Source: the kernel log kdump saved from a crashed kernel under /var/crash."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from typing import Any

from collectors.oops.sources.base import LogUnit, Source
from collectors.oops.sources.logfile import file_units


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
        """One unit per saved kernel log."""
        yield from file_units(self.name, self.paths(), state)
