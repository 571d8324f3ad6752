"""Boot checks: boot id and time, kernel and cmdline, the previous shutdown, a panic or oops
in the previous boot, kernel taint."""

from __future__ import annotations

import time

from collectors.checks import facts
from collectors.checks.base import Check, Result, fail, passed, skip, warn
from collectors.checks.host import Host
from collectors.checks.parsers import proc


#: Report kinds that do not stop the kernel by themselves.
MINOR_KINDS = frozenset({"warning", "soft-lockup", "hung-task", "rcu-stall", "workqueue-lockup",
                         "page-alloc-failure", "oom"})


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))


class BootId(Check):
    id = "boot.id"
    phase = "boot"
    title = "Boot id and time"

    def run(self, host: Host) -> Result:
        boot_id = (host.text("/proc/sys/kernel/random/boot_id") or "").strip()
        btime = proc.boot_time(host.text("/proc/stat") or "")
        uptime = proc.parse_loadavg((host.text("/proc/uptime") or "") + " 0 0")
        if not boot_id and btime is None:
            return skip("boot id and time not readable", ("/proc/sys/kernel/random/boot_id", "/proc/stat"))
        ev = [f"boot_id {boot_id or '?'}"]
        if btime is not None:
            ev.append(f"booted {_iso(btime)} (btime {btime})")
        if uptime:
            ev.append(f"up {uptime[0] / 3600:.1f} h")
        return passed(f"boot {boot_id[:8] or '?'} since {_iso(btime) if btime else '?'}", ev)


class Kernel(Check):
    id = "boot.kernel"
    phase = "boot"
    title = "Kernel and command line"

    def run(self, host: Host) -> Result:
        release = (host.text("/proc/sys/kernel/osrelease") or "").strip()
        version = (host.text("/proc/sys/kernel/version") or "").strip()
        cmdline = (host.text("/proc/cmdline") or "").strip()
        if not release:
            return skip("kernel release not readable", ("/proc/sys/kernel/osrelease",))
        ev = [f"release {release}", f"version {version}", f"cmdline {cmdline}"]
        params = proc.parse_cmdline_params(cmdline)
        if params.get("panic") == "0" or "panic" not in params:
            ev.append("panic= not set: a panicked kernel waits forever instead of rebooting")
        return passed(f"Linux {release}", ev)


class UncleanShutdown(Check):
    id = "boot.unclean_shutdown"
    phase = "boot"
    title = "Previous shutdown was clean"

    def run(self, host: Host) -> Result:
        prev = facts.previous_boot(host)
        end, wtmp_path = facts.wtmp_end(host)
        ev: list[str] = []
        verdicts = []
        if prev is not None:
            from collectors.checks.parsers.journal import shutdown_end

            j = shutdown_end(list(prev.entries))
            verdicts.append(j.clean)
            ev.append(f"journal: previous boot ended {'cleanly' if j.clean else 'without a shutdown'}"
                      f" ({j.method})")
            ev.extend(j.evidence)
        if end is not None:
            verdicts.append(end.clean)
            ev.append(f"{wtmp_path}: {'shutdown recorded' if end.clean else 'no shutdown record'}")
            ev.extend(end.evidence)
        if not verdicts:
            return skip("no previous boot in the journal or wtmp",
                        (f"journal: {'none' if not host.journal_available() else 'no previous boot'}",
                         f"{wtmp_path}: fewer than two boots"))
        if all(verdicts):
            return passed("the previous boot was shut down cleanly", ev)
        return warn("the previous boot ended without a clean shutdown (power loss, reset, hang or panic)",
                    ev, "Look at the previous boot's last messages (journalctl -b -1 -e), pstore and "
                    "/var/crash for a panic; check the hypervisor or BMC event log for a reset.")


class PreviousPanic(Check):
    id = "boot.previous_panic"
    phase = "boot"
    title = "No panic or oops in the previous boot"

    def run(self, host: Host) -> Result:
        from collectors.oops.sources import KdumpSource, PstoreSource

        ev: list[str] = []
        looked: list[str] = []
        fatal = False
        pstore = PstoreSource(host.path("/sys/fs/pstore"))
        if pstore.exists():
            for unit in pstore.units({}):
                ev.append(f"pstore: {unit.origin}")
            looked.append("pstore (records)")
        else:
            looked.append("pstore (empty)")
        kdump = KdumpSource(host.path(host.config.crash_dir))
        for path in kdump.paths():
            ev.append(f"kdump: {path}")
        looked.append(f"{host.config.crash_dir} ({len(kdump.paths())} kernel logs)")
        prev = facts.previous_boot(host)
        if prev is not None:
            looked.append(f"previous boot's journal ({len(prev.kernel_reports)} kernel reports)")
            for r in prev.kernel_reports:
                if r.kind != "oom":
                    ev.append(f"journal: {r.kind}: {r.title}")
                    fatal = fatal or r.kind not in MINOR_KINDS or "Kernel panic - not syncing" in r.text
        else:
            looked.append("journal (no previous boot)")
        if ev:
            bad = fatal or any(e.startswith(("pstore", "kdump")) for e in ev)
            result = fail if bad else warn
            return result(f"the previous kernel left {len(ev)} crash record(s)", [*ev, "looked at: " + ", ".join(looked)],
                          "Run `crashkit oops collect` to turn them into problem directories and read "
                          "the first report; a vmcore in /var/crash can be opened with crash(8).")
        return passed("no panic or oops recorded for the previous boot", ["looked at: " + ", ".join(looked)])


class Taint(Check):
    id = "boot.taint"
    phase = "boot"
    title = "Kernel taint"

    def run(self, host: Host) -> Result:
        value = proc.parse_int(host.text("/proc/sys/kernel/tainted"))
        if value is None:
            return skip("/proc/sys/kernel/tainted not readable")
        flags = proc.decode_taint(value)
        if not flags:
            return passed("kernel not tainted", ["tainted 0"])
        ev = [f"tainted {value}"] + [f"{f.letter} (bit {f.bit}): {f.meaning}" for f in flags]
        letters = "".join(f.letter for f in flags)
        trouble = [f for f in flags if f.letter in proc.TAINT_TROUBLE]
        if trouble:
            return warn(f"kernel tainted {letters}: {trouble[0].meaning}", ev,
                        "Find the event that set it in the kernel log (dmesg | grep -i -e taint -e "
                        "'cut here'); a tainted kernel's later reports may be consequences of it.")
        return passed(f"kernel tainted {letters} (modules only)", ev)
