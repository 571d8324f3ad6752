"""The crash hook: its status, config and log."""

from __future__ import annotations

import os

from collectors.diagnose.base import MiB, Section, SectionContext


class HookSection(Section):
    name = "hook"
    title = "Crash hook status and log"
    time_limit = 10.0
    budget = 4 * MiB

    def collect(self, ctx: SectionContext) -> None:
        from collectors.corehook import config as config_mod
        from collectors.corehook import install

        paths = install.default_paths()
        try:
            status = install.status(paths)
        except (OSError, ValueError) as exc:
            status = {"error": str(exc)}
        ctx.add_json("status.json", status, "crashkit hook status --json")
        cfg_path = paths.hook_config if status.get("installed") else config_mod.config_path()
        ctx.add_file("hook.toml", cfg_path)
        cfg = config_mod.load_config(cfg_path)
        ctx.shared["spool"] = ctx.options.spool or (cfg.spool if status.get("installed") else None)
        if cfg.log_file and os.path.lexists(cfg.log_file):
            ctx.add_file("hook.log", cfg.log_file, limit=2 * MiB, tail=True)
        ctx.add_command("journal-hook.txt", ["journalctl", "--no-pager", "--quiet", "-o", "short-iso", "-t",
                                             "crashkit-hook", "--since", f"@{int(ctx.options.since)}"], timeout=10)
