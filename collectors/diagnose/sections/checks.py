"""The host checks (``crashkit check --json``), with the state already collected."""

from __future__ import annotations

from collectors.diagnose.base import MiB, Section, SectionContext


class ChecksSection(Section):
    name = "checks"
    title = "Host lifecycle checks"
    time_limit = 90.0
    budget = 2 * MiB
    after = ("state",)

    def collect(self, ctx: SectionContext) -> None:
        from collectors.checks import render
        from collectors.checks.host import Host, HostConfig
        from collectors.checks.run import run_checks

        host = Host(HostConfig(root=ctx.options.root, spool=ctx.options.spool,
                               state_json=ctx.shared.get("state"),
                               opt_ins=frozenset({"self_test"} if ctx.options.self_test else ())))
        records = run_checks(host)
        ctx.shared["checks"] = records
        ctx.add_json("checks.json", render.checks_json(records), "crashkit check --json")
