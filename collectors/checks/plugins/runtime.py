"""Runtime checks: load and pressure, memory, OOM kills, lockups and kernel reports, disk
space, filesystem errors, time sync, failed units, file handles."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from collectors.checks import facts
from collectors.checks.base import Check, Result, fail, passed, skip, warn
from collectors.checks.host import Host
from collectors.checks.parsers import proc
from collectors.checks.parsers.kernlog import scan_kernel_lines

LOCKUP_KINDS = frozenset({"soft-lockup", "hard-lockup", "hung-task", "rcu-stall", "workqueue-lockup"})
#: PSI thresholds (avg60, percent) above which a resource is called under pressure.
PSI_WARN = {("cpu", "some"): 50.0, ("memory", "some"): 20.0, ("memory", "full"): 5.0,
            ("io", "some"): 30.0, ("io", "full"): 10.0}


class LoadPressure(Check):
    id = "runtime.load"
    phase = "runtime"
    title = "Load and PSI pressure"

    def run(self, host: Host) -> Result:
        load = proc.parse_loadavg(host.text("/proc/loadavg") or "")
        cpus = sum(1 for line in (host.text("/proc/cpuinfo") or "").splitlines() if line.startswith("processor"))
        ev = [f"loadavg {' '.join(f'{v:.2f}' for v in load)}" if load else "loadavg unreadable",
              f"{cpus or '?'} CPU(s)"]
        hot = []
        for res in ("cpu", "memory", "io"):
            text = host.text(f"/proc/pressure/{res}")
            if text is None:
                continue
            for kind, p in proc.parse_pressure(text).items():
                ev.append(f"{res} {kind} avg10={p.avg10:.2f} avg60={p.avg60:.2f} avg300={p.avg300:.2f}")
                limit = PSI_WARN.get((res, kind))
                if limit is not None and p.avg60 >= limit:
                    hot.append(f"{res} {kind} {p.avg60:.1f}% (avg60)")
        if hot:
            return warn(f"resource pressure: {', '.join(hot)}", ev,
                        "Find what waits: top/iotop, `systemd-cgtop`, /sys/fs/cgroup/*/..pressure files.")
        if load and cpus and load[1] > 4 * cpus:
            return warn(f"load {load[1]:.1f} is over 4 times the {cpus} CPUs", ev,
                        "Look for runaway or D-state processes (ps -eo stat,comm | grep ^D).")
        return passed("no resource pressure", ev)


class Memory(Check):
    id = "runtime.memory"
    phase = "runtime"
    title = "Memory and swap"

    def run(self, host: Host) -> Result:
        mi = proc.meminfo_bytes(host.text("/proc/meminfo") or "")
        total, avail = mi.get("MemTotal"), mi.get("MemAvailable")
        if not total or avail is None:
            return skip("/proc/meminfo not readable")
        swap_total, swap_free = mi.get("SwapTotal", 0), mi.get("SwapFree", 0)
        ev = [f"MemTotal {total >> 20} MiB", f"MemAvailable {avail >> 20} MiB ({100 * avail / total:.0f}%)",
              f"SwapTotal {swap_total >> 20} MiB", f"SwapFree {swap_free >> 20} MiB"]
        remedy = "Find the largest consumers (ps aux --sort=-rss | head, per-cgroup memory.current)."
        if avail < 0.05 * total:
            return fail(f"only {100 * avail / total:.1f}% of memory available", ev, remedy)
        if avail < 0.10 * total:
            return warn(f"only {100 * avail / total:.1f}% of memory available", ev, remedy)
        if swap_total and swap_free < 0.10 * swap_total:
            return warn(f"swap {100 - 100 * swap_free / swap_total:.0f}% used", ev, remedy)
        return passed(f"{100 * avail / total:.0f}% of {total >> 20} MiB available", ev)


class OomKills(Check):
    id = "runtime.oom"
    phase = "runtime"
    title = "OOM kills since boot"

    def run(self, host: Host) -> Result:
        counter = proc.vmstat(host.text("/proc/vmstat") or "").get("oom_kill")
        klog = facts.kernel_log(host)
        lines = scan_kernel_lines(klog.lines).oom_kills
        ev = [f"/proc/vmstat oom_kill {counter if counter is not None else '(absent)'}"] + list(lines[-10:])
        n = max(counter or 0, len(lines))
        if n:
            return warn(f"{n} OOM kill(s) since boot", ev,
                        "Give the workload memory or limits that fit; see the killed tasks above.")
        return passed("no OOM kill since boot", ev)


class Lockups(Check):
    id = "runtime.lockups"
    phase = "runtime"
    title = "Hung tasks and soft lockups since boot"

    def run(self, host: Host) -> Result:
        klog = facts.kernel_log(host)
        if klog.error and not klog.lines:
            return skip(f"kernel log not readable: {klog.error}")
        hits = [r for r in facts.kernel_reports(host) if r.kind in LOCKUP_KINDS]
        ev = [f"kernel log {klog.origin} ({len(klog.lines)} lines)"] + [f"{r.kind}: {r.title}" for r in hits]
        if hits:
            return warn(f"{len(hits)} hung task / lockup report(s) since boot: {hits[0].title}", ev,
                        "Read the reports' stacks (crashkit oops scan, or the diagnose report); "
                        "hung tasks in D state usually wait for storage.")
        return passed("no hung task or lockup since boot", ev)


class KernelReports(Check):
    id = "runtime.kernel_reports"
    phase = "runtime"
    title = "Oopses, BUGs and WARNINGs since boot"

    def run(self, host: Host) -> Result:
        klog = facts.kernel_log(host)
        if klog.error and not klog.lines:
            return skip(f"kernel log not readable: {klog.error}")
        reports = [r for r in facts.kernel_reports(host) if r.kind not in LOCKUP_KINDS and r.kind != "oom"]
        ev = [f"{r.kind}: {r.title}" for r in reports]
        if not reports:
            return passed("no kernel report since boot", [f"kernel log {klog.origin}"])
        worst = fail if any(r.kind not in ("warning",) for r in reports) else warn
        return worst(f"{len(reports)} kernel report(s) since boot: {reports[0].title}", ev,
                     "Collect them (`crashkit oops collect`) and report them upstream or to the vendor.")


class DiskSpace(Check):
    id = "runtime.disk"
    phase = "runtime"
    title = "Disk space and inodes"
    PATHS = ("/", "/var", "/vz", "/var/tmp")

    def run(self, host: Host) -> Result:
        hk = facts.hook(host)
        seen: dict[int, str] = {}
        ev, bad, worse = [], [], False
        for path in (*self.PATHS, hk.spool, host.config.crash_dir):
            st = host.statvfs(path)
            if st is None or not st.f_blocks:
                continue
            dev = os.stat(host.path(path)).st_dev
            if dev in seen:
                continue
            seen[dev] = path
            free = st.f_bavail / st.f_blocks
            ifree = st.f_favail / st.f_files if st.f_files else 1.0
            ev.append(f"{path}: {st.f_bavail * st.f_frsize >> 20} MiB free ({100 * free:.0f}%), "
                      f"inodes {100 * ifree:.0f}% free")
            if free < 0.05 or ifree < 0.05:
                bad.append(path)
                worse = True
            elif free < 0.10 or ifree < 0.10:
                bad.append(path)
        if not ev:
            return skip("no filesystem could be measured")
        if bad:
            return (fail if worse else warn)(f"low space or inodes on {', '.join(bad)}", ev,
                                             "Free space (old logs, cores, images) before it fills.")
        return passed("enough space and inodes", ev)


class FsErrors(Check):
    id = "runtime.fs_errors"
    phase = "runtime"
    title = "Read-only remounts and filesystem errors"
    DISK_FS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "jfs", "reiserfs"})

    def run(self, host: Host) -> Result:
        klog = facts.kernel_log(host)
        found = scan_kernel_lines(klog.lines)
        mounts = proc.parse_mountinfo(host.text("/proc/self/mountinfo") or "")
        ro = [m for m in mounts if m.fstype in self.DISK_FS and "ro" in m.options
              and "errors=remount-ro" in m.super_options]
        ev = list(found.fs_errors[-10:]) + list(found.io_errors[-10:])
        ev += [f"{m.mountpoint} ({m.fstype} on {m.source}) is mounted read-only" for m in ro]
        if found.fs_errors or ro:
            return fail(f"{len(found.fs_errors)} filesystem error(s), {len(ro)} read-only mount(s)", ev,
                        "Check the device (smartctl, dmesg), unmount and fsck/xfs_repair; restore from "
                        "backup if metadata is lost.")
        if found.io_errors:
            return warn(f"{len(found.io_errors)} I/O error(s) in the kernel log", ev,
                        "Check the disk and its cabling/controller (smartctl -a, the RAID/SAN logs).")
        return passed("no filesystem or I/O errors since boot", [f"kernel log {klog.origin}", *ev])


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("pad", ctypes.c_long * 20)]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def kernel_clock_state() -> tuple[int, int, int] | None:
    """adjtimex(2) with no changes: (return state, status flags, maxerror us)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    tx = _Timex()
    state = libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        return None
    return int(state), int(tx.status), int(tx.maxerror)


class TimeSync(Check):
    id = "runtime.time_sync"
    phase = "runtime"
    title = "Time synchronised"

    def run(self, host: Host) -> Result:
        ev: list[str] = []
        synced: bool | None = None
        if facts.systemd_running(host) and host.runs_host_tools:
            res = host.run(["timedatectl", "show", "-p", "NTPSynchronized", "-p", "NTP"])
            if res.ok:
                kv = proc.parse_kv(res.stdout.decode(), "=")
                ev.append(f"timedatectl NTPSynchronized={kv.get('NTPSynchronized')} NTP={kv.get('NTP')}")
                synced = kv.get("NTPSynchronized") == "yes"
        if synced is None and host.live:
            state = kernel_clock_state()
            if state is not None:
                ev.append(f"adjtimex state {state[0]}, status 0x{state[1]:x}, maxerror {state[2]} us")
                synced = not (state[1] & STA_UNSYNC) and state[0] != TIME_ERROR
        if synced is None:
            return skip("no clock synchronisation state available", ev)
        if not synced:
            return warn("the clock is not synchronised (kernel STA_UNSYNC): timestamps of crashes and "
                        "logs may not match other hosts", ev,
                        "Run an NTP client: systemd-timesyncd, chrony or ntpd.")
        return passed("the clock is synchronised", ev)


class FailedUnits(Check):
    id = "runtime.failed_units"
    phase = "runtime"
    title = "Failed systemd units"

    def run(self, host: Host) -> Result:
        if not facts.systemd_running(host):
            return skip("systemd is not running")
        if not host.runs_host_tools:
            return skip("systemctl cannot describe a recorded root")
        res = host.run(["systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager"])
        if not res.ok:
            return skip(f"systemctl failed: {res.failure}")
        units = [line.split()[0] for line in res.stdout.decode("utf-8", "replace").splitlines() if line.strip()]
        if units:
            return warn(f"{len(units)} failed unit(s): {', '.join(units[:5])}", units,
                        "systemctl status UNIT; journalctl -u UNIT -b")
        return passed("no failed unit")


class FileHandles(Check):
    id = "runtime.file_handles"
    phase = "runtime"
    title = "File handles"

    def run(self, host: Host) -> Result:
        nr = proc.parse_file_nr(host.text("/proc/sys/fs/file-nr") or "")
        if nr is None:
            return skip("/proc/sys/fs/file-nr not readable")
        used, _free, maximum = nr
        ev = [f"file-nr {used} allocated of fs.file-max {maximum}"]
        share = used / maximum if maximum else 0.0
        if share >= 0.98:
            return fail(f"file handles exhausted: {used} of {maximum}", ev, "sysctl -w fs.file-max=...; find the leak (ls /proc/*/fd | wc -l).")
        if share >= 0.90:
            return warn(f"{100 * share:.0f}% of file handles in use", ev, "Raise fs.file-max or find the leak.")
        return passed(f"{used} of {maximum} file handles in use", ev)
