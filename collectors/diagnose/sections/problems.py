"""The problem directories in the spool: metadata always (never ``environ``), minimized cores
with ``--with-cores``, and every entry that is not a valid problem directory, with why."""

from __future__ import annotations

import json
import os
from typing import Any

from collectors.diagnose.base import MiB, Section, SectionContext

#: Elements never copied: the crashed process's environment holds secrets.
NEVER = frozenset({"environ"})
CORES = ("coredump", "coredump.zst")
MAX_FRAMES = 40


def default_spool(option: str | None) -> str:
    """--spool, else the installed hook's spool, else $CRASHKIT_SPOOL or the default."""
    from collectors.corehook import config as config_mod
    from collectors.corehook import install
    from reporter.dumpdir import spool_path

    if option:
        return option
    paths = install.default_paths()
    try:
        if install.status(paths).get("installed"):
            return config_mod.load_config(paths.hook_config).spool
    except (OSError, ValueError):
        pass
    return spool_path()


def crash_frames(core_backtrace: str) -> tuple[list[dict[str, Any]], int | None]:
    """The crash thread's frames of a ``core_backtrace`` (satyr JSON) and its signal."""
    try:
        bt = json.loads(core_backtrace)
    except ValueError:
        return [], None
    threads = bt.get("stacktrace") or [] if isinstance(bt, dict) else []
    crash = next((t for t in threads if isinstance(t, dict) and t.get("crash_thread")),
                 threads[0] if threads else {})
    frames = []
    for fr in (crash.get("frames") or [])[:MAX_FRAMES]:
        if isinstance(fr, dict):
            frames.append({"function": fr.get("function_name"), "file": fr.get("file_name"),
                           "address": fr.get("address"), "build_id": fr.get("build_id"),
                           "offset": fr.get("build_id_offset")})
    return frames, bt.get("signal") if isinstance(bt, dict) else None


class ProblemsSection(Section):
    name = "problems"
    title = "Problem directories in the spool"
    time_limit = 30.0
    budget = 64 * MiB

    def collect(self, ctx: SectionContext) -> None:
        from collectors.checks.spoolscan import scan_spool

        spool = default_spool(ctx.options.spool)
        summaries: list[dict[str, Any]] = []
        corrupt: list[dict[str, str]] = []
        try:
            os.listdir(spool)
        except OSError as exc:
            ctx.add_error("spool", spool, exc.strerror or str(exc))
        for entry in scan_spool(spool):
            if entry.problem:
                corrupt.append({"name": entry.name, "reason": entry.problem})
                continue
            if entry.name.endswith(".new"):
                continue
            summary = self._one(ctx, entry.path)
            if summary.get("error"):
                corrupt.append({"name": entry.name, "reason": summary["error"]})
            elif (summary.get("last_occurrence") or summary.get("time") or 0) >= ctx.options.since:
                summaries.append(summary)
        summaries.sort(key=lambda s: -(s.get("last_occurrence") or s.get("time") or 0))
        ctx.shared["problems"] = summaries
        ctx.shared["corrupt"] = corrupt
        ctx.add_json("problems.json", {"spool": spool, "problems": summaries, "corrupt": corrupt}, spool)

    def _one(self, ctx: SectionContext, path: str) -> dict[str, Any]:
        from reporter.cli import describe
        from reporter.dumpdir import DumpDir
        from reporter.errors import ReporterError

        name = os.path.basename(path)
        try:
            with DumpDir.open(path, readonly=True, timeout=5) as dd:
                info = describe(dd)
        except (ReporterError, OSError) as exc:
            return {"name": name, "error": " ".join(str(exc).split())}
        el: dict[str, str] = {k: v for k, v in info["elements"].items() if k not in NEVER}
        ctx.add_json(f"{name}.json", {"directory": path, "elements": el, "binary": info["binary"],
                                      "problems": info["problems"], "omitted": sorted(NEVER & set(info["elements"]))},
                     path)
        if ctx.options.with_cores:
            for core in CORES:
                if core in info["binary"]:
                    ctx.add_file(f"{name}.{core}", os.path.join(path, core), tail=False, binary=True)
        frames, bt_signal = crash_frames(el.get("core_backtrace", ""))

        def num(key: str) -> int | None:
            value = el.get(key, "").strip()
            return int(value) if value.isdigit() else None

        return {"name": name, "type": el.get("type"), "executable": el.get("executable"),
                "reason": el.get("reason"), "signal": num("signal") or bt_signal, "count": num("count") or 1,
                "time": num("time"), "last_occurrence": num("last_occurrence") or num("time"),
                "container": el.get("container"), "container_id": el.get("container_id"),
                "component": el.get("component"), "reported": "reported_to" in el,
                "duphash": el.get("duphash"), "frames": frames, "problems": info["problems"]}
