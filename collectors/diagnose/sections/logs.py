"""dmesg, and a bounded slice of the journal and of /var/log/messages|syslog|kern.log."""

from __future__ import annotations

import os

from collectors.diagnose.base import MiB, Section, SectionContext

SYSLOGS = ("/var/log/messages", "/var/log/syslog", "/var/log/kern.log")


class LogsSection(Section):
    name = "logs"
    title = "Kernel log, journal and syslog"
    time_limit = 20.0
    budget = 48 * MiB

    def collect(self, ctx: SectionContext) -> None:
        ctx.add_command("dmesg.txt", ["dmesg"], timeout=10)
        since = f"@{int(ctx.options.since)}"
        ctx.add_command("journal.txt", ["journalctl", "--no-pager", "--quiet", "-o", "short-iso",
                                        "--since", since, "-n", "500000"], timeout=20)
        ctx.add_command("journal-boots.txt", ["journalctl", "--no-pager", "--list-boots"], timeout=10)
        for path in SYSLOGS:
            if os.path.lexists(path):
                ctx.add_file(os.path.basename(path), path, limit=12 * MiB, tail=True)
