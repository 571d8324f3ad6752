"""``reporter-crashkit -d DIR [-u URL]``: the problem directory as a tarball, uploaded.

libreport's ``reporter-upload`` for HTTP(S) and ``file://`` targets (docs/formats/libreport.md
§4.1): the URL comes from ``$Upload_URL`` > ``-u`` > ``URL`` of a ``-c`` file >
``[report.upload] url``; credentials from ``$Upload_Username``/``$Upload_Password``, the
configuration (``password_file``), or ``user:password@`` in the URL, sent as basic auth; or a
bearer token (``$Upload_Token``, ``Token`` of a ``-c`` file, ``[report.upload] token`` /
``token_file``: ``Authorization: Bearer``, crashkit's addition). A URL ending in ``/``
gets ``<basename(DIR)>.tar.gz`` appended. The archive is streamed while it is packed (PUT
by default, ``--method POST``); ``upload: URL=<url without credentials>`` is appended to
``reported_to``. With ``--host-state`` (or ``include_host_state = true``) the results of
``crashkit check --json`` and ``crashkit state --json`` are saved as ``host_checks.json``
and ``container_state.json`` first, unless the directory has them already.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from reporter import report_config, subproc
from reporter.dumpdir import DumpDir
from reporter.outbox import Entry, new_report_id
from reporter.redact import Scrubber, strip_url_credentials
from reporter.reporters import bundle, common, handlers, reportable
from reporter.reporters.exclude import Exclusions

PROG = "reporter-crashkit"
HOST_STATE = (("host_checks.json", ("check", "--json")), ("container_state.json", ("state", "--json")))
HOST_STATE_TIMEOUT = 60.0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = common.base_parser(PROG, "Pack a problem directory as libreport's reporter-upload does and "
                                 "upload it (HTTP/HTTPS PUT or POST, or file://). Exit 0 delivered, "
                                 "75 queued for retry, 1 failed, 2 bad usage.")
    p.add_argument("-u", "--url", help="where to upload (a URL ending in / gets the archive name appended)")
    p.add_argument("--method", choices=("PUT", "POST"), help="HTTP method (default PUT, as reporter-upload)")
    p.add_argument("--host-state", action="store_true", default=None,
                   help="add host_checks.json and container_state.json (crashkit check/state --json)")
    p.add_argument("--exclude", action="append", default=[], metavar="ELEMENT",
                   help="leave an element out (repeatable; globs allowed)")
    return p


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``(url without userinfo, user, password)``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if password else None


def target_url(url: str, path: str) -> str:
    """The upload's full URL: *url*, plus the archive name when *url* ends with ``/``."""
    return url + bundle.archive_name(path) if url.endswith("/") else url


def collect_host_state(path: str, log: common.Log) -> None:
    """Save ``host_checks.json`` / ``container_state.json`` into *path* if missing (the two
    commands run in parallel; a command that fails leaves its element out)."""
    with DumpDir.open(path, readonly=True, timeout=30) as dd:
        wanted = [(name, args) for name, args in HOST_STATE if not dd.has_element(name)]
    results: dict[str, subproc.Ran] = {}

    def one(name: str, args: tuple[str, ...]) -> None:
        results[name] = subproc.run(subproc.crashkit_argv(*args), HOST_STATE_TIMEOUT)

    threads = [threading.Thread(target=one, args=w) for w in wanted]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with DumpDir.open(path, timeout=30) as dd:
        for name, ran in results.items():
            # crashkit check exits 1 when a check fails: its JSON is still the result.
            if ran.rc in (0, 1) and ran.stdout.strip().startswith((b"{", b"[")):
                dd.save_bytes(name, ran.stdout)
            else:
                log(f"{name} not added: {ran.error or f'exit status {ran.rc}'}")


def _write_file_target(path: str, url: str, exclusions: Exclusions, level: int, log: common.Log) -> int:
    parts = urlsplit(url)
    dest = unquote(parts.path)
    if dest.endswith("/"):
        dest += bundle.archive_name(path)
    directory = os.path.dirname(dest) or "/"
    fd, tmp = tempfile.mkstemp(prefix=".crashkit-upload-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            bundle.Bundle.open(path, exclusions, level=level).write_to(f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    public = "file://" + dest
    with DumpDir.open(path, timeout=30) as dd:
        dd.add_reported_to(handlers._line("upload", url=public, workflow=os.environ.get("LIBREPORT_WORKFLOW")))
    log(f"Archive is created: '{dest}'")
    return common.EXIT_DELIVERED


def main_args(args: argparse.Namespace) -> int:
    """Run the reporter with parsed *args*."""
    cfg = report_config.load()
    section = cfg.section("upload")
    conf = common.load_conf_files(args.conf)
    url = common.setting(["Upload_URL"], args.url, conf, "URL", section, "url")
    log = common.Log(PROG, args.verbose)
    if not url:
        if args.if_configured:
            log.debug("no upload URL configured: nothing to do")
            return common.EXIT_DELIVERED
        raise common.ReporterUsageError("no upload URL: set Upload_URL, -u URL or [report.upload] url")
    refused = common.refuse_not_reportable(args, log)
    if refused is not None:
        return refused
    clean, url_user, url_password = split_credentials(url)
    user = common.setting(["Upload_Username"], None, conf, "Username", section, "username") or url_user
    password = (common.setting(["Upload_Password"], None, conf, "Password", section, "password")
                or common.read_secret_file(section.get("password_file")) or url_password)
    token = (common.setting(["Upload_Token"], None, conf, "Token", section, "token")
             or common.read_secret_file(section.get("token_file")))
    log.scrub = Scrubber([password, url_password, token])
    bundle.check_dir(args.dir)
    exclusions = Exclusions.for_reporter([*section.get("exclude", []), *args.exclude])
    level = int(section.get("compress_level", bundle.DEFAULT_LEVEL))
    host_state = args.host_state if args.host_state is not None else bool(section.get("include_host_state", False))
    if host_state:
        collect_host_state(args.dir, log)
    scheme = urlsplit(clean).scheme.lower()
    if scheme == "file":
        return _write_file_target(args.dir, clean, exclusions, level, log)
    if scheme not in ("http", "https"):
        raise common.ReporterUsageError(f"unsupported URL scheme '{scheme}:' (http, https and file are; "
                                        "use libreport's reporter-upload for scp/ftp)")
    target = target_url(clean, args.dir)
    entry = Entry(id=new_report_id(), kind="upload", url=target,
                  method=(args.method or str(section.get("method", "PUT"))).upper(),
                  content_type="application/gzip", dump_dir=os.path.abspath(args.dir),
                  force=reportable.forced(args.force),
                  tls=_tls(args, section),
                  context={"public_url": strip_url_credentials(target),
                           "workflow": os.environ.get("LIBREPORT_WORKFLOW")})
    secret: dict[str, Any] = {"username": user, "password": password} if user or password else {}
    if password and not user:
        secret["username"] = ""
    if token:  # a bearer token (crashkit serve takes it, as it takes basic auth's password)
        secret = {"headers": {"Authorization": f"Bearer {token}"}, "token": token}
    log(f"Sending {bundle.archive_name(args.dir)} to {urlsplit(target).scheme}://{urlsplit(target).netloc}")

    def delivered(outcome: Any) -> int:
        handlers.apply(entry, outcome, log)
        log(f"Successfully created {strip_url_credentials(target)}")
        return common.EXIT_DELIVERED

    return common.deliver_or_queue(
        entry, lambda: bundle.Bundle.open(args.dir, exclusions, level=level).chunks(),
        lambda f: bundle.Bundle.open(args.dir, exclusions, level=level).write_to(f), secret,
        outbox=common.outbox_for(args, cfg), log=log, on_delivered=delivered)


def _tls(args: argparse.Namespace, section: dict[str, Any]) -> dict[str, Any]:
    verify = not args.insecure and section.get("ssl_verify", True) is not False
    return {"verify": verify, "ca_file": section.get("ca_file")}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``reporter-crashkit``."""
    return common.run_main(PROG, main_args, parser(), argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
