"""Man pages (roff, ``man(7)`` macros) written from argparse parsers: crashkit(8) with every
subcommand and its options, crashkit-hook(8) from the hook's argv table and the ``crashkit
hook`` group, coripper(1). Pure: parsers in, text out (:mod:`collectors.clidocs` writes them).
"""

from __future__ import annotations

import argparse
import re

VERSION = "crashkit 0.1.0"
MANUAL = "crashkit"

ENVIRONMENT = [
    ("CRASHKIT_SPOOL", "the spool of problem directories (default /var/spool/crashkit)"),
    ("CRASHKIT_CONFIG", "the configuration file (default /etc/crashkit/crashkit.toml)"),
    ("CRASHKIT_STATE_DIR", "where the hook's launcher and settings live (default /var/lib/crashkit)"),
    ("SYSTEMD_PAGER, PAGER", "the pager for long output on a terminal (empty or cat: none); "
                             "SYSTEMD_LESS sets LESS (default FRSXMK)"),
    ("NO_COLOR", "set to anything: no colour; nothing is coloured when output is not a terminal"),
    ("COLUMNS", "the width tables are fitted to (default: the terminal's; no limit on a pipe)"),
    ("CRASHKIT_DEBUGGER, SYSTEMD_DEBUGGER", "the debugger of crashkit gdb (default gdb)"),
    ("CRASHKIT_PROGRESS", "0: no progress line on stderr (shown only on a terminal, after 1 s)"),
]


def esc(text: str) -> str:
    """*text* safe in roff: backslashes, hyphens of options, a leading ``.`` or ``'``."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.split("\n"))


def _usage(parser: argparse.ArgumentParser) -> str:
    fmt = argparse.HelpFormatter(prog=parser.prog, width=1_000_000)
    fmt.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return " ".join(fmt.format_help().split())


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    fmt = parser._get_formatter()
    return " ".join(fmt._expand_help(action).split()) if action.help else ""


def _invocation(action: argparse.Action) -> str:
    if not action.option_strings:
        return str(action.metavar or action.dest)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    metavar = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices
                                 else action.dest.upper())
    return ", ".join(f"{o} {metavar}" for o in action.option_strings)


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, list[str], argparse.ArgumentParser]]:
    """(name, aliases, parser) of each subcommand of *parser*, in definition order."""
    out: list[tuple[str, list[str], argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: dict[int, tuple[str, list[str], argparse.ArgumentParser]] = {}
            for name, sub in action.choices.items():
                if id(sub) in seen:
                    seen[id(sub)][1].append(name)
                else:
                    seen[id(sub)] = (name, [], sub)
                    out.append(seen[id(sub)])
    return out


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines = []
    for action in parser._actions:
        if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
            continue
        lines += [".TP", f"\\fB{esc(_invocation(action))}\\fR", esc(_help(parser, action))]
    return lines


def _commands(parser: argparse.ArgumentParser, depth: int = 0) -> list[str]:
    lines = []
    for _name, aliases, sub in _subparsers(parser):
        title = sub.prog + (f" (alias: {', '.join(aliases)})" if aliases else "")
        if depth == 0:
            lines += [f".SS {esc(title)}", esc(_usage(sub))]
        else:
            lines += [".TP", f"\\fB{esc(title)}\\fR", esc(_usage(sub))]
        if sub.description:
            lines += [".PP", esc(" ".join(sub.description.split()))]
        opts = _options(sub)
        if opts:
            lines += [".RS", *opts, ".RE"]
        lines += _commands(sub, depth + 1)
    return lines


def _header(name: str, section: int, summary: str) -> list[str]:
    return [f'.TH {name.upper()} {section} "" "{VERSION}" "{MANUAL}"', ".SH NAME",
            f"{esc(name)} \\- {esc(summary)}"]


def _exit_status() -> list[str]:
    return [".SH EXIT STATUS", ".TP", "0", "success", ".TP", "1",
            "it ran and found problems (a match that names no crash, a check that failed, "
            "a crash without core or executable)", ".TP", "2",
            "bad input or usage: a one\\-line error on stderr, no traceback (\\-\\-debug shows it)"]


def crashkit_page(parser: argparse.ArgumentParser) -> str:
    """crashkit(8)."""
    lines = _header("crashkit", 8, "capture, list, debug and report crashes on Linux")
    lines += [".SH SYNOPSIS", "\\fBcrashkit\\fR [\\-\\-debug] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]",
              ".SH DESCRIPTION", esc(parser.description or ""), ".PP",
              esc("Crashes are problem directories in libreport's format in the spool. A MATCH is "
                  "what coredumpctl(1) takes plus ours: a PID, an executable name or path, a problem "
                  "directory name or path, container=NAME, type=TYPE, uid=N, sig=SIGNAL; matches of "
                  "one field are alternatives, of different fields all apply. TIME (--since, "
                  "--until) takes journalctl's forms: -1h, 2 days ago, yesterday, "
                  "2024-05-01 12:00, @SECONDS."),
              ".SH OPTIONS", *_options(parser), ".SH COMMANDS", *_commands(parser), *_exit_status(),
              ".SH ENVIRONMENT"]
    for var, what in ENVIRONMENT:
        lines += [".TP", f"\\fB{esc(var)}\\fR", esc(what)]
    lines += [".SH FILES", ".TP", "/var/spool/crashkit", "problem directories", ".TP",
              "/etc/crashkit/crashkit.toml", "configuration", ".SH SEE ALSO",
              "\\fBcrashkit\\-hook\\fR(8), \\fBcoripper\\fR(1), \\fBcoredumpctl\\fR(1), \\fBgdb\\fR(1), "
              "\\fBcore\\fR(5)"]
    return "\n".join(lines) + "\n"


def _specifiers() -> list[tuple[str, str, str]]:
    """(argv position, specifier, meaning) rows of the table in collectors.corehook.args."""
    from collectors.corehook import args

    rows = []
    for line in (args.__doc__ or "").splitlines():
        m = re.match(r"(\d+)\s+``(%\w)``\s+(.*)$", line.strip())
        if m:
            rows.append((m.group(1), m.group(2), m.group(3).replace("``", "")))
    return rows


def hook_page(parser: argparse.ArgumentParser) -> str:
    """crashkit-hook(8): the core_pattern handler's argv and the ``crashkit hook`` commands."""
    from collectors.corehook.args import PATTERN_SPECIFIERS

    hook = next(sub for name, _, sub in _subparsers(parser) if name == "hook")
    lines = _header("crashkit-hook", 8, "the core_pattern crash handler of crashkit")
    lines += [".SH SYNOPSIS", f"\\fB|/var/lib/crashkit/crashkit\\-hook\\fR {esc(PATTERN_SPECIFIERS)}",
              ".br", esc(_usage(hook)), ".SH DESCRIPTION",
              esc("The kernel runs crashkit-hook for every process that dumps core, with the core on "
                  "standard input (core(5), \"Piping core dumps to a program\"). It writes a problem "
                  "directory with a minimized core into the spool and never fails towards the kernel: "
                  "errors go to its log. The launcher is generated by crashkit hook install (a "
                  "#!python -IS script that reads its settings from hook.toml); the previous "
                  "core_pattern is saved and restored by crashkit hook uninstall."),
              ".SH ARGUMENTS", esc("The kernel's specifiers, one word each (Linux 5.3 and later; "
                                   "older kernels split the expanded pattern on spaces, so the two "
                                   "free-text ones come last):")]
    for position, spec, meaning in _specifiers():
        lines += [".TP", f"\\fB{esc(spec)}\\fR (argument {position})", esc(meaning)]
    lines += [".TP", "\\fB\\-\\-config=\\fIPATH\\fR", "the hook.toml to read (the launcher passes it)",
              ".SH COMMANDS", *_commands(hook),
              ".SH FILES", ".TP", "/var/lib/crashkit/crashkit\\-hook", "the generated launcher", ".TP",
              "/var/lib/crashkit/hook.toml", "the hook's settings", ".TP",
              "/var/lib/crashkit/saved_core_pattern", "the pattern to restore", ".SH SEE ALSO",
              "\\fBcrashkit\\fR(8), \\fBcore\\fR(5), \\fBcoripper\\fR(1)"]
    return "\n".join(lines) + "\n"


def coripper_page(parser: argparse.ArgumentParser) -> str:
    """coripper(1)."""
    lines = _header("coripper", 1, "minimize an ELF core dump, keeping every backtrace")
    lines += [".SH SYNOPSIS", esc(_usage(parser)), ".SH DESCRIPTION", esc(parser.description or ""),
              ".PP", esc("Compatible with OpenVZ's coripper: coripper CORE > OUT."),
              ".SH OPTIONS", *_options(parser), *_exit_status(), ".SH SEE ALSO",
              "\\fBcrashkit\\fR(8), \\fBgdb\\fR(1), \\fBcore\\fR(5)"]
    return "\n".join(lines) + "\n"
