"""The explicit list of kernel log sources, and picking them by ``--source`` value."""

from __future__ import annotations

import os

from collectors.oops.sources.base import Source
from collectors.oops.sources.files import FileSource
from collectors.oops.sources.journal import JournalSource
from collectors.oops.sources.kdump import KdumpSource
from collectors.oops.sources.kmsg import KmsgSource
from collectors.oops.sources.pstore import PstoreSource
from collectors.oops.sources.syslog import SyslogSource

# Every named source, in the order a default run reads them (no directory scanning: a new
# source is added here).
SOURCES: dict[str, type[Source]] = {
    cls.name: cls for cls in (KmsgSource, JournalSource, SyslogSource, PstoreSource, KdumpSource)
}
SOURCE_NAMES = tuple(SOURCES)


def default_sources() -> list[Source]:
    """Every source, reading the real host."""
    return [cls() for cls in SOURCES.values()]


def make_source(spec: str) -> Source:
    """Source for a ``--source`` value: a source name, or a path to a log file.

    Raises ``ValueError`` for an unknown name that is not an existing file.
    """
    if spec in SOURCES:
        return SOURCES[spec]()
    if os.path.isdir(spec):
        raise ValueError(f"--source {spec}: is a directory, not a log file")
    if os.path.exists(spec):
        return FileSource(spec)
    raise ValueError(f"--source {spec}: not one of {', '.join(SOURCE_NAMES)} and no such file")
