"""One scan of ``/proc`` under the root, shared by the plugins that look for processes
(QEMU emulators, ``systemd-nspawn`` supervisors, lxc inits, OpenVZ tasks)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from collectors.state.hostfs import HostFS
from collectors.state.signals import argv_of

_CMDLINE_LIMIT = 64 << 10
_SMALL = 64 << 10


@dataclass(frozen=True)
class Proc:
    """What the scan keeps of one process."""

    pid: int
    argv: tuple[str, ...]
    exe: str | None
    cgroup: str
    ppid: int | None
    start_ticks: int | None   # /proc/PID/stat field 22 (clock ticks after boot)


def parse_stat(text: str) -> tuple[int | None, int | None]:
    """(ppid, starttime) of ``/proc/PID/stat`` (the comm field may hold spaces and parens)."""
    _, sep, rest = text.rpartition(")")
    fields = rest.split()
    if not sep or len(fields) < 20:
        return None, None
    try:
        return int(fields[1]), int(fields[19])
    except ValueError:
        return None, None


def parse_btime(text: str) -> int | None:
    """Boot time (``btime``, Unix seconds) of ``/proc/stat``."""
    for line in text.splitlines():
        if line.startswith("btime "):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


class ProcTable:
    """The processes under ``<root>/proc`` (read once, on first use)."""

    def __init__(self, fs: HostFS) -> None:
        self.fs = fs
        self._procs: list[Proc] | None = None
        self._btime: int | None = None
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def all(self) -> list[Proc]:
        if self._procs is None:
            self._procs = [p for p in map(self._read, self.fs.listdir("/proc")) if p is not None]
            stat = self.fs.text("/proc/stat", _SMALL)
            self._btime = parse_btime(stat) if stat else None
        return self._procs

    def _read(self, name: str) -> Proc | None:
        if not name.isdigit():
            return None
        base = f"/proc/{name}"
        raw = self.fs.read_opt(f"{base}/cmdline", _CMDLINE_LIMIT)
        if raw is None:
            return None
        stat = self.fs.text(f"{base}/stat", 4096) or ""
        ppid, start = parse_stat(stat)
        cgroup = self.fs.text(f"{base}/cgroup", _SMALL) or ""
        return Proc(int(name), tuple(argv_of(raw)), self.fs.readlink(f"{base}/exe"), cgroup, ppid, start)

    def by_pid(self, pid: int) -> Proc | None:
        return next((p for p in self.all() if p.pid == pid), None)

    def children(self, pid: int) -> list[Proc]:
        return [p for p in self.all() if p.ppid == pid]

    def started_at(self, proc: Proc) -> str | None:
        """When *proc* started, ISO 8601 UTC (from its start ticks and the boot time)."""
        self.all()
        if proc.start_ticks is None or self._btime is None:
            return None
        return iso_utc(self._btime + proc.start_ticks / self._hz)


def iso_utc(seconds: float) -> str:
    """Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(int(seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso_utc(time.time())
