"""The ``crashkit`` umbrella command, assembled from the subcommand groups each package declares.

:data:`COMMANDS` is the whole registry: one :class:`Command` line per subcommand, naming the
module that defines it. Only that module is imported, and only when its command runs, so
``crashkit list`` never loads the upload service or the oops parser. ``crashkit --help`` is
built from the table alone. A group module has ``register(subparsers)``; each subparser it
adds sets ``func`` (``func(args) -> int``). One module may register several commands (give
each its own line). tests/test_cli_registry.py checks that the table and the modules agree.

Adding a command: write its module with ``register(subparsers)``, then add one line to
:data:`COMMANDS`, with the same name, help and aliases as the module's ``add_parser`` call.

Errors of our packages and OS errors become one line on stderr and exit 2 (an error with an
``exit_code`` attribute chooses its own, e.g. 1 for "no problem matches"); ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # collections.abc costs milliseconds at start-up
    from collections.abc import Callable, Sequence

EXIT_OK = 0
EXIT_USAGE = 2

DESCRIPTION = "Linux crash capture, core minimization, kernel oops collection and reporting."
EPILOG = "Run 'crashkit COMMAND --help' for a command's options; man crashkit(8); docs/cli.md."


class Command:
    """One subcommand: its name, the module whose ``register()`` adds it, its one-line help
    (what ``crashkit --help`` shows), its aliases, whether its code logs through
    :mod:`logging` (configured before it runs; a command that does not skips the import), and
    whether the words after ``--`` are passed through untouched (``args.passthrough``, e.g.
    gdb's own arguments)."""

    __slots__ = ("name", "module", "help", "aliases", "logs", "passthrough")

    def __init__(self, name: str, module: str, help: str, aliases: tuple[str, ...] = (),  # noqa: A002
                 logs: bool = True, passthrough: bool = False) -> None:
        self.name = name
        self.module = module
        self.help = help
        self.aliases = aliases
        self.logs = logs
        self.passthrough = passthrough

    def __repr__(self) -> str:
        return f"Command({self.name!r}, {self.module!r})"


#: Every subcommand, in ``--help`` order.
COMMANDS: tuple[Command, ...] = (
    Command("list", "reporter.cli", "list crashes in the spool (coredumpctl-style matches and filters)",
            logs=False),
    Command("info", "reporter.cli", "show every element of the newest matching crash", logs=False),
    Command("gdb", "reporter.cli_debug", "open the newest matching crash in gdb", aliases=("debug",),
            logs=False, passthrough=True),
    Command("dump", "reporter.cli_debug", "write the newest matching crash's core, decompressed",
            logs=False),
    Command("backtrace", "reporter.cli_backtrace",
            "unwind every thread of a core (satyr core_backtrace, duphash)", logs=False),
    Command("rm", "reporter.cli", "delete problem directories", logs=False),
    Command("hook", "collectors.corehook.cli", "install, remove or inspect the core_pattern crash hook"),
    Command("oops", "collectors.oops.cli", "kernel oops, panic and warning reports"),
    Command("state", "collectors.state.cli",
            "containers and VMs on this host (OpenVZ, LXC, Docker, Podman, libvirt, nspawn, QEMU)"),
    Command("check", "collectors.checks.cli",
            "host lifecycle checks: boot, crash readiness, runtime, containers, reporting, shutdown"),
    Command("diagnose", "collectors.diagnose.cli",
            "support bundle and self-contained HTML report of this host"),
    Command("report", "reporter.events.cli",
            "run libreport event rules on a problem directory; flush the outbox"),
    Command("serve", "reporter.server.cli", "run the report upload service and its web UI"),
    Command("completion", "collectors.clidocs", "print the bash or zsh completion script", logs=False),
)


def find_command(name: str) -> Command | None:
    """The :class:`Command` called *name* (or with that alias), ``None`` if there is none."""
    for command in COMMANDS:
        if name == command.name or name in command.aliases:
            return command
    return None


def terminal_width() -> int:
    """``shutil.get_terminal_size().columns`` without importing :mod:`shutil` (and the zlib,
    bz2 and lzma it imports): ``$COLUMNS``, else the width of the terminal on stdout, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class Parser(argparse.ArgumentParser):
    """argparse's parser, but its help formatter (which every ``add_argument`` builds, to check
    the metavar) gets the terminal width from :func:`terminal_width`, not from :mod:`shutil`.
    Subcommands' parsers are of this class too (``add_subparsers`` uses the parent's class)."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        return self.formatter_class(prog=self.prog, width=terminal_width() - 2)  # type: ignore[call-arg]


def _top_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    parser: argparse.ArgumentParser = Parser(prog="crashkit", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser, subparsers


def _import(module: str) -> object:
    import importlib

    return importlib.import_module(module)


def build_parser(only: Command | None = None) -> argparse.ArgumentParser:
    """The ``crashkit`` argument parser: every group's real subparsers (importing every module:
    for completion and man pages), or with *only*, that command's module alone."""
    parser, subparsers = _top_parser()
    done: set[str] = set()
    for command in COMMANDS if only is None else (only,):
        if command.module not in done:
            done.add(command.module)
            _import(command.module).register(subparsers)  # type: ignore[attr-defined]
    return parser


def summary_parser() -> argparse.ArgumentParser:
    """A parser whose subcommands are stubs made from :data:`COMMANDS` (no module imported):
    enough for ``crashkit --help`` and for rejecting an unknown command."""
    parser, subparsers = _top_parser()
    for command in COMMANDS:
        subparsers.add_parser(command.name, help=command.help, aliases=command.aliases, add_help=False)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The subcommand named in *argv* (the top-level options take no values); ``None`` after
    a top-level ``--help``, which lists every command."""
    for word in argv:
        if word in ("--", "-h", "--help"):
            return None
        if not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``crashkit``; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    word = _command_word(argv)
    command = find_command(word) if word is not None else None
    if command is None:
        parser = summary_parser()
        parser.parse_args(argv)  # --help, an unknown command, a bad option: exits
        parser.print_help(sys.stderr)  # no command at all
        return EXIT_USAGE
    parser = build_parser(command)  # a module that fails to import is a packaging error: raise
    rest: list[str] = []
    if command.passthrough and "--" in argv:
        cut = argv.index("--")
        argv, rest = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(argv)
    if command.passthrough:
        args.passthrough = rest
    if command.logs or args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                            format="crashkit: %(levelname)s: %(message)s")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return run_handler(func, args, debug=args.debug, prog="crashkit")


#: (module, class) of the errors our packages raise on purpose.
ERROR_CLASSES = (("coripper.errors", "CoripperError"), ("reporter.errors", "ReporterError"),
                 ("collectors.errors", "CollectorError"))


def _expected_errors() -> tuple[type[BaseException], ...]:
    # An error of a package can only have been raised if its errors module is loaded: look
    # there instead of importing the three modules (and what they import) on every failure.
    found: list[type[BaseException]] = [OSError, ValueError]
    for module, name in ERROR_CLASSES:
        loaded = sys.modules.get(module)
        if loaded is not None:
            found.append(getattr(loaded, name))
    return tuple(found)


def run_handler(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, *,
                debug: bool, prog: str) -> int:
    """Run a subcommand handler, turning expected failures into a one-line error and exit 2
    (or the error's own ``exit_code``)."""
    try:
        return int(func(args) or 0)
    except BrokenPipeError:
        # Output piped into e.g. `head`: not an error of ours; keep Python's exit-time flush quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug or not isinstance(exc, _expected_errors()):
            raise
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        code = getattr(exc, "exit_code", EXIT_USAGE)
        return code if isinstance(code, int) else EXIT_USAGE


def one_line(exc: BaseException) -> str:
    """Render an exception as a single line (OSError with its path, others with their message)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
