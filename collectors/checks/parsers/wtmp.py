"""``wtmp`` records (glibc ``struct utmp``, x86-64/aarch64 layout: 384 bytes) and what they
say about the previous shutdown (pure).

A boot writes a ``BOOT_TIME`` record (user ``reboot``); a clean shutdown writes a
``RUN_LVL`` record with user ``shutdown`` before it. A boot whose next boot comes without
a ``shutdown`` record in between ended uncleanly: ``last -x`` prints ``crash`` for it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

UTMP_FORMAT = "<h2xi32s4s32s256shhiii16s20s"
UTMP_SIZE = struct.calcsize(UTMP_FORMAT)  # 384
RUN_LVL, BOOT_TIME, USER_PROCESS, DEAD_PROCESS = 1, 2, 7, 8


@dataclass(frozen=True)
class UtmpRecord:
    type: int
    pid: int
    line: str
    user: str
    host: str
    time: int


def _s(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_wtmp(data: bytes) -> Iterator[UtmpRecord]:
    """Every whole record of *data* in file order (a truncated tail is ignored)."""
    for off in range(0, len(data) - UTMP_SIZE + 1, UTMP_SIZE):
        f = struct.unpack_from(UTMP_FORMAT, data, off)
        yield UtmpRecord(f[0], f[1], _s(f[2]), _s(f[4]), _s(f[5]), f[9])


@dataclass(frozen=True)
class BootEnd:
    """How the boot before the last one ended according to wtmp."""

    boot_time: int              # that boot's BOOT_TIME
    next_boot: int              # the following (current) boot
    clean: bool
    shutdown_time: int | None   # the shutdown record's time, when clean
    evidence: tuple[str, ...]


def previous_boot_end(records: list[UtmpRecord]) -> BootEnd | None:
    """The end of the previous boot (``None`` with fewer than two boots recorded)."""
    boots = [i for i, r in enumerate(records) if r.type == BOOT_TIME]
    if len(boots) < 2:
        return None
    prev, cur = boots[-2], boots[-1]
    shutdowns = [r for r in records[prev + 1:cur] if r.type == RUN_LVL and r.user == "shutdown"]
    ev = [f"boot {records[prev].time} ({records[prev].host})", f"next boot {records[cur].time}"]
    if shutdowns:
        ev.append(f"shutdown record at {shutdowns[-1].time}")
        return BootEnd(records[prev].time, records[cur].time, True, shutdowns[-1].time, tuple(ev))
    ev.append("no shutdown record between the two boots (last -x shows 'crash')")
    return BootEnd(records[prev].time, records[cur].time, False, None, tuple(ev))
