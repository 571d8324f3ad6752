"""Container and VM state (the state collector, ``crashkit state --json``)."""

from __future__ import annotations

from collectors.diagnose.base import MiB, Section, SectionContext


class StateSection(Section):
    name = "state"
    title = "Containers and VMs"
    time_limit = 20.0
    budget = 8 * MiB

    def collect(self, ctx: SectionContext) -> None:
        from collectors.state import render
        from collectors.state.base import Options
        from collectors.state.collect import collect_state

        state = render.state_json(collect_state(Options(root=ctx.options.root)))
        ctx.shared["state"] = state
        ctx.add_json("state.json", state, "crashkit state --json")
