"""Source: the syslog daemon's files in /var/log, with their rotated siblings."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from typing import Any

from collectors.oops.sources.base import LogUnit, Source
from collectors.oops.sources.logfile import LogFile, file_units

# Rotated siblings: kern.log.1, kern.log.2.gz, messages-20251124, messages-20251124.xz
_ROTATED = re.compile(r"^(?:\.(?P<num>\d+)|-(?P<date>\d{8,10}))(?:\.(?:gz|xz|bz2|zst))?$")


def rotated_family(base: str) -> list[str]:
    """``base`` and its rotated siblings, oldest first: dated ones (``-YYYYMMDD``) by date,
    then numbered ones from the highest number (oldest) down, then ``base`` itself."""
    dated: list[tuple[int, str]] = []
    numbered: list[tuple[int, str]] = []
    for path in glob.glob(glob.escape(base) + ".*") + glob.glob(glob.escape(base) + "-*"):
        m = _ROTATED.match(path[len(base):])
        if not m:
            continue
        if m.group("num") is not None:
            numbered.append((-int(m.group("num")), path))
        else:
            dated.append((int(m.group("date")), path))
    ordered = [p for _k, p in sorted(dated)] + [p for _k, p in sorted(numbered)]
    if os.path.lexists(base):
        ordered.append(base)
    return ordered


class SyslogSource(Source):
    """Kernel lines in the syslog daemon's files, with rotated ``.N``/``.gz``/``.xz``/``.bz2``
    siblings.

    Only one family is read, the first that exists of ``kern.log`` (Debian/Ubuntu: every
    kernel line), ``messages`` (Fedora/RHEL: every kernel line; on Debian it holds only
    the info..warn levels, so a report there would be cut) and ``syslog``. Reading two of
    them would find every report twice.
    """

    name = "syslog"
    description = "kern.log, messages or syslog in /var/log, with rotated siblings"
    BASES = ("kern.log", "messages", "syslog")

    def __init__(self, logdir: str = "/var/log") -> None:
        self.logdir = logdir

    def family(self) -> list[str]:
        """The files this source reads, oldest first."""
        for base in self.BASES:
            paths = rotated_family(os.path.join(self.logdir, base))
            if paths:
                return paths
        return []

    def exists(self) -> bool:
        """True when one of the syslog files exists."""
        return bool(self.family())

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit per file of the family, oldest first; all unauthenticated (any local user
        can write a line tagged ``kernel`` to the syslog daemon: ``logger -t kernel``)."""
        paths = self.family()
        live = [p for p in paths if os.path.basename(p) in self.BASES]
        yield from file_units(self.name, paths, state, live=live, trust=syslog_trust)


def syslog_trust(logf: LogFile) -> str:
    """Why lines of a syslog file are not known to be the kernel's."""
    return (f"it was read from the syslog file {logf.path}, where any local user can write lines "
            f"tagged \"kernel\" (logger -t kernel)")
