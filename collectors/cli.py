"""The ``crashkit`` umbrella command, assembled from the subcommand groups each package declares.

Every group is a module with ``register(subparsers)``; each subparser it adds sets
``func`` (``func(args) -> int``). Errors of our packages and OS errors become one
line on stderr and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

# (module, description) of every subcommand group, in --help order.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "reporter.cli",
    "collectors.corehook.cli",
    "coripper.backtrace_cli",
    "collectors.oops.cli",
    "collectors.state.cli",
    "collectors.checks.cli",
    "collectors.diagnose.cli",
    "reporter.server.cli",
)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Return the complete ``crashkit`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="crashkit",
        description="Linux crash capture, core minimization, kernel oops collection and reporting.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a group that is not built yet
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``crashkit``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="crashkit: %(levelname)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_handler(func, args, debug=args.debug, prog="crashkit")


def run_handler(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, *,
                debug: bool, prog: str) -> int:
    """Run a subcommand handler, turning expected failures into a one-line error and exit 2."""
    from coripper.errors import CoripperError
    from reporter.errors import ReporterError

    from collectors.errors import CollectorError

    try:
        return int(func(args) or 0)
    except BrokenPipeError:
        # Output piped into e.g. `head`: not an error of ours; keep Python's exit-time flush quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except (CoripperError, ReporterError, CollectorError, OSError, ValueError) as exc:
        if debug:
            raise
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def one_line(exc: BaseException) -> str:
    """Render an exception as a single line (OSError with its path, others with their message)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
