"""CPU and memory limits and usage of a cgroup, from cgroup v1 or v2, whichever the host has
(hybrid hosts: each value from the hierarchy that has its controller).

Pure parsers of the interface files (Documentation/admin-guide/cgroup-v2.rst and
cgroup-v1/{memory,cpuacct}.rst, sched-bwc.rst) and of ``/proc/PID/cgroup``; the
:class:`CgroupReader` finds the hierarchies (mountinfo, else the usual layout under
``/sys/fs/cgroup``) and reads through a :class:`~collectors.state.hostfs.HostFS`. A file that
exists but cannot be read is recorded in ``errors``, never fatal.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from collectors.state.hostfs import HostFS
from collectors.state.model import Resources
from collectors.state.signals import parse_mountinfo

#: v1 memory.limit_in_bytes reads as PAGE_COUNTER_MAX * page size when unlimited: anything at
#: or above this is "no limit".
V1_UNLIMITED = 1 << 62
_SMALL = 64 << 10


@dataclass(frozen=True)
class CgroupLine:
    """One ``/proc/PID/cgroup`` line: hierarchy id, controllers (v2: empty), path."""

    hierarchy: int
    controllers: tuple[str, ...]
    path: str


def parse_proc_cgroup(text: str) -> list[CgroupLine]:
    """``/proc/PID/cgroup`` (cgroups(7)); malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3 or not fields[0].isdigit():
            continue
        ctrls = tuple(c for c in fields[1].split(",") if c)
        out.append(CgroupLine(int(fields[0]), ctrls, fields[2]))
    return out


def parse_limit(text: str) -> int | None:
    """A byte limit: v2 ``max`` or a v1 value at the unlimited ceiling is ``None``."""
    value = text.strip()
    if not value or value == "max":
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return None if n < 0 or n >= V1_UNLIMITED else n


def parse_int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def parse_cpu_max(text: str) -> float | None:
    """v2 ``cpu.max`` (``$MAX $PERIOD``) as CPUs; ``max`` is unlimited (``None``)."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return round(quota / period, 3) if period > 0 and quota > 0 else None


def cpus_from_quota(quota: int | None, period: int | None) -> float | None:
    """v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` as CPUs (quota -1: unlimited)."""
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return round(quota / period, 3)


def parse_cpu_stat_usage(text: str) -> float | None:
    """``usage_usec`` of v2 ``cpu.stat`` in seconds."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            n = parse_int(value)
            return None if n is None else n / 1e6
    return None


@dataclass(frozen=True)
class Hierarchies:
    """Where the cgroup hierarchies are mounted (host paths): v2's and v1's per controller."""

    v2: str | None = None
    v1: dict[str, str] = field(default_factory=dict)


#: cgroup v1 controllers (the other super options of a cgroup mount are flags).
V1_CONTROLLERS = frozenset("""cpu cpuacct memory pids blkio cpuset devices freezer net_cls
    net_prio perf_event hugetlb rdma misc""".split())


def hierarchies_from_mountinfo(text: str) -> Hierarchies:
    """The cgroup mounts of a mount table (the first mount of each hierarchy wins)."""
    v2, v1 = None, {}
    for m in parse_mountinfo(text):
        if m.fstype == "cgroup2" and v2 is None:
            v2 = m.mount_point
        elif m.fstype == "cgroup":
            for opt in m.super_options.split(","):
                if opt not in V1_CONTROLLERS or opt in v1:
                    continue
                v1[opt] = m.mount_point
    return Hierarchies(v2, v1)


def probe_hierarchies(fs: HostFS) -> Hierarchies:
    """The usual layouts under ``/sys/fs/cgroup`` when no mount table is available (a mounted
    image or a fixture tree): unified at the top, hybrid ``unified/``, v1 per controller."""
    base = "/sys/fs/cgroup"
    v2 = None
    if fs.exists(f"{base}/cgroup.controllers"):
        v2 = base
    elif fs.exists(f"{base}/unified/cgroup.controllers"):
        v2 = f"{base}/unified"
    v1 = {}
    for entry in fs.listdir(base):
        for ctrl in entry.split(","):
            if ctrl in ("memory", "cpu", "cpuacct", "pids") and ctrl not in v1:
                v1[ctrl] = f"{base}/{entry}"
    return Hierarchies(v2, v1)


class CgroupReader:
    """Reads limits and usage of the cgroups a process is in."""

    def __init__(self, fs: HostFS) -> None:
        self.fs = fs
        mountinfo = fs.text("/proc/self/mountinfo") if fs.live else None
        found = hierarchies_from_mountinfo(mountinfo) if mountinfo else Hierarchies()
        self.hier = found if (found.v2 or found.v1) else probe_hierarchies(fs)

    def _file(self, directory: str, name: str, errors: dict[str, str]) -> str | None:
        path = f"{directory.rstrip('/')}/{name}"
        try:
            return self.fs.read(path, _SMALL).decode("ascii", "replace")
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                errors[path] = exc.strerror or str(exc)
            return None

    def for_lines(self, lines: list[CgroupLine]) -> Resources:
        """Resources of the cgroups in *lines* (a process's ``/proc/PID/cgroup``)."""
        errors: dict[str, str] = {}
        # the root cgroup has no limits and its usage is the whole host's: not an instance's
        v2_path = next((ln.path for ln in lines if ln.hierarchy == 0 and not ln.controllers
                        and ln.path != "/"), None)
        v1_paths = {c: ln.path for ln in lines if ln.controllers and ln.path != "/" for c in ln.controllers}
        values: dict[str, object] = {}
        used_v2 = used_v1 = False
        if self.hier.v2 and v2_path is not None:
            d = self.hier.v2 + v2_path
            mem_max, mem_cur = self._file(d, "memory.max", errors), self._file(d, "memory.current", errors)
            if mem_cur is not None:
                values["memory_limit"] = parse_limit(mem_max or "max")
                values["memory_usage"] = parse_int(mem_cur)
                used_v2 = True
            cpu_max, cpu_stat = self._file(d, "cpu.max", errors), self._file(d, "cpu.stat", errors)
            if cpu_max is not None:
                values["cpu_limit"] = parse_cpu_max(cpu_max)
                used_v2 = True
            if cpu_stat is not None and parse_cpu_stat_usage(cpu_stat) is not None:
                values["cpu_usage"] = parse_cpu_stat_usage(cpu_stat)
                used_v2 = True
        used_v1 = self._v1(v1_paths, values, errors)
        source = "cgroup v2" if used_v2 and not used_v1 else "cgroup v1" if used_v1 and not used_v2 \
            else "cgroup v1+v2" if used_v1 else None
        cgroup = v2_path or next(iter(v1_paths.values()), None)
        return Resources(values.get("cpu_limit"), values.get("cpu_usage"),  # type: ignore[arg-type]
                         values.get("memory_limit"), values.get("memory_usage"),  # type: ignore[arg-type]
                         source, cgroup, errors)

    def _v1(self, paths: dict[str, str], values: dict[str, object], errors: dict[str, str]) -> bool:
        used = False
        mount = self.hier.v1
        if "memory_usage" not in values and "memory" in mount and "memory" in paths:
            d = mount["memory"] + paths["memory"]
            usage = self._file(d, "memory.usage_in_bytes", errors)
            if usage is not None:
                values["memory_usage"] = parse_int(usage)
                values["memory_limit"] = parse_limit(self._file(d, "memory.limit_in_bytes", errors) or "")
                used = True
        if "cpu_limit" not in values and "cpu" in mount and "cpu" in paths:
            d = mount["cpu"] + paths["cpu"]
            quota = self._file(d, "cpu.cfs_quota_us", errors)
            if quota is not None:
                period = self._file(d, "cpu.cfs_period_us", errors)
                values["cpu_limit"] = cpus_from_quota(parse_int(quota), parse_int(period or ""))
                used = True
        if "cpu_usage" not in values and "cpuacct" in mount and "cpuacct" in paths:
            usage = self._file(mount["cpuacct"] + paths["cpuacct"], "cpuacct.usage", errors)
            n = parse_int(usage) if usage is not None else None
            if n is not None:
                values["cpu_usage"] = n / 1e9
                used = True
        return used

    def for_pid(self, pid: int) -> Resources:
        """Resources of the cgroups of process *pid* (under the root's ``/proc``)."""
        raw = self.fs.read_opt(f"/proc/{pid}/cgroup", _SMALL)
        if raw is None:
            return Resources()
        return self.for_lines(parse_proc_cgroup(raw.decode("utf-8", "surrogateescape")))

    def for_path(self, path: str) -> Resources:
        """Resources of one cgroup path, looked up in every hierarchy (no process needed)."""
        lines = [CgroupLine(0, (), path)] + [CgroupLine(1, (c,), path) for c in self.hier.v1]
        return self.for_lines(lines)

