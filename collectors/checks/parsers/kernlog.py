"""Kernel log lines that checks look for besides the oops collector's reports (pure):
filesystem errors, I/O errors, read-only remounts, OOM kills."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_FS_ERROR = re.compile(
    r"EXT[234]-fs (?:error|warning \(device [^)]*\): ext4_end_bio)|EXT[234]-fs \([^)]*\): error|"
    r"XFS \([^)]*\): (?:.*[Cc]orruption|Metadata .*error|.*[Ss]hutdown|log I/O error)|"
    r"BTRFS (?:error|critical)|F2FS-fs \([^)]*\): .*(?:error|[Ii]nconsistent)|"
    r"Remounting filesystem read-only|[Ff]ilesystem has been set read-only|"
    r"JBD2: .*(?:error|Detected IO errors)|FAT-fs \([^)]*\): error")
_IO_ERROR = re.compile(r"\bI/O error\b|Buffer I/O error|blk_update_request: (?:critical )?\S* ?error|"
                       r"\bcritical medium error\b|\bata\d+(?:\.\d+)?: (?:exception|failed command)|"
                       r"nvme\d+n?\d*: .*(?:I/O \d+ .*timeout|error)")
_OOM_KILL = re.compile(r"Out of memory: Kill(?:ed)? process (\d+) \(([^)]*)\)|"
                       r"oom-kill:.*task=([^,]+),pid=(\d+)|Memory cgroup out of memory: Kill(?:ed)? process (\d+) \(([^)]*)\)")


@dataclass(frozen=True)
class LogFindings:
    fs_errors: tuple[str, ...]
    io_errors: tuple[str, ...]
    oom_kills: tuple[str, ...]


def _strip_prefix(line: str) -> str:
    return re.sub(r"^<\d+>", "", line)


def scan_kernel_lines(lines: Iterable[str]) -> LogFindings:
    """Filesystem errors, I/O errors and OOM kill lines of a kernel log."""
    fs, io, oom = [], [], []
    for raw in lines:
        line = _strip_prefix(raw)
        if _FS_ERROR.search(line):
            fs.append(line)
        elif _IO_ERROR.search(line):
            io.append(line)
        if _OOM_KILL.search(line):
            oom.append(line)
    return LogFindings(tuple(fs), tuple(io), tuple(oom))
