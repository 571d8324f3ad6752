"""Source: the kernel ring buffer through ``/dev/kmsg`` (``dmesg --raw`` as the fallback)."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

from collectors.errors import OopsError
from collectors.oops.sources.base import LogUnit, Source, decode_line, one_line, split_text_lines
from collectors.oops.sources.command import run_command
from collectors.oops.sources.kmsg_records import kmsg_lines, read_kmsg_records

log = logging.getLogger(__name__)

# The timestamp of a ``dmesg --raw`` line: "<4>[   12.345678] text".
_DMESG_STAMP = re.compile(r"^<\d++>\[\s*+(\d++\.\d++)\]")


def read_boot_id(path: str = "/proc/sys/kernel/random/boot_id") -> str:
    """This boot's id (empty when unreadable)."""
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip().replace("-", "")
    except OSError:
        return ""


class KmsgSource(Source):
    """The kernel ring buffer: ``/dev/kmsg`` records after the stored sequence number.

    Falls back to ``dmesg --raw`` (timestamps as the cursor) when ``/dev/kmsg`` cannot be
    opened, e.g. in a container.
    """

    name = "kmsg"
    description = "the kernel ring buffer of this boot (/dev/kmsg, or dmesg --raw)"

    def __init__(self, path: str = "/dev/kmsg",
                 boot_id_path: str = "/proc/sys/kernel/random/boot_id",
                 dmesg: Sequence[str] = ("dmesg",)) -> None:
        self.path = path
        self.boot_id_path = boot_id_path
        self.dmesg = tuple(dmesg)

    def exists(self) -> bool:
        """True when /dev/kmsg or dmesg is there."""
        return os.path.exists(self.path) or shutil.which(self.dmesg[0]) is not None

    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """One unit: the records not yet seen in this boot."""
        boot = read_boot_id(self.boot_id_path)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            log.info("kmsg: %s: %s; using dmesg", self.path, one_line(exc))
            yield self._dmesg_unit(state, boot)
            return
        last = state.get("seq") if state.get("boot_id") == boot else None
        last_seq = last if isinstance(last, int) else -1
        high = [last_seq]

        def lines() -> Iterator[str]:
            try:
                for rec in read_kmsg_records(fd):
                    if rec.seq <= last_seq:
                        continue
                    high[0] = max(high[0], rec.seq)
                    yield from kmsg_lines(rec)
            finally:
                os.close(fd)

        def finish() -> None:
            state.clear()
            state.update({"boot_id": boot, "seq": high[0]})

        # Only the kernel (and root, through /dev/kmsg) writes the ring buffer: trusted.
        yield LogUnit(self.name, self.path, lines(), finish, unauthenticated=None)

    def _dmesg_unit(self, state: dict[str, Any], boot: str) -> LogUnit:
        res = run_command([*self.dmesg, "--raw"])
        if res.error or res.rc != 0:
            detail = res.error or decode_line(res.stderr.splitlines()[0] if res.stderr else b"")
            raise OopsError(f"dmesg failed: {detail or f'exit {res.rc}'}")
        last = state.get("ts") if state.get("boot_id") == boot else None
        last_ts = float(last) if isinstance(last, (int, float)) else -1.0
        high = [last_ts]

        def lines() -> Iterator[str]:
            for line in split_text_lines(res.stdout):
                m = _DMESG_STAMP.match(line)
                if m:
                    ts = float(m.group(1))
                    if ts <= last_ts:
                        continue
                    high[0] = max(high[0], ts)
                elif last_ts >= 0:
                    continue
                if line:
                    yield line

        def finish() -> None:
            state.clear()
            state.update({"boot_id": boot, "ts": high[0]})

        return LogUnit(self.name, "dmesg", lines(), finish, unauthenticated=None)
