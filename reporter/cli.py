"""``crashkit list`` / ``crashkit info DIR`` / ``crashkit rm DIR...``: problem directories in the spool."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from reporter import elements, reported_to
from reporter.dumpdir import DumpDir, is_problem_dir, iter_problem_dirs, spool_path
from reporter.errors import ProblemDirError, ReporterError

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


# ------------------------------------------------------------------------ list


def summarize(dd: DumpDir) -> dict[str, Any]:
    """The ``crashkit list --json`` object of one open problem directory."""
    records = reported_to.parse(dd.load_text("reported_to"))
    last: dict[str, str | None] = {}
    for record in records:  # last record of each label wins, first-seen order kept
        last[record.label] = record.url
    reported: list[dict[str, str | None]] | bool = (
        [{"label": label, "url": url} for label, url in last.items()] if last else False
    )
    return {
        "directory": dd.path,
        "time": dd.time(),
        "last_occurrence": dd.last_occurrence(),
        "type": dd.load_text("type"),
        "executable": dd.load_text("executable") or None,
        "reason": dd.load_text("reason") or None,
        "count": dd.count(),
        "reported": reported,
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
        except ReporterError as exc:  # deleted or locked meanwhile: list the rest
            print(f"crashkit: warning: {exc}", file=sys.stderr)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
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
            _one_line(row["type"], 12),
            "yes" if row["reported"] else "no",
            _one_line(row["reason"] or "", REASON_WIDTH),
            os.path.basename(row["directory"]),
        ))
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    for r in table:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]
        print("  ".join(cells))


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------------ info


def describe(dd: DumpDir) -> dict[str, Any]:
    """The ``crashkit info --json`` object: text elements in full, binary ones by size."""
    text: dict[str, str] = {}
    binary: dict[str, int] = {}
    for name in dd.list_elements():
        try:
            size = dd.element_size(name)
            if size is None:
                continue
            if size > elements.MAX_TEXT_SIZE:
                binary[name] = size
                continue
            data = dd.load_bytes(name)
        except ProblemDirError:
            continue  # replaced by a symlink / hard link meanwhile: not an element we read
        if data is None:
            continue
        if elements.is_text(data):
            text[name] = elements.load_text(data)
        else:
            binary[name] = len(data)
    return {"directory": dd.path, "owner": dd.owner(), "elements": text, "binary": binary}


def cmd_info(args: argparse.Namespace) -> int:
    """``crashkit info DIR``."""
    with DumpDir.open(args.dir, readonly=True, timeout=LOCK_TIMEOUT) as dd:
        info = describe(dd)
    if args.json:
        json.dump(info, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return EXIT_OK
    out = [f"directory: {info['directory']}"]
    if info["owner"] is not None:
        out.append(f".libreport/owner: {info['owner']}")
    for name in sorted(set(info["elements"]) | set(info["binary"])):
        if name in info["binary"]:
            out.append(f"{name}: <binary, {info['binary'][name]} bytes>")
            continue
        value = info["elements"][name]
        if "\n" in value:
            out.append(f"{name}:")
            out.extend("    " + line for line in value.rstrip("\n").split("\n"))
        else:
            out.append(f"{name}: {value}")
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
