"""``crashkit hook install | uninstall | status``."""

from __future__ import annotations

import argparse
import json
import os

from collectors.corehook import install as install_mod
from collectors.errors import HookError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``hook`` command group."""
    hook = subparsers.add_parser("hook", help="install, remove or inspect the core_pattern crash hook",
                                 description="Manage the core_pattern crash hook (crashkit-hook).")
    sub = hook.add_subparsers(dest="hook_command", metavar="ACTION")

    def _usage(args: argparse.Namespace) -> int:
        hook.print_help()
        return 2

    hook.set_defaults(func=_usage)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", help="where the launcher, hook.toml and the saved pattern "
                        "live (default $CRASHKIT_STATE_DIR or /var/lib/crashkit)")
    common.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("install", parents=[common], help="install the hook into core_pattern",
                       description="Write the hook's launcher and config, save the current "
                       "core_pattern and core_pipe_limit, and install ours (core_pipe_limit 0 by default: "
                       "the kernel pipes every crash and the hook sheds load itself; docs/hook.md).")
    p.add_argument("--spool", help="problem directory spool (default from crashkit.toml or "
                   "/var/spool/crashkit)")
    p.add_argument("--keep", choices=("minimized", "full", "none"), help="what to keep of the core")
    p.add_argument("--compress", choices=("none", "zstd"), help="compress the saved core")
    p.add_argument("--config", help="base config file (default $CRASHKIT_CONFIG or /etc/crashkit/crashkit.toml)")
    p.add_argument("--core-pipe-limit", type=int, default=None, metavar="N",
                   help="core_pipe_limit to set (default 0: no limit; a limit makes the kernel "
                   "drop the crashes past it)")
    p.add_argument("--with-libreport", action="store_true",
                   help="also place crashkit_event.conf in /etc/libreport/events.d/ when libreport is present")
    p.set_defaults(func=_install)

    p = sub.add_parser("uninstall", parents=[common], help="restore the previous core_pattern",
                       description="Restore the core_pattern and core_pipe_limit saved at install.")
    p.set_defaults(func=_uninstall)

    p = sub.add_parser("status", parents=[common], help="show what is installed",
                       description="Show the installed pattern, its executable, the saved pattern "
                       "and the spool. Exit 1 when our pattern points to a missing executable.")
    p.set_defaults(func=_status)


def _print(args: argparse.Namespace, data: dict[str, object], text: str) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(text)


def _install(args: argparse.Namespace) -> int:
    paths = install_mod.default_paths(args.state_dir)
    spool = os.path.abspath(args.spool) if args.spool else None
    limit = install_mod.DEFAULT_PIPE_LIMIT if args.core_pipe_limit is None else args.core_pipe_limit
    if limit < 0:
        raise HookError(f"--core-pipe-limit must be 0 or more, not {limit}")
    result = install_mod.install(paths, spool=spool, keep=args.keep, compress=args.compress,
                                 base_config=args.config, pipe_limit=limit)
    if args.with_libreport:
        result["libreport_events"] = install_mod.install_libreport_events()
    _print(args, result, f"installed: {result['core_pattern']}\n"
           f"previous pattern: {result['previous_core_pattern']}\nspool: {result['spool']}")
    return 0


def _uninstall(args: argparse.Namespace) -> int:
    paths = install_mod.default_paths(args.state_dir)
    result = install_mod.uninstall(paths)
    removed = install_mod.remove_libreport_events()
    if removed:
        result["libreport_events_removed"] = removed
    _print(args, result, f"restored core_pattern: {result['core_pattern']}")
    return 0


def _status(args: argparse.Namespace) -> int:
    paths = install_mod.default_paths(args.state_dir)
    data = install_mod.status(paths)
    lines = [f"core_pattern: {data['core_pattern']}",
             f"installed: {'yes' if data['installed'] else 'no'}"]
    if data["executable"]:
        lines.append(f"executable: {data['executable']} "
                     f"({'exists' if data['executable_exists'] else 'MISSING'}"
                     f"{', ours' if data['executable_is_ours'] else ''})")
    lines.append(f"core_pipe_limit: {data['core_pipe_limit']}")
    if data["saved_core_pattern"] is not None:
        lines.append(f"saved core_pattern: {data['saved_core_pattern']}")
    if data["spool"]:
        lines.append(f"spool: {data['spool']} ({data['spool_problems']} problems, "
                     f"{data['spool_size']} bytes)")
    _print(args, data, "\n".join(lines))
    broken = data["installed"] and not (data["executable_exists"] and data["executable_is_ours"])
    return 1 if broken else 0
