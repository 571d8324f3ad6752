"""``reporter-crashkit-sentry -d DIR [--dsn DSN]``: the crash as a Sentry native event.

The event (:mod:`reporter.reporters.sentry_event`) goes through sentry-sdk: a client made
for this one event (no default integrations, no PII, our host name and release) runs its
event processing and builds the envelope — event, the minimized core and text elements as
attachments — and a capturing transport hands the envelope back. crashkit then delivers it
itself, so that a Sentry that is down gets it later from the outbox: ``POST
/api/PROJECT/envelope/`` gzip-compressed, with ``X-Sentry-Auth``. The event id is the
client report id; Sentry drops a repeated one.

The DSN comes from ``$Sentry_DSN`` > ``$SENTRY_DSN`` > ``--dsn`` > ``DSN`` of a ``-c`` file >
``[report.sentry] dsn``.
"""

from __future__ import annotations

import argparse
import gzip
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from reporter import redact, report_config
from reporter.dumpdir import DumpDir
from reporter.outbox import Entry, new_report_id
from reporter.redact import Scrubber
from reporter.reporters import common, handlers, reportable, sentry_event
from reporter.reporters.exclude import Exclusions

PROG = "reporter-crashkit-sentry"
CLIENT = "crashkit/0.1.0"
MAX_CORE_ATTACHMENT = 20 << 20
MAX_TEXT_ATTACHMENT = 1 << 20
TEXT_INPUTS = ("type", "reason", "executable", "core_backtrace", "backtrace", "maps", "hostname", "kernel",
               "architecture", "os_info", "time", "duphash", "uuid", "crash_function", "container_id",
               "container", "pid", "uid", "component", "package", "cmdline", "environ", "dso_list", "open_fds",
               "proc_pid_status", "limits", "signal", "oops_title", "oops_kind", "container_state.json",
               "host_checks.json", "kernel_report.json")


class Dsn:
    """The parts of a DSN: ``scheme://KEY@host[:port][/prefix]/PROJECT``."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname:
            raise common.ReporterUsageError("a DSN is scheme://KEY@HOST/PROJECT")
        path, _, project = parts.path.rstrip("/").rpartition("/")
        if not project:
            raise common.ReporterUsageError("the DSN names no project")
        self.key = parts.username
        self.project = project
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        self.base = f"{parts.scheme}://{netloc}{path}"
        self.envelope_url = f"{self.base}/api/{project}/envelope/"

    def auth_header(self) -> str:
        """``X-Sentry-Auth`` (the public key is all a DSN carries)."""
        return f"Sentry sentry_version=7, sentry_key={self.key}, sentry_client={CLIENT}"


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = common.base_parser(PROG, "Send a crash to Sentry (or a Sentry-compatible server) as a native event "
                                 "through sentry-sdk. Exit 0 sent, 75 queued, 1 failed, 2 bad usage.")
    p.add_argument("--dsn", help="the project's DSN")
    p.add_argument("--no-core", action="store_true", help="do not attach the (minimized) core")
    return p


def _load(path: str, exclusions: Exclusions) -> tuple[dict[str, str], bytes | None]:
    elements: dict[str, str] = {}
    core = None
    with DumpDir.open(path, readonly=True, timeout=30) as dd:
        for name in TEXT_INPUTS:
            if dd.has_element(name) and not exclusions.excludes(name):
                got = dd.load_bounded(name, MAX_TEXT_ATTACHMENT * 8)
                if got is not None and got[1] is not None:
                    from reporter.elements import load_text

                    elements[name] = load_text(got[1])
        if not exclusions.excludes("coredump") and dd.has_element("coredump"):
            got = dd.load_bounded("coredump", MAX_CORE_ATTACHMENT)
            core = got[1] if got else None
    return elements, core


def envelope_bytes(dsn: str, event: dict[str, Any], attachments: list[tuple[str, bytes, str]],
                   host: str | None) -> bytes:
    """The envelope sentry-sdk makes for *event* and *attachments* (``(name, data, type)``)."""
    import sentry_sdk
    from sentry_sdk.envelope import Envelope
    from sentry_sdk.transport import Transport

    captured: list[Envelope] = []

    class Capture(Transport):
        def capture_envelope(self, envelope: Envelope) -> None:
            captured.append(envelope)

    client = sentry_sdk.Client(dsn=dsn, transport=Capture, default_integrations=False, auto_enabling_integrations=False,
                               server_name=host, release=event.get("release"),
                               environment=os.environ.get("SENTRY_ENVIRONMENT", "production"))
    scope = sentry_sdk.Scope(client=client)
    for name, data, ctype in attachments:
        scope.add_attachment(bytes=data, filename=name, content_type=ctype)
    client.capture_event(event, scope=scope)  # type: ignore[arg-type]
    client.flush(timeout=5)
    client.close()
    if not captured:
        raise common.ReporterUsageError("sentry-sdk dropped the event")
    return captured[0].serialize()


def main_args(args: argparse.Namespace) -> int:
    """Run the reporter with parsed *args*."""
    cfg = report_config.load()
    section = cfg.section("sentry")
    conf = common.load_conf_files(args.conf)
    dsn_text = common.setting(["Sentry_DSN", "SENTRY_DSN"], args.dsn, conf, "DSN", section, "dsn")
    log = common.Log(PROG, args.verbose)
    if not dsn_text:
        if args.if_configured:
            log.debug("no Sentry DSN configured: nothing to do")
            return common.EXIT_DELIVERED
        raise common.ReporterUsageError("no DSN: set Sentry_DSN, --dsn or [report.sentry] dsn")
    refused = common.refuse_not_reportable(args, log)
    if refused is not None:
        return refused
    dsn = Dsn(dsn_text)
    log.scrub = Scrubber([dsn.key])
    exclusions = Exclusions.for_reporter(section.get("exclude", []))
    elements, core = _load(args.dir, exclusions)
    event_id = new_report_id()
    event = sentry_event.build(elements, event_id)
    attachments: list[tuple[str, bytes, str]] = []
    if core is not None and not args.no_core and section.get("attach_core", True) is not False:
        attachments.append((f"{sentry_event.executable_name(elements)}.core", core, "application/x-coredump"))
    for name in sentry_event.attachment_names(elements):
        text = redact.redact_element(name, elements[name])[:MAX_TEXT_ATTACHMENT]
        attachments.append((name if "." in name else name + ".txt", text.encode("utf-8", "surrogateescape"),
                            "application/json" if name.endswith(".json") or name == "core_backtrace"
                            else "text/plain"))
    payload = gzip.compress(envelope_bytes(dsn_text, event, attachments, event.get("server_name")), 6)
    entry = Entry(id=event_id, kind="sentry", url=dsn.envelope_url,
                  headers={"Content-Encoding": "gzip"}, content_type="application/x-sentry-envelope",
                  dump_dir=os.path.abspath(args.dir), force=reportable.forced(args.force),
                  tls={"verify": not args.insecure, "ca_file": section.get("ca_file")},
                  context={"server": dsn.base + "/", "event_id": event_id,
                           "workflow": os.environ.get("LIBREPORT_WORKFLOW")})
    secret = {"headers": {"X-Sentry-Auth": dsn.auth_header()}}

    def delivered(outcome: Any) -> int:
        handlers.apply(entry, outcome, log)
        log(f"event {event_id} sent to {dsn.base}")
        return common.EXIT_DELIVERED

    log(f"Sending event {event_id} to {dsn.base}")
    return common.deliver_or_queue(entry, lambda: payload, lambda f: f.write(payload), secret,
                                   outbox=common.outbox_for(args, cfg), log=log, on_delivered=delivered)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reporter-crashkit-sentry``."""
    return common.run_main(PROG, main_args, parser(), argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
