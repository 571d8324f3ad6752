"""The ``/dev/kmsg`` record format (Documentation/ABI/testing/dev-kmsg).

:func:`parse_kmsg_record` and :func:`kmsg_lines` are pure: one record's bytes in, the
lines ``dmesg --raw`` would print out. Shared by the kmsg source and the watcher.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

# A kmsg record is at most CONSOLE_EXT_LOG_MAX (8 KiB) in the kernel; read() with a smaller
# buffer fails with EINVAL.
KMSG_READ = 16384


@dataclass(frozen=True)
class KmsgRecord:
    """One ``/dev/kmsg`` record (Documentation/ABI/testing/dev-kmsg)."""

    level: int
    facility: int
    seq: int
    ts_usec: int
    caller: str | None
    text: str


_KMSG_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def parse_kmsg_record(data: bytes) -> KmsgRecord | None:
    """Parse ``prefix;text`` (continuation `` KEY=value`` lines ignored); None if malformed.

    The kernel escapes non-printable bytes, including newlines inside a message, as
    ``\\xNN``; they are unescaped here, so ``text`` may hold several lines.
    """
    first = data.split(b"\n", 1)[0]
    head, sep, body = first.partition(b";")
    if not sep:
        return None
    fields = head.split(b",")
    if len(fields) < 4:
        return None
    try:
        prio, seq, ts = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    caller = None
    for extra in fields[4:]:
        if extra.startswith(b"caller="):
            caller = extra[7:].decode("ascii", "replace")
    body = _KMSG_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), body)
    return KmsgRecord(level=prio & 7, facility=prio >> 3, seq=seq, ts_usec=ts, caller=caller,
                      text=body.decode("utf-8", "replace").replace("\x00", " "))


def kmsg_lines(rec: KmsgRecord) -> list[str]:
    """The record as ``dmesg --raw`` prints it: ``<L>[  sec.usec] text`` (``[  T123]``
    after the time when the record names its caller), one line per line.

    Records of every facility are kept, as ``dmesg`` shows them: userspace writes to
    ``/dev/kmsg`` (facility 1 and up) are part of the kernel log too.
    """
    ts = f"[{rec.ts_usec // 1000000:5d}.{rec.ts_usec % 1000000:06d}]"
    if rec.caller:  # as dmesg prints CONFIG_PRINTK_CALLER ids: keeps CPUs' output apart
        ts += f"[{rec.caller:>6}]"
    return [f"<{rec.level}>{ts} {line}" for line in rec.text.split("\n") if line]


def read_kmsg_records(fd: int) -> Iterator[KmsgRecord]:
    """Records readable now from a non-blocking ``/dev/kmsg`` descriptor, until EAGAIN."""
    while True:
        try:
            data = os.read(fd, KMSG_READ)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # records were overwritten before we read them
                continue
            raise
        if not data:
            return
        rec = parse_kmsg_record(data)
        if rec is not None:
            yield rec
