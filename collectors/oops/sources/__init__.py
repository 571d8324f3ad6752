"""Kernel log sources: thin readers that turn where the host keeps its kernel log into lines.

One module per source (:mod:`.kmsg`, :mod:`.journal`, :mod:`.syslog`, :mod:`.pstore`,
:mod:`.kdump`, :mod:`.files`), each a small :class:`~.base.Source` subclass with a
``name``, ``exists()`` and ``units(state)``. Shared pieces: :mod:`.logfile` reads rotated
and compressed files for the file-based sources, :mod:`.command` runs ``dmesg`` and
``journalctl``, :mod:`.kmsg_records` and :mod:`.pstore_records` are the pure record
formats, and :mod:`.registry` lists the sources explicitly. Every path and command is injectable so tests can
point a source at a fixture tree or a private journal file.

Sources never parse reports; :mod:`collectors.oops.parse` does that.
"""

from __future__ import annotations

from collectors.oops.sources.base import (
    MAX_LINE,
    LogUnit,
    Source,
    decode_line,
    split_text_lines,
)
from collectors.oops.sources.command import COMMAND_TIMEOUT, CommandResult, run_command
from collectors.oops.sources.files import FileSource
from collectors.oops.sources.journal import JournalSource
from collectors.oops.sources.kdump import KdumpSource
from collectors.oops.sources.kmsg import KmsgSource, read_boot_id
from collectors.oops.sources.kmsg_records import (
    KMSG_READ,
    KmsgRecord,
    kmsg_lines,
    parse_kmsg_record,
    read_kmsg_records,
)
from collectors.oops.sources.logfile import LogFile, file_units
from collectors.oops.sources.pstore import PstoreSource
from collectors.oops.sources.pstore_records import (
    PstoreEvent,
    PstoreRecord,
    assemble_dmesg,
    inflate_pstore,
    read_pstore_record,
)
from collectors.oops.sources.registry import SOURCE_NAMES, SOURCES, default_sources, make_source
from collectors.oops.sources.syslog import SyslogSource, rotated_family

__all__ = [
    "MAX_LINE", "KMSG_READ", "COMMAND_TIMEOUT", "SOURCE_NAMES", "SOURCES", "Source", "LogUnit",
    "decode_line", "split_text_lines", "CommandResult", "run_command", "LogFile", "file_units",
    "FileSource", "rotated_family", "SyslogSource", "KdumpSource", "KmsgRecord",
    "parse_kmsg_record", "kmsg_lines", "read_boot_id", "KmsgSource", "read_kmsg_records",
    "JournalSource", "PstoreRecord", "inflate_pstore", "read_pstore_record", "PstoreEvent",
    "assemble_dmesg", "PstoreSource", "default_sources", "make_source",
]
