"""Source: a kernel log file named on the command line (``--source PATH``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from collectors.oops.sources.base import LogUnit, Source
from collectors.oops.sources.logfile import LogFile, file_units


class FileSource(Source):
    """A log file named on the command line (plain or compressed)."""

    name = "file"
    description = "a log file named on the command line (plain or compressed)"

    def __init__(self, path: str, name: str = "file") -> None:
        self.name = name
        self.path = os.path.abspath(path)

    def exists(self) -> bool:
        """True when the file exists."""
        return os.path.exists(self.path)

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """The file as one unit, unauthenticated (nothing says who wrote its lines)."""
        # Keep marks of every file ever given, so alternating FILE arguments keep their place.
        section = state.setdefault("by_path", {})
        sub = section.setdefault(self.path, {})
        yield from file_units(self.name, [self.path], sub, trust=_file_trust)


def _file_trust(logf: LogFile) -> str:
    return f"it was read from {logf.path}, a log file named on the command line: nothing says who wrote its lines"
