"""``crashkit list [MATCH...]`` / ``info [MATCH...]`` / ``rm DIR...``: crashes in the spool.

Matches and filters are coredumpctl's (:mod:`reporter.match`); rows come from
:mod:`reporter.listing`; the table is sized to the terminal and paged there
(:mod:`reporter.display`, :mod:`reporter.pager`). Keys and forms: docs/cli.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from reporter import elements, listing
from reporter.display import Column, escape, fit, human_size, render, terminal_width, use_colour
from reporter.dumpdir import DumpDir, is_problem_dir, spool_path
from reporter.errors import ProblemDirError
from reporter.match import Matcher, NoMatchError, parse_time, select, signal_name, when

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at start-up
    from typing import Any

EXIT_OK = 0
EXIT_USAGE = 2
LOCK_TIMEOUT = listing.LOCK_TIMEOUT
REASON_WIDTH = 48
MATCH_HELP = ("PID, executable name or path, problem directory name or path, container=NAME, "
              "type=TYPE, uid=N, sig=SIGNAL (several of one field: any; of different fields: all)")
# Kept for callers of the earlier module layout.
summarize = listing.summarize


def add_match_arguments(p: argparse.ArgumentParser, nargs: str = "*") -> None:
    """The MATCH words and ``--spool``, as every command that picks crashes takes them."""
    p.add_argument("match", metavar="MATCH", nargs=nargs, help=MATCH_HELP)
    p.add_argument("--spool", metavar="DIR", help="spool directory (default $CRASHKIT_SPOOL or "
                                                  "/var/spool/crashkit)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``list``, ``info`` and ``rm`` to the ``crashkit`` parser."""
    p = subparsers.add_parser(
        "list", help="list crashes in the spool (coredumpctl-style matches and filters)",
        description="List the crashes (problem directories) in the spool, oldest first, or those "
                    "MATCH names. Directories that cannot be read are listed with the reason.")
    add_match_arguments(p)
    p.add_argument("--since", metavar="TIME", help="only crashes at or after TIME (journalctl forms: "
                                                    "-1h, yesterday, 2024-05-01 12:00, @SECONDS)")
    p.add_argument("--until", metavar="TIME", help="only crashes at or before TIME")
    # journalctl takes `--since -1h`: let argparse see "-1h" as a value, not an option (its
    # negative-number rule is the only hook for that; this parser has no option like -1).
    import re

    p._negative_number_matcher = re.compile(r"^-\d")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="only the N newest")
    p.add_argument("-r", "--reverse", action="store_true", help="newest first")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--reported", action="store_true", help="only crashes reported somewhere")
    which.add_argument("--unreported", action="store_true", help="only crashes not reported yet")
    p.add_argument("--json", action="store_true", help="print a JSON array (keys in docs/cli.md)")
    p.add_argument("--no-legend", action="store_true", help="no header line")
    p.add_argument("--no-pager", action="store_true", help="do not pipe the output into a pager")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser(
        "info", help="show every element of the newest matching crash",
        description="Show every element of the newest crash MATCH names (of all crashes without "
                    "MATCH): text elements in full, binary ones as their size.")
    add_match_arguments(p)
    p.add_argument("--json", action="store_true", help="print a JSON object (keys in docs/cli.md)")
    p.add_argument("--no-pager", action="store_true", help="do not pipe the output into a pager")
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser("rm", help="delete problem directories",
                              description="Delete problem directories with libreport's locking "
                                          "and delete protocol. Nothing is deleted if any DIR is "
                                          "not a problem directory.")
    p.add_argument("dirs", metavar="DIR", nargs="+", help="problem directory")
    p.set_defaults(func=cmd_rm)


# ------------------------------------------------------------------------ choosing crashes


def _spool(args: argparse.Namespace) -> str:
    if args.spool and not os.path.isdir(args.spool):
        raise ProblemDirError(f"spool '{args.spool}' is not a directory")
    return spool_path(args.spool)


def _explicit_dir(words: list[str]) -> str | None:
    """The directory the user named by path (``info ./ccpp-...``): one word with a ``/``
    naming an existing directory."""
    if len(words) == 1 and "/" in words[0] and os.path.isdir(words[0]):
        return words[0]
    return None


def resolve(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """The newest crash the MATCH words name (any crash without words) and how many they name.

    A word that is the path of a directory opens that directory, in the spool or not.
    :class:`NoMatchError` (exit 1) when nothing matches.
    """
    words = list(args.match)
    path = _explicit_dir(words)
    if path is not None:
        return listing.open_row(path, LOCK_TIMEOUT), 1
    matcher = Matcher.parse(words)
    spool = _spool(args)
    rows = [r for r in listing.scan(spool) if listing.DIRECTORY_KEY not in r["problems"] or words]
    chosen = select(rows, matcher)
    if not chosen:
        raise NoMatchError(f"no problem matches {matcher.describe()}" if words
                           else f"no problem in {spool}")
    return dict(chosen[-1]), len(chosen)


# ------------------------------------------------------------------------ list


COLUMNS = [Column("TIME"), Column("PID", right=True), Column("UID", right=True), Column("SIG"),
           Column("COUNT", right=True), Column("EXE", min_width=10, cut="start"),
           Column("CONTAINER", min_width=9), Column("SIZE", right=True), Column("REPORTED"),
           Column("REASON", min_width=16, drop=True), Column("DIRECTORY", drop=True)]
# On a narrow terminal: REASON shrinks, then goes; DIRECTORY goes (the PID or the executable
# still names the crash); then CONTAINER and EXE shrink.
SHRINK_ORDER = [9, 10, 6, 5]


def _container(row: dict[str, Any]) -> str:
    kind, ident = row.get("container"), row.get("container_id")
    if not kind:
        return "-"
    if ident and len(ident) == 64 and all(c in "0123456789abcdef" for c in ident):
        ident = ident[:12]
    return f"{kind}:{ident}" if ident else str(kind)


def _cells(row: dict[str, Any]) -> list[str]:
    t = when(row)
    pid = row["global_pid"] if row["global_pid"] is not None else row["pid"]
    reason = escape(" ".join((row["reason"] or "").split()))
    return [
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-",
        "-" if pid is None else str(pid),
        "-" if row["uid"] is None else str(row["uid"]),
        signal_name(row["signal"]) or "-",
        "-" if row["count"] is None else str(row["count"]),
        escape(row["executable"] or "-"),
        escape(_container(row)),
        human_size(row["core_size"]),
        "yes" if row["reported"] else "no",
        reason if len(reason) <= REASON_WIDTH else reason[: REASON_WIDTH - 1] + "…",
        escape(row["name"]),
    ]


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    now = time.time()
    if args.lines is not None and args.lines < 0:
        raise ValueError(f"-n {args.lines}: not a count")
    return {
        "since": parse_time(args.since, now) if args.since else None,
        "until": parse_time(args.until, now) if args.until else None,
        "reported": True if args.reported else False if args.unreported else None,
        "limit": args.lines, "reverse": args.reverse,
    }


def cmd_list(args: argparse.Namespace) -> int:
    """``crashkit list``."""
    matcher = Matcher.parse(args.match)
    filters = _filters(args)
    path = _explicit_dir(args.match)
    rows = [listing.open_row(path, LOCK_TIMEOUT)] if path else listing.scan(_spool(args))
    chosen = select(rows, None if path else matcher, **filters)
    if not chosen and args.match:
        raise NoMatchError(f"no problem matches {matcher.describe()}")
    if args.json:
        import json

        # One write (stdout may be unbuffered); ensure_ascii: \uXXXX, never a raw control.
        sys.stdout.write(json.dumps(chosen, indent=2) + "\n")
        return EXIT_OK
    tty = sys.stdout.isatty()
    colour = use_colour(tty)
    table = [_cells(dict(r)) for r in chosen]
    widths = fit(COLUMNS, table, terminal_width(1, tty), SHRINK_ORDER)
    lines = render(COLUMNS, table, widths, legend=not args.no_legend, colour=colour)
    out = lines[:1] if not args.no_legend else []
    for line, row in zip(lines[len(out):], chosen, strict=True):
        out.append(line)
        for name, problem in row["problems"].items():  # under the row: the directory is listed
            note = f"    problem: {escape(name)}: {escape(problem)}"
            out.append(f"\x1b[31m{note}\x1b[0m" if colour else note)
    from reporter.pager import paged

    with paged(not args.no_pager and len(out) > 1):
        if out:
            sys.stdout.write("\n".join(out) + "\n")
            sys.stdout.flush()
    return EXIT_OK


# ------------------------------------------------------------------------ info


def describe(dd: DumpDir) -> dict[str, Any]:
    """The ``crashkit info --json`` object: text elements in full, binary ones by size, and
    the entries that are not readable elements with the reason.

    Each element is measured and read through one descriptor, at most 8 MiB (libreport's
    text limit; a bigger element is binary and only its size is shown).
    """
    problems = dd.entry_problems()
    text: dict[str, str] = {}
    binary: dict[str, int] = {}
    for name in dd.list_elements():
        if name in problems:
            continue  # e.g. a hard link: not read
        try:
            got = dd.load_bounded(name, elements.MAX_TEXT_SIZE)
        except ProblemDirError as exc:
            problems.setdefault(name, getattr(exc, "problem", str(exc)))
            continue
        if got is None:
            continue  # removed meanwhile
        size, data = got
        if data is not None and elements.is_text(data):
            text[name] = elements.load_text(data)
        else:
            binary[name] = size
    return {"directory": dd.path, "owner": dd.owner(), "elements": text, "binary": binary,
            "problems": problems}


def _info_lines(info: dict[str, Any]) -> list[str]:
    out = [f"directory: {escape(info['directory'])}"]
    if info["owner"] is not None:
        out.append(f".libreport/owner: {info['owner']}")
    for name in sorted(set(info["elements"]) | set(info["binary"]) | set(info["problems"])):
        shown = escape(name)
        if name in info["problems"]:
            out.append(f"{shown}: <not read: {escape(info['problems'][name])}>")
        elif name in info["binary"]:
            out.append(f"{shown}: <binary, {info['binary'][name]} bytes>")
        elif "\n" in (value := info["elements"][name]):
            out.append(f"{shown}:")
            out.extend("    " + escape(line, keep="\t") for line in value.rstrip("\n").split("\n"))
        else:
            out.append(f"{shown}: " + escape(value, keep="\t"))
    return out


def cmd_info(args: argparse.Namespace) -> int:
    """``crashkit info [MATCH...]``: the newest match; how many matched goes to stderr."""
    row, count = resolve(args)
    with DumpDir.open(row["directory"], readonly=True, timeout=LOCK_TIMEOUT) as dd:
        info = describe(dd)
    info["matches"] = count
    if count > 1:
        print(f"crashkit: {count} problems match, showing the newest: {escape(row['name'])}",
              file=sys.stderr)
    if args.json:
        import json

        sys.stdout.write(json.dumps(info, indent=2, sort_keys=True) + "\n")  # ensure_ascii, as list
        return EXIT_OK
    from reporter.pager import paged

    with paged(not args.no_pager):
        sys.stdout.write("\n".join(_info_lines(info)) + "\n")
        sys.stdout.flush()
    return EXIT_OK


# ------------------------------------------------------------------------ rm


def cmd_rm(args: argparse.Namespace) -> int:
    """``crashkit rm DIR...``: refuse everything unless every DIR is a problem directory."""
    for path in args.dirs:
        if not is_problem_dir(path):
            raise ProblemDirError(f"'{path}' is not a problem directory")
    for path in args.dirs:
        with DumpDir.open(path, timeout=LOCK_TIMEOUT) as dd:
            dd.delete()
    return EXIT_OK
