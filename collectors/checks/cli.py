"""``crashkit check [--json] [--phase PHASE] [--only ID] [--self-test]``: host lifecycle checks."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``check`` command."""
    p = subparsers.add_parser(
        "check", help="host lifecycle checks: boot, crash readiness, runtime, containers, reporting, shutdown",
        description="Check what loses crashes or breaks this host. Exit 0 when every check passes "
                    "or is skipped, 1 on any warning, failure or error, 2 on bad usage.")
    p.add_argument("--json", action="store_true", help="print {\"checks\": [...]} (keys in docs/checks.md)")
    p.add_argument("--phase", action="append", metavar="PHASE",
                   help="only this phase (boot, crash, runtime, containers, reporting, shutdown); repeatable")
    p.add_argument("--only", action="append", metavar="ID", help="only this check id (or id prefix); repeatable")
    p.add_argument("--self-test", action="store_true",
                   help="also crash a throw-away program through core_pattern and verify its problem directory")
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("--root", metavar="DIR", help="read a recorded host tree instead of this host")
    p.add_argument("--state-dir", metavar="DIR", help="the hook's state dir (default $CRASHKIT_STATE_DIR or /var/lib/crashkit)")
    p.add_argument("--spool", metavar="DIR", help="the spool (default: the installed hook's)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the evidence of passing checks too")
    p.set_defaults(func=run_check)


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())


def run_check(args: argparse.Namespace) -> int:
    """Handler of ``crashkit check``."""
    import os

    from collectors.checks import render
    from collectors.checks.host import Host, HostConfig
    from collectors.checks.run import exit_code, run_checks, select
    from collectors.errors import CollectorError

    checks = select(_split(args.phase), _split(args.only))
    if args.list:
        for c in checks:
            print(f"{c.id:<30} {c.phase:<11} {c.title}")
        return 0
    if args.root and not os.path.isdir(args.root):
        raise CollectorError(f"--root {args.root}: not a directory")
    host = Host(HostConfig(root=args.root or "/", state_dir=args.state_dir, spool=args.spool,
                           opt_ins=frozenset({"self_test"} if args.self_test else ())))
    records = run_checks(host, checks)
    if args.json:
        render.dump_json(records, sys.stdout)
    else:
        render.write_text(records, sys.stdout, verbose=args.verbose)
    return exit_code(records)
