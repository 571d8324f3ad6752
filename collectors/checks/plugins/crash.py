"""Crash readiness: the silent failures that lose crashes (core_pattern, pipe limit,
suid_dumpable, RLIMIT_CORE, coredump_filter, spool space, kdump, pstore)."""

from __future__ import annotations

import os

from collectors.checks import facts
from collectors.checks.base import Check, Result, fail, passed, skip, warn
from collectors.checks.host import Host
from collectors.checks.parsers import proc
from collectors.checks.parsers.corepattern import parse_core_pattern

PAGE = 4096
INSTALL = "Install crashkit's handler: `crashkit hook install`."


class CorePattern(Check):
    id = "crash.core_pattern"
    phase = "crash"
    title = "core_pattern names a working crash handler"

    def run(self, host: Host) -> Result:
        text, err = host.text_or_error("/proc/sys/kernel/core_pattern")
        if text is None:
            return skip("core_pattern not readable", (err or "",))
        cp = parse_core_pattern(text)
        ev = [f"core_pattern {cp.raw!r}"]
        if not cp.pipe:
            if cp.relative_file:
                return warn(f"cores go to a file {cp.raw!r} in the crashing process's directory; "
                            "no handler records crashes", ev, INSTALL)
            return warn(f"cores are written as files ({cp.raw}); no handler records crashes", ev, INSTALL)
        exe = cp.executable or ""
        path = host.path(exe)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return fail(f"core_pattern runs {exe}, which is missing or not executable: every crash is lost",
                        ev + [f"{exe}: {'missing' if not os.path.exists(path) else 'not executable'}"],
                        "Reinstall the handler (`crashkit hook install`) or restore the previous "
                        "pattern (`crashkit hook uninstall`).")
        handler = cp.handler
        if handler == "other" and host.live:
            status = facts.hook(host).status
            if status.get("executable_is_ours"):
                handler = "crashkit"
        if handler == "crashkit" or _is_crashkit_launcher(path):
            handler = "crashkit"
        ev.append(f"handler {handler}: {exe}")
        return passed(f"crashes go to {handler} ({exe})", ev)


def _is_crashkit_launcher(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"collectors.corehook.hook" in f.read(4096)
    except OSError:
        return False


class PipeLimit(Check):
    id = "crash.core_pipe_limit"
    phase = "crash"
    title = "core_pipe_limit lets the handler read /proc"

    def run(self, host: Host) -> Result:
        pattern = parse_core_pattern(host.text("/proc/sys/kernel/core_pattern") or "")
        limit = proc.parse_int(host.text("/proc/sys/kernel/core_pipe_limit"))
        if limit is None:
            return skip("core_pipe_limit not readable")
        ev = [f"core_pipe_limit {limit}", f"core_pattern {pattern.raw!r}"]
        if not pattern.pipe:
            return skip("core_pattern is not a pipe: core_pipe_limit does not apply", ev)
        ours = pattern.handler == "crashkit" or _is_crashkit_launcher(host.path(pattern.executable or ""))
        if limit == 0 and ours:
            return passed("core_pipe_limit 0: the kernel pipes every crash to crashkit's hook, which "
                          "reads /proc/PID before it drains the core (docs/hook.md)", ev)
        if limit == 0:
            return warn("core_pipe_limit is 0: the kernel does not wait for the handler, which may "
                        "find /proc/PID gone", ev, "sysctl -w kernel.core_pipe_limit=16 (what "
                        "systemd-coredump and abrt expect)")
        if ours:
            ev.append(f"more than {limit} crashes at once are not dumped at all (crash storms)")
        return passed(f"core_pipe_limit {limit}", ev)


class SuidDumpable(Check):
    id = "crash.suid_dumpable"
    phase = "crash"
    title = "suid_dumpable"

    def run(self, host: Host) -> Result:
        value = proc.parse_int(host.text("/proc/sys/fs/suid_dumpable"))
        pattern = parse_core_pattern(host.text("/proc/sys/kernel/core_pattern") or "")
        if value is None:
            return skip("/proc/sys/fs/suid_dumpable not readable")
        ev = [f"fs.suid_dumpable {value}", f"core_pattern {pattern.raw!r}"]
        if value == 0:
            return warn("suid_dumpable is 0: crashes of setuid programs and of processes that changed "
                        "credentials (most daemons) dump no core", ev,
                        "sysctl -w fs.suid_dumpable=2 (with a pipe handler, cores stay root's)")
        if value == 1:
            return warn("suid_dumpable is 1 (debug): cores of setuid programs are owned by the user",
                        ev, "sysctl -w fs.suid_dumpable=2")
        if value == 2 and pattern.relative_file:
            return fail("suid_dumpable is 2 with a relative core_pattern: the kernel refuses those dumps",
                        ev, "Use a pipe handler (`crashkit hook install`) or an absolute core_pattern.")
        return passed(f"suid_dumpable {value}", ev)


class CoreLimit(Check):
    id = "crash.rlimit_core"
    phase = "crash"
    title = "RLIMIT_CORE and coredump_filter of PID 1 and the services"

    def run(self, host: Host) -> Result:
        limits = proc.parse_limits(host.text("/proc/1/limits") or "")
        core = limits.get("Max core file size")
        if core is None:
            return skip("/proc/1/limits not readable")
        ev = [f"PID 1 RLIMIT_CORE soft {_lim(core.soft)} hard {_lim(core.hard)}"]
        low: dict[str, int] = {}
        filters: dict[str, int] = {}
        for pid in (p for p in host.listdir("/proc") if p.isdigit()):
            if not host.text(f"/proc/{pid}/cmdline", 1):
                continue  # a kernel thread (or gone): it never dumps core
            lim = proc.parse_limits(host.text(f"/proc/{pid}/limits") or "").get("Max core file size")
            comm = (host.text(f"/proc/{pid}/comm") or "?").strip()
            if lim is not None and lim.soft is not None and lim.soft < PAGE:
                low[comm] = low.get(comm, 0) + 1
            flt = proc.parse_coredump_filter(host.text(f"/proc/{pid}/coredump_filter") or "")
            if flt is not None and (flt & 0b10001) != 0b10001:
                filters[comm] = flt
        problems = []
        if core.soft is not None and core.soft < PAGE:
            problems.append(f"PID 1 has RLIMIT_CORE {core.soft}: its children inherit it and save no core")
        if low:
            ev.append("processes with RLIMIT_CORE below one page: " +
                      ", ".join(f"{c} ({n})" for c, n in sorted(low.items())[:30]))
        if filters:
            problems.append("coredump_filter drops anonymous memory or ELF headers for " +
                            ", ".join(sorted(filters)[:10]))
            ev.extend(f"{c}: coredump_filter 0x{v:x}" for c, v in sorted(filters.items())[:10])
        if facts.systemd_running(host) and host.runs_host_tools:
            res = host.run(["systemctl", "show", "-p", "DefaultLimitCORE", "-p", "DefaultLimitCORESoft"])
            if res.ok:
                ev.extend(res.stdout.decode("utf-8", "replace").split())
        if problems:
            return warn(problems[0], ev + problems[1:],
                        "Raise the limit: LimitCORE=infinity in the service (or DefaultLimitCORE= in "
                        "/etc/systemd/system.conf), `ulimit -c unlimited`; keep coredump_filter bits 0 and 4.")
        summary = f"PID 1 RLIMIT_CORE {_lim(core.soft)}"
        if low:
            summary += f"; {sum(low.values())} process(es) run with RLIMIT_CORE 0"
            return warn(summary, ev, "Set LimitCORE=infinity for the services whose crashes matter.")
        return passed(summary, ev)


def _lim(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


class SpoolSpace(Check):
    id = "crash.spool_space"
    phase = "crash"
    title = "Spool free space and quota"

    def run(self, host: Host) -> Result:
        from collectors.corehook import limits

        hk = facts.hook(host)
        spool, cfg = hk.spool, hk.config
        path = host.path(spool)
        ev = [f"spool {spool}", f"min_free_space {cfg.min_free_space}", f"max_spool_size {cfg.max_spool_size}"]
        if not os.path.isdir(path):
            return warn(f"the spool {spool} does not exist yet", ev, INSTALL)
        st = os.statvfs(path)
        free = st.f_bavail * st.f_frsize
        from reporter.dumpdir import iter_problem_dirs

        try:
            used = sum(limits.dir_size(d) for d in iter_problem_dirs(path))
        except OSError as exc:      # e.g. run as a user who may not read the root-only spool
            return skip(f"the spool {spool} cannot be read: {exc.strerror or exc}", ev,
                        "Run crashkit check as root to see the spool.")
        ev += [f"free {free} bytes", f"problem directories use {used} bytes"]
        if cfg.min_free_space and free < cfg.min_free_space:
            return fail(f"{free >> 20} MiB free on the spool's filesystem, below the hook's floor of "
                        f"{cfg.min_free_space >> 20} MiB: new crashes are only counted", ev,
                        "Free space on that filesystem or lower min_free_space in crashkit.toml.")
        if cfg.max_spool_size and used > 0.9 * cfg.max_spool_size:
            return warn(f"the spool holds {used >> 20} MiB of its {cfg.max_spool_size >> 20} MiB quota: "
                        "old crashes are being deleted", ev, "Report and remove old problem directories "
                        "(`crashkit list`, `crashkit rm`) or raise max_spool_size.")
        return passed(f"{free >> 20} MiB free, spool {used >> 20} MiB of {cfg.max_spool_size >> 20} MiB", ev)


class Kdump(Check):
    id = "crash.kdump"
    phase = "crash"
    title = "crashkernel reserved and the kdump kernel loaded"

    def run(self, host: Host) -> Result:
        params = proc.parse_cmdline_params(host.text("/proc/cmdline") or "")
        size = proc.parse_int(host.text("/sys/kernel/kexec_crash_size"))
        loaded = proc.parse_int(host.text("/sys/kernel/kexec_crash_loaded"))
        ev = [f"crashkernel={params.get('crashkernel', '(not set)')}",
              f"kexec_crash_size {size if size is not None else '(absent)'}",
              f"kexec_crash_loaded {loaded if loaded is not None else '(absent)'}"]
        if size is None and loaded is None:
            return skip("this kernel has no kexec crash support (no /sys/kernel/kexec_crash_*)", ev)
        if not size:
            return warn("no memory reserved for a crash kernel: a kernel panic leaves no vmcore", ev,
                        "Add crashkernel=auto (RHEL) or crashkernel=512M to the kernel command line "
                        "and install kdump-tools / kexec-tools.")
        if not loaded:
            return fail(f"{size >> 20} MiB reserved for a crash kernel, but none is loaded", ev,
                        "Start the kdump service (systemctl enable --now kdump / kdump-tools).")
        return passed(f"crash kernel loaded in {size >> 20} MiB", ev)


class Pstore(Check):
    id = "crash.pstore"
    phase = "crash"
    title = "pstore mounted and not full"
    MAX_RECORDS = 10

    def run(self, host: Host) -> Result:
        mounts = proc.parse_mountinfo(host.text("/proc/self/mountinfo") or "")
        mounted = [m for m in mounts if m.fstype == "pstore"]
        backend = (host.text("/sys/module/pstore/parameters/backend") or "").strip()
        has_module = host.exists("/sys/module/pstore")
        ev = [f"pstore mounted at {', '.join(m.mountpoint for m in mounted) or '(nowhere)'}",
              f"backend {backend or '(none)'}"]
        if not mounted:
            if not has_module:
                return skip("this kernel has no pstore", ev)
            return warn("pstore is not mounted: the previous kernel's last messages cannot be read", ev,
                        "mount -t pstore pstore /sys/fs/pstore")
        names = host.listdir(mounted[0].mountpoint)
        ev.append(f"{len(names)} record(s): {' '.join(names[:10])}")
        if not backend or backend == "(null)":
            return warn("pstore is mounted but has no backend: nothing will be saved on a panic", ev,
                        "Enable a backend: efi_pstore, ramoops (ramoops.mem_address=...), erst.")
        if len(names) >= self.MAX_RECORDS:
            return warn(f"pstore holds {len(names)} records: its small storage may be full", ev,
                        "Collect them (`crashkit oops collect --source pstore`) and remove them; "
                        "systemd-pstore does this at boot.")
        return passed(f"pstore mounted with backend {backend}, {len(names)} record(s)", ev)
