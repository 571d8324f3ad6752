"""Processes (never their environments)."""

from __future__ import annotations

from collectors.diagnose.base import MiB, Section, SectionContext


class ProcessesSection(Section):
    name = "processes"
    title = "Processes and limits"
    time_limit = 10.0
    budget = 8 * MiB

    def collect(self, ctx: SectionContext) -> None:
        ctx.add_command("ps.txt", ["ps", "-eo", "pid,ppid,user,stat,lstart,etime,rss,vsz,wchan:24,args"])
        ctx.add_file("pid1_limits", "/proc/1/limits")
        ctx.add_file("loadavg", "/proc/loadavg")
        ctx.add_command("systemctl-failed.txt", ["systemctl", "list-units", "--failed", "--no-pager", "--plain"],
                        timeout=10)
