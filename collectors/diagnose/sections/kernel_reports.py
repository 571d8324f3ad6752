"""Kernel reports found by the oops collector in every kernel log source."""

from __future__ import annotations

from collectors.diagnose.base import MiB, Section, SectionContext


class KernelReportsSection(Section):
    name = "kernel_reports"
    title = "Kernel reports (oopses, panics, warnings, lockups)"
    time_limit = 30.0
    budget = 16 * MiB

    def collect(self, ctx: SectionContext) -> None:
        from collectors.checks.parsers.proc import boot_time
        from collectors.diagnose.kreports import collect_reports

        try:
            with open("/proc/stat", encoding="ascii", errors="replace") as f:
                btime = boot_time(f.read())
        except OSError:
            btime = None
        reports, errors = collect_reports(btime, ctx.options.since)
        ctx.shared["kernel_reports"] = reports
        ctx.add_json("kernel_reports.json", {"reports": [r.to_json() for r in reports], "errors": errors},
                     "crashkit oops scan of kmsg, journal, syslog, pstore and kdump")
