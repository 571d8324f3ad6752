"""``reporter-crashkit-ureport -d DIR [-u SERVER]``: a uReport to an ABRT Analytics (FAF) server.

As libreport's ``reporter-ureport`` (docs/formats/libreport.md §4.3): settings from
``uReport_<Key>`` environment variables > command line > ``-c`` files (default
``/etc/libreport/plugins/ureport.conf``) > ``[report.ureport]``; keys ``URL``, ``SSLVerify``,
``SSLClientAuth`` (``cert:key``), ``HTTPAuth`` (``user[:password]``), ``ContactEmail``,
``IncludeAuthData`` + ``AuthDataItems``. The report (:mod:`reporter.reporters.ureport_build`)
is POSTed to ``SERVER/reports/new/`` as the multipart field ``file``; the reply's ``bthash``,
``reported_to`` and ``solutions`` are written back; ``result: true`` (a known problem) exits
70. A client certificate the TLS handshake refuses is dropped for one more try, as libreport
does. Attach mode (``-a/-A`` with ``-b/-B``, ``-e/-E``, ``-o/-O``, ``-l DATA -T TYPE``) posts to
``SERVER/reports/attach/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Sequence
from typing import Any

from reporter import libreport_conf, redact, report_config, reported_to
from reporter.dumpdir import DumpDir
from reporter.outbox import Entry, new_report_id
from reporter.redact import Scrubber
from reporter.reporters import common, handlers, reportable, ureport_build

PROG = "reporter-crashkit-ureport"
DEFAULT_CONF = "/etc/libreport/plugins/ureport.conf"
SUBMIT = "reports/new/"
ATTACH = "reports/attach/"
# The elements a uReport is built from (plus the auth items asked for).
INPUTS = ("type", "os_info", "os_release", "architecture", "environ", "component", "executable", "count",
          "core_backtrace", "backtrace", "kernel", "pkg_name", "pkg_epoch", "pkg_version", "pkg_release",
          "pkg_arch", "dso_list", "interpreter")
_BUG_ID = re.compile(r"show_bug\.cgi\?id=(\d+)")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = common.base_parser(PROG, "Send a uReport (ABRT Analytics / FAF protocol) for a core, python or "
                                 "kerneloops problem directory. Exit 0 sent, 70 known problem, 75 queued, "
                                 "1 failed, 2 bad usage.")
    p.add_argument("-u", "--url", help="server URL (e.g. https://host/faf)")
    p.add_argument("--http-auth", metavar="USER[:PASSWORD]", help="HTTP basic credentials (libreport's -h)")
    p.add_argument("-i", "--auth-items", metavar="ITEMS", help="elements to send in 'auth' (comma list)")
    p.add_argument("-t", "--ssl-auth", metavar="CERT:KEY", help="client certificate and key")
    p.add_argument("-a", "--attach", metavar="BTHASH", help="attach data to this bthash")
    p.add_argument("-A", "--attach-last", action="store_true", help="attach to the bthash in reported_to")
    p.add_argument("-b", "--bug-id", type=int, help="attach a Bugzilla bug number")
    p.add_argument("-B", "--bug-last", action="store_true", help="attach the last Bugzilla bug of reported_to")
    p.add_argument("-e", "--email", help="attach a contact email")
    p.add_argument("-E", "--email-conf", action="store_true", help="attach the configured ContactEmail")
    p.add_argument("-o", "--comment", help="attach a comment")
    p.add_argument("-O", "--comment-element", action="store_true", help="attach the 'comment' element")
    p.add_argument("-l", "--data", help="attach DATA with -T TYPE")
    p.add_argument("-T", "--type", dest="data_type", default="url", help="type of -l data (default url)")
    return p


class Settings:
    """The uReport options after libreport's precedence."""

    def __init__(self, args: argparse.Namespace) -> None:
        cfg = report_config.load()
        self.cfg = cfg
        section = cfg.section("ureport")
        files = args.conf or ([DEFAULT_CONF] if os.path.exists(DEFAULT_CONF) else [])
        conf = common.load_conf_files(files)

        def get(key: str, cli: str | None = None, toml: str | None = None) -> str | None:
            return common.setting([f"uReport_{key}"], cli, conf, key, section, toml or key.lower())

        self.url = get("URL", args.url, "url")
        self.verify = not args.insecure and libreport_conf.parse_bool(get("SSLVerify", None, "ssl_verify"), True)
        self.client_auth = get("SSLClientAuth", args.ssl_auth, "ssl_client_auth")
        http_auth = get("HTTPAuth", args.http_auth, "http_auth")
        self.user = self.password = None
        if http_auth:
            user, _, password = http_auth.partition(":")
            self.user, self.password = user, password or None
        self.contact_email = get("ContactEmail", None, "contact_email")
        include_auth = libreport_conf.parse_bool(get("IncludeAuthData", None, "include_auth_data"),
                                                 bool(self.client_auth))
        items = args.auth_items or (get("AuthDataItems", None, "auth_data_items") if include_auth else None)
        self.auth_items = [i.strip() for i in (items or "").split(",") if i.strip()]
        self.ca_file = section.get("ca_file")

    def tls(self) -> dict[str, Any]:
        """The entry's TLS settings."""
        out: dict[str, Any] = {"verify": self.verify, "ca_file": self.ca_file}
        if self.client_auth:
            if self.client_auth in ("puppet", "rhsm"):
                raise common.ReporterUsageError(f"SSLClientAuth '{self.client_auth}' is not supported; give cert:key")
            cert, _, key = self.client_auth.partition(":")
            if not cert or not key:
                raise common.ReporterUsageError("Invalid client authentication specification")
            out["client_cert"], out["client_key"] = cert, key
        return out

    def secret(self) -> dict[str, Any]:
        """Basic-auth credentials (none when a client certificate is used, as libreport)."""
        if self.client_auth or not self.user:
            return {}
        return {"username": self.user, "password": self.password or ""}


def load_elements(path: str, extra: Sequence[str] = ()) -> dict[str, str]:
    """The text of the elements a uReport needs (missing ones left out)."""
    out: dict[str, str] = {}
    with DumpDir.open(path, readonly=True, timeout=30) as dd:
        for name in (*INPUTS, *extra):
            if dd.has_element(name):
                out[name] = dd.load_text(name)
    return out


def scrub_report(report: dict[str, Any]) -> dict[str, Any]:
    """Redact secrets in the free text a uReport carries (oops text, source lines, auth)."""
    problem = report.get("problem", {})
    if isinstance(problem.get("raw_oops"), str):
        problem["raw_oops"] = redact.redact_text(problem["raw_oops"])
    for frame in problem.get("stacktrace", []) if problem.get("type") == "python" else []:
        if isinstance(frame.get("line_contents"), str):
            frame["line_contents"] = redact.redact_text(frame["line_contents"])
    if isinstance(report.get("auth"), dict):
        report["auth"] = {k: redact.redact_text(v) for k, v in report["auth"].items()}
    return report


def _entry(kind: str, server: str, action: str, path: str | None, st: Settings, *, report_id: str | None = None,
           context: dict[str, Any] | None = None) -> Entry:
    return Entry(id=report_id or new_report_id(), kind=kind, url=handlers.concat_path(server, action),
                 headers={"Accept": "application/json"}, form_field="file", form_filename="*buffer*",
                 content_type="application/json", dump_dir=os.path.abspath(path) if path else None,
                 tls=st.tls(), context={"server": server, **(context or {})})


def _send(entry: Entry, payload: bytes, st: Settings, log: common.Log, args: argparse.Namespace,
          on_delivered: Any) -> int:
    from reporter.reporters import delivery

    secret = st.secret()
    if entry.tls.get("client_cert"):
        # libreport: a refused client certificate is dropped for one more, unauthenticated try
        first = delivery.send(entry, payload, secret, scrub=log.scrub)
        if first.delivered:
            return int(on_delivered(first))
        if not first.message.startswith("TLS error"):
            return _queue_or_fail(entry, first, payload, secret, log, args, st)
        log("Authentication failed. Retrying unauthenticated.")
        entry.tls = {k: v for k, v in entry.tls.items() if k not in ("client_cert", "client_key")}
    return common.deliver_or_queue(entry, lambda: payload, lambda f: f.write(payload), secret,
                                   outbox=common.outbox_for(args, st.cfg), log=log, on_delivered=on_delivered)


def _queue_or_fail(entry: Entry, outcome: Any, payload: bytes, secret: dict[str, Any], log: common.Log,
                   args: argparse.Namespace, st: Settings) -> int:
    # Deliver-or-queue already made its one try: only the queueing decision is left.
    outbox = common.outbox_for(args, st.cfg)
    if outcome.state == "final" or outbox is None:
        log(f"uReport to {entry.url} failed: {outcome.message}")
        return common.EXIT_FAILED
    outbox.put(entry, lambda f: f.write(payload), secret or None)
    log(f"uReport to {entry.url} not delivered ({outcome.message}); queued in {outbox.path}")
    return common.EXIT_QUEUED


def submit(args: argparse.Namespace, st: Settings, log: common.Log) -> int:
    """Build and send the uReport of ``args.dir``."""
    server = st.url or ""
    elements = load_elements(args.dir, st.auth_items)
    auth = {k: elements[k] for k in st.auth_items if k in elements}
    try:
        report = scrub_report(ureport_build.build(elements, auth=auth or None))
    except ValueError as exc:
        raise common.ReporterUsageError(f"{args.dir}: {exc}") from None
    payload = ureport_build.to_json(report)
    entry = _entry("ureport", server, SUBMIT, args.dir, st)

    def delivered(outcome: Any) -> int:
        doc = outcome.json()
        if isinstance(doc, dict) and doc.get("error"):
            log(f"the server at '{server}' responded with an error: '{doc['error']}'")
            return common.EXIT_FAILED
        done = handlers.apply(entry, outcome, log)
        if st.contact_email and done.bthash:
            _attach(server, done.bthash, "email", st.contact_email, None, st, log, args)
        if done.known:
            log("This problem has already been reported." + (f" {done.message}" if done.message else ""))
            return common.EXIT_KNOWN
        return common.EXIT_DELIVERED

    log(f"Sending uReport to {server}")
    return _send(entry, payload, st, log, args, delivered)


def attachment_json(bthash: str, kind: str, data: str) -> bytes:
    """libreport's attachment object (json-c spacing)."""
    return ('{ "bthash": ' + json.dumps(bthash) + ', "type": ' + json.dumps(kind) + ', "data": '
            + json.dumps(data) + " }").encode()


def _attach(server: str, bthash: str, kind: str, data: str, path: str | None, st: Settings, log: common.Log,
            args: argparse.Namespace) -> int:
    entry = _entry("ureport-attach", server, ATTACH, path, st, context={"bthash": bthash, "type": kind})
    payload = attachment_json(bthash, kind, data)

    def delivered(outcome: Any) -> int:
        doc = outcome.json()
        if not isinstance(doc, dict) or doc.get("result") is not True:
            log(f"the server at '{server}' did not accept the attachment: {outcome.body[:200]!r}")
            return common.EXIT_FAILED
        return common.EXIT_DELIVERED

    return _send(entry, payload, st, log, args, delivered)


def attach(args: argparse.Namespace, st: Settings, log: common.Log) -> int:
    """Attach mode: ``-a BTHASH`` / ``-A`` with one kind of data."""
    bthash = args.attach
    text = ""
    if args.attach_last or args.bug_last or args.comment_element:
        with DumpDir.open(args.dir, readonly=True, timeout=30) as dd:
            text = dd.load_text("reported_to")
            comment = dd.load_text("comment")
    if args.attach_last:
        found = reported_to.find(text, "uReport")
        if found is None or not found.bthash:
            raise common.ReporterUsageError("This problem does not have an uReport assigned.")
        bthash = found.bthash
    items: list[tuple[str, str]] = []
    if args.bug_id is not None:
        items.append(("RHBZ", str(args.bug_id)))
    if args.bug_last:
        bug = reported_to.find(text, "Bugzilla")
        m = _BUG_ID.search(bug.url or "") if bug else None
        if not m:
            raise common.ReporterUsageError("This problem has not been reported to Bugzilla.")
        items.append(("RHBZ", m.group(1)))
    if args.email:
        items.append(("email", args.email))
    if args.email_conf:
        if not st.contact_email:
            raise common.ReporterUsageError("no ContactEmail configured")
        items.append(("email", st.contact_email))
    if args.comment:
        items.append(("comment", args.comment))
    if args.comment_element:
        items.append(("comment", comment))
    if args.data:
        items.append((args.data_type, args.data))
    if not bthash or not items:
        raise common.ReporterUsageError("attach mode needs -a BTHASH or -A, and something to attach")
    codes = [_attach(st.url or "", bthash, kind, data, args.dir, st, log, args) for kind, data in items]
    return max(codes)


def main_args(args: argparse.Namespace) -> int:
    """Run the reporter with parsed *args*."""
    st = Settings(args)
    log = common.Log(PROG, args.verbose, Scrubber([st.password]))
    if not st.url:
        if args.if_configured:
            log.debug("no uReport server configured: nothing to do")
            return common.EXIT_DELIVERED
        raise common.ReporterUsageError("no uReport server: set uReport_URL, -u URL or [report.ureport] url")
    if args.attach or args.attach_last:
        return attach(args, st, log)
    if reportable.reason(args.dir) is not None:  # libreport's report_uReport skips the review
        log.debug("marked not-reportable; a uReport is sent anyway, as libreport does "
                  "(it carries no memory, environment or files)")
    return submit(args, st, log)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reporter-crashkit-ureport``."""
    return common.run_main(PROG, main_args, parser(), argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
