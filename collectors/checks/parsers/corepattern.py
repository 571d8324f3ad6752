"""``/proc/sys/kernel/core_pattern``: which handler it names (pure)."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Basenames of the known pipe handlers.
KNOWN_HANDLERS = {
    "crashkit-hook": "crashkit",
    "systemd-coredump": "systemd-coredump",
    "apport": "apport",
    "abrt-hook-ccpp": "abrt",
    "coredump-helper": "abrt",
    "abrt-hook-ccpp.sh": "abrt",
}


@dataclass(frozen=True)
class CorePattern:
    raw: str
    pipe: bool
    executable: str | None     # the helper of a pipe pattern
    args: tuple[str, ...]
    handler: str               # crashkit | systemd-coredump | apport | abrt | other | file

    @property
    def relative_file(self) -> bool:
        """A file pattern relative to the crashing process's cwd (the default ``core``)."""
        return not self.pipe and not self.raw.startswith("/")


def parse_core_pattern(text: str) -> CorePattern:
    raw = text.rstrip("\n")
    if raw.startswith("|"):
        words = raw[1:].strip().split()
        exe = words[0] if words else None
        handler = KNOWN_HANDLERS.get(os.path.basename(exe or ""), "other")
        return CorePattern(raw, True, exe, tuple(words[1:]), handler)
    return CorePattern(raw, False, None, (), "file")
