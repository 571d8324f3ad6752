"""``crashkit backtrace CORE|DIR|MATCH``: coripper's unwinder, reached with the same matches as
``list``, ``info`` and ``gdb``.

The subcommand itself is :mod:`coripper.backtrace_cli` (coripper imports nothing of ours, so it
cannot read the spool); this adds ``--spool`` and turns an argument that names no file or
directory into a match: the newest crash it names is unwound.
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MATCH_NOTE = (" or a MATCH naming a crash in the spool (PID, executable, directory name, "
              "container=NAME, type=TYPE...: the newest one it names)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backtrace`` (coripper's parser) with ``--spool`` and matches."""
    from coripper import backtrace_cli

    backtrace_cli.register(subparsers)
    p = subparsers.choices["backtrace"]
    for action in p._actions:  # argparse has no public way to amend a positional's help
        if action.dest == "core":
            action.metavar = "CORE|DIR|MATCH"
            action.help = (action.help or "") + MATCH_NOTE
    p.add_argument("--spool", metavar="DIR", help="spool directory for a MATCH (default "
                                                  "$CRASHKIT_SPOOL or /var/spool/crashkit)")
    unwind = p.get_default("func")
    p.set_defaults(func=lambda args: run(args, unwind))


def run(args: argparse.Namespace, unwind: Callable[[argparse.Namespace], int]) -> int:
    """Resolve a match to its problem directory, then unwind it."""
    if not os.path.exists(args.core):
        from reporter.cli import resolve
        from reporter.display import escape

        args.match = [args.core]
        row, count = resolve(args)
        if count > 1:
            print(f"crashkit: {count} problems match, using the newest: {escape(row['name'])}",
                  file=sys.stderr)
        args.core = row["directory"]
    return unwind(args)
