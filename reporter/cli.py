"""``crashkit list`` / ``crashkit info DIR`` / ``crashkit rm DIR...``: problem directories in the spool."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from reporter import elements, reported_to
from reporter.display import escape
from reporter.dumpdir import DumpDir, is_problem_dir, iter_problem_dirs, spool_path
from reporter.errors import BadElementError, ProblemDirError, ReporterError

T = TypeVar("T")

EXIT_OK = 0
EXIT_USAGE = 2
# How long the commands wait for a live lock holder (e.g. abrtd running an event).
LOCK_TIMEOUT = 10.0
REASON_WIDTH = 48


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``list``, ``info`` and ``rm`` to the ``crashkit`` parser."""
    p = subparsers.add_parser("list", help="list the problem directories in the spool",
                              description="List the problem directories in the spool "
                                          "(--spool > $CRASHKIT_SPOOL > /var/spool/crashkit).")
    p.add_argument("--spool", metavar="DIR", help="spool directory")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("info", help="show the elements of a problem directory",
                              description="Show every element of a problem directory: text "
                                          "elements in full, binary ones as their size.")
    p.add_argument("dir", metavar="DIR", help="problem directory")
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser("rm", help="delete problem directories",
                              description="Delete problem directories with libreport's locking "
                                          "and delete protocol. Nothing is deleted if any DIR is "
                                          "not a problem directory.")
    p.add_argument("dirs", metavar="DIR", nargs="+", help="problem directory")
    p.set_defaults(func=cmd_rm)


# ------------------------------------------------------------------------ reading


def _guarded(problems: dict[str, str], read: Callable[[], T]) -> T | None:
    """*read*'s result, or ``None`` with the element's problem noted in *problems*."""
    try:
        return read()
    except BadElementError as exc:
        problems.setdefault(exc.element, exc.problem)
        return None


def _read(dd: DumpDir, name: str, problems: dict[str, str]) -> tuple[int, bytes | None] | None:
    """``(size, data)`` of element *name*, *data* only up to libreport's 8 MiB text limit;
    ``None`` if missing or not read (the reason goes into *problems*)."""
    try:
        return dd.load_bounded(name, elements.MAX_TEXT_SIZE)
    except BadElementError as exc:
        problems.setdefault(exc.element, exc.problem)
        return None


def _text(dd: DumpDir, name: str, problems: dict[str, str]) -> str | None:
    """Text element *name* read with libreport's text limit; ``None`` if missing or not read."""
    got = _read(dd, name, problems)
    if got is None:
        return None
    size, data = got
    if data is None:
        problems.setdefault(name, f"{size} bytes, more than the {elements.MAX_TEXT_SIZE} of a "
                                  "text element: not read")
        return None
    return elements.load_text(data)


# ------------------------------------------------------------------------ list


def summarize(dd: DumpDir) -> dict[str, Any]:
    """The ``crashkit list --json`` object of one open problem directory.

    Every read is bounded; an element that cannot be read (not a regular file, hard-linked,
    too big) is ``null`` and named in ``problems``, with the other fields still filled.
    """
    problems = dd.entry_problems()
    records = reported_to.parse(_text(dd, "reported_to", problems) or "")
    last: dict[str, str | None] = {}
    for record in records:  # last record of each label wins, first-seen order kept
        last[record.label] = record.url
    reported: list[dict[str, str | None]] | bool = (
        [{"label": label, "url": url} for label, url in last.items()] if last else False
    )
    return {
        "directory": dd.path,
        "time": _guarded(problems, dd.time),
        "last_occurrence": _guarded(problems, dd.last_occurrence),
        "type": _text(dd, "type", problems),
        "executable": _text(dd, "executable", problems) or None,
        "reason": _text(dd, "reason", problems) or None,
        "count": _guarded(problems, dd.count),
        "reported": reported,
        "problems": dict(sorted(problems.items())),
    }


def cmd_list(args: argparse.Namespace) -> int:
    """``crashkit list``."""
    spool = spool_path(args.spool)
    if args.spool and not os.path.isdir(args.spool):
        raise ProblemDirError(f"spool '{args.spool}' is not a directory")
    rows = []
    for path in iter_problem_dirs(spool):
        try:
            with DumpDir.open(path, readonly=True, timeout=LOCK_TIMEOUT) as dd:
                rows.append(summarize(dd))
        except (ReporterError, OSError) as exc:  # deleted or locked meanwhile: list the rest
            print(f"crashkit: warning: {escape(' '.join(str(exc).split()))}", file=sys.stderr)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)  # ensure_ascii: \uXXXX, never a raw control
        sys.stdout.write("\n")
    else:
        _print_table(rows)
    return EXIT_OK


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = ("TIME", "COUNT", "TYPE", "REPORTED", "REASON", "DIRECTORY")
    table = [header]
    for row in rows:
        when = row["last_occurrence"] or row["time"]
        table.append((
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if when is not None else "-",
            "-" if row["count"] is None else str(row["count"]),
            _one_line(row["type"] or "-", 12),
            "yes" if row["reported"] else "no",
            _one_line(row["reason"] or "", REASON_WIDTH),
            escape(os.path.basename(row["directory"])),
        ))
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    notes: list[dict[str, str]] = [{}, *(row["problems"] for row in rows)]
    for r, problems in zip(table, notes, strict=True):
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]
        print("  ".join(cells))
        for name, problem in problems.items():  # under the row: the directory is listed
            print(f"    problem: {escape(name)}: {escape(problem)}")


def _one_line(text: str, width: int) -> str:
    text = escape(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


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
        got = _read(dd, name, problems)
        if got is None:
            continue  # removed meanwhile, or not an element we read
        size, data = got
        if data is not None and elements.is_text(data):
            text[name] = elements.load_text(data)
        else:
            binary[name] = size
    return {"directory": dd.path, "owner": dd.owner(), "elements": text, "binary": binary,
            "problems": problems}


def cmd_info(args: argparse.Namespace) -> int:
    """``crashkit info DIR``."""
    with DumpDir.open(args.dir, readonly=True, timeout=LOCK_TIMEOUT) as dd:
        info = describe(dd)
    if args.json:
        json.dump(info, sys.stdout, indent=2, sort_keys=True)  # ensure_ascii, as list
        sys.stdout.write("\n")
        return EXIT_OK
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
    print("\n".join(out))
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
