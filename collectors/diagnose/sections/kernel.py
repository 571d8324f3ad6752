"""Kernel command line, modules and the crash-relevant sysctls."""

from __future__ import annotations

from collectors.diagnose.base import MiB, Section, SectionContext

SYSCTLS = ("kernel/tainted", "kernel/core_pattern", "kernel/core_pipe_limit", "kernel/core_uses_pid",
           "kernel/panic", "kernel/panic_on_oops", "kernel/hung_task_timeout_secs", "kernel/osrelease",
           "kernel/version", "fs/suid_dumpable", "fs/file-nr", "vm/overcommit_memory")


class KernelSection(Section):
    name = "kernel"
    title = "Kernel command line, modules and sysctls"
    time_limit = 15.0
    budget = 8 * MiB

    def collect(self, ctx: SectionContext) -> None:
        ctx.add_file("cmdline", "/proc/cmdline")
        ctx.add_file("modules", "/proc/modules")
        ctx.add_file("vmstat", "/proc/vmstat")
        for key in ("cpu", "memory", "io"):
            ctx.add_file(f"pressure_{key}", f"/proc/pressure/{key}")
        for s in SYSCTLS:
            ctx.add_file("sys_" + s.replace("/", "_"), f"/proc/sys/{s}")
        for f in ("kexec_crash_loaded", "kexec_crash_size"):
            ctx.add_file(f, f"/sys/kernel/{f}")
        ctx.add_command("sysctl.txt", ["sysctl", "-a"])
