"""libreport's ``Key = Value`` configuration files (docs/formats/libreport.md §3.1).

Used by ``/etc/libreport/libreport.conf``, ``/etc/libreport/plugins/*.conf`` and
``/etc/libreport/events/EVENT.conf``: a key of letters and underscores, optional
indentation, optional spaces around ``=``, the value is the rest of the line with trailing
blanks trimmed (may be empty, no quoting), ``#`` starts a comment line. Pure parser plus a
bounded reader; a missing file is an empty mapping.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

MAX_CONF_BYTES = 1 << 20
LIBREPORT_CONF = "/etc/libreport/libreport.conf"
_LINE = re.compile(r"^[ \t]*([A-Za-z][A-Za-z_]*)[ \t]*=[ \t]*(.*?)[ \t]*$")


@dataclass(frozen=True)
class KeyValueFile:
    """Settings of one file, in file order (a later key overrides), and bad lines."""

    values: dict[str, str] = field(default_factory=dict)
    bad_lines: tuple[int, ...] = ()


def parse(text: str) -> KeyValueFile:
    """Parse ``Key = Value`` text; lines that fit no rule are reported by number."""
    values: dict[str, str] = {}
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            bad.append(number)
            continue
        values[m.group(1)] = m.group(2)
    return KeyValueFile(values, tuple(bad))


def read(path: str) -> KeyValueFile:
    """Read and parse *path*; a missing or unreadable file gives an empty mapping."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return KeyValueFile()
    try:
        data = os.read(fd, MAX_CONF_BYTES)
    except OSError:
        return KeyValueFile()
    finally:
        os.close(fd)
    return parse(data.decode("utf-8", "replace"))


def split_list(value: str | None) -> list[str]:
    """libreport's list split: on the literal ``", "`` separator (comma + space), empty
    items dropped (``EXCLUDE_FROM_REPORT``, ``AlwaysExcludedElements``)."""
    if not value:
        return []
    return [item for item in value.split(", ") if item]


def parse_bool(value: str | None, default: bool = False) -> bool:
    """libreport's boolean words: yes/no, on/off, true/false (any case), 1/0."""
    if value is None:
        return default
    v = value.strip().lower()
    if v in ("yes", "on", "true", "1"):
        return True
    if v in ("no", "off", "false", "0"):
        return False
    return default
