"""``crashkit report DIR [-e EVENT]... | --list-events DIR | --flush``.

The parser is built with the standard library only; the engine, the reporters and requests
are imported when the subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_REPORTABLE = 3
EXIT_QUEUED = 75


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the ``crashkit`` parser."""
    p = subparsers.add_parser(
        "report", help="run libreport event rules on a problem directory; flush the outbox",
        description="Run libreport events on a problem directory (-e EVENT, repeatable; without -e the "
                    "configured workflow), list the events that apply (--list-events), or deliver the "
                    "reports waiting in the outbox (--flush). Exit 0 done, 1 a command or delivery "
                    "failed, 2 bad usage, 3 not run: the problem is marked not-reportable (--force), "
                    "75 reports remain queued (docs/reporting.md).")
    p.add_argument("dir", metavar="DIR", nargs="?", help="problem directory")
    p.add_argument("-e", "--event", dest="events", action="append", default=[], metavar="EVENT",
                   help="event to run (repeatable; 'prefix*' expands against the event descriptions)")
    p.add_argument("--workflow", metavar="NAME", help="run this workflow's events (workflow_X)")
    p.add_argument("--list-events", action="store_true", help="print the events (and workflows) that apply to DIR")
    p.add_argument("--prefix", default="", help="with --list-events: only events starting with this")
    p.add_argument("--flush", action="store_true", help="deliver the queued reports of the outbox")
    p.add_argument("--due", action="store_true", help="with --flush: only entries whose retry time has come")
    p.add_argument("--no-wait", action="store_true", help="with --flush: give up if another flush runs")
    p.add_argument("--outbox", metavar="DIR", help="outbox directory (default $CRASHKIT_OUTBOX or SPOOL/.outbox)")
    p.add_argument("--force", "--unsafe", action="store_true",
                   help="report even a problem marked not-reportable (abrt-cli's --unsafe)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="kill a command running longer than this")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_report)


def _print(args: argparse.Namespace, data: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif lines:
        print("\n".join(lines))


def cmd_report(args: argparse.Namespace) -> int:
    """``crashkit report``."""
    from reporter.errors import ReporterError

    if args.flush:
        if args.dir or args.events or args.list_events:
            raise ReporterError("--flush takes no DIR, -e or --list-events")
        return _flush(args)
    if not args.dir:
        raise ReporterError("a problem directory is needed (or --flush)")
    from reporter.dumpdir import is_problem_dir

    if not is_problem_dir(args.dir):
        raise ReporterError(f"'{args.dir}' is not a problem directory")
    if args.list_events:
        return _list_events(args)
    return _run(args)


def _warn(message: str) -> None:
    print(f"crashkit: warning: {message}", file=sys.stderr)


def _list_events(args: argparse.Namespace) -> int:
    from reporter.events import engine, setup

    st = setup.EventsSetup.default()
    loaded = st.load_rules()
    for w in loaded.warnings:
        _warn(w)
    events = engine.list_possible_events(loaded.rules, args.dir, args.prefix, warn=_warn)
    flows = setup.applicable_workflows(st, args.dir)
    data = {"events": events, "workflows": [{"id": w.id, "name": w.name, "priority": w.priority,
                                              "events": list(w.events)} for w in flows],
            "rules_file": st.rules_file}
    _print(args, data, events)
    return EXIT_OK


def choose_events(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """The chain to run: ``-e``, else ``--workflow``/``[report] workflow``, else the one
    applicable workflow (ours when several apply)."""
    from reporter import report_config
    from reporter.errors import ReporterError
    from reporter.events import setup

    if args.events:
        return list(args.events), None
    st = setup.EventsSetup.default()
    known = st.workflows()
    wanted = args.workflow or report_config.load().workflow
    if wanted:
        if wanted not in known:
            raise ReporterError(f"no workflow '{wanted}' (known: {', '.join(sorted(known)) or 'none'})")
        return list(known[wanted].events), wanted
    flows = setup.applicable_workflows(st, args.dir)
    if not flows:
        raise ReporterError(f"no workflow applies to '{args.dir}'; name events with -e")
    if len(flows) > 1:
        ours = [w for w in flows if w.id == "workflow_Crashkit"]
        if not ours:
            raise ReporterError("several workflows apply (" + ", ".join(w.id for w in flows) +
                                "): choose one with --workflow or -e")
        flows = ours
    return list(flows[0].events), flows[0].id


def _run(args: argparse.Namespace) -> int:
    from reporter.events import setup

    events, workflow = choose_events(args)
    extra = {"LIBREPORT_WORKFLOW": workflow} if workflow else None
    out = sys.stderr if args.json else sys.stdout  # --json: stdout holds the JSON document only
    result = setup.run_chain(setup.EventsSetup.default(), args.dir, events, log=lambda line: print(line, file=out),
                             warn=_warn, timeout=args.timeout, extra_env=extra, force=args.force)
    data = {"workflow": workflow, "skipped": result.skipped, "rc": result.rc, "stopped": result.stopped,
            "not_reportable": None if result.refused is None else
            {"event": result.refused[0], "message": result.refused[1]},
            "events": [{"event": r.event, "commands": [{"rc": c.rc, "last_line": c.last_line,
                                                          "source": c.rule.source, "line": c.rule.line}
                                                         for c in r.commands]} for r in result.runs]}
    if args.json:
        _print(args, data, [])
    if result.refused is not None and result.rc == EXIT_NOT_REPORTABLE:
        print(f"crashkit: {result.refused[0]} not run: {result.refused[1]} (--force runs it anyway)",
              file=sys.stderr)
        return EXIT_NOT_REPORTABLE
    if not result.runs:
        print(f"crashkit: no actions are found for {', '.join(events)}", file=sys.stderr)
        return EXIT_FAILED
    if result.rc in (EXIT_QUEUED, EXIT_NOT_REPORTABLE):  # a reporter's own refusal too
        return result.rc
    return EXIT_OK if result.rc == 0 else EXIT_FAILED


def _flush(args: argparse.Namespace) -> int:
    from reporter.outbox import Outbox
    from reporter.reporters.flush import flush

    outbox = Outbox(args.outbox) if args.outbox else Outbox.default()
    result = flush(outbox, due_only=args.due, wait=not args.no_wait,
                   log=None if args.json else (lambda m: print(f"crashkit: {m}", file=sys.stderr)))
    data = {"outbox": outbox.path, "delivered": result.delivered, "retried": result.retried,
            "failed": result.failed, "refused": result.refused, "not_due": result.not_due, "busy": result.busy,
            "messages": result.messages}
    _print(args, data, [] if args.json else [
        f"delivered {result.delivered}, still queued {result.remaining}, failed {result.failed}"
        + (f", not reportable {result.refused}" if result.refused else "")
        + (" (another flush is running)" if result.busy else "")])
    if result.failed:
        return EXIT_FAILED
    return EXIT_QUEUED if result.remaining or result.busy else EXIT_OK
