"""Reporting checks of the outbox and the report servers (docs/reporting.md).

* ``reporting.outbox``: how many reports wait for delivery, how old the oldest is, why the
  last try failed, and how many failed for good (``failed/``);
* ``reporting.servers``: every configured server (``[report.upload] url``,
  ``[report.ureport] url``, ``[report.sentry] dsn`` and the ``Upload_URL``/``uReport_URL``/
  ``Sentry_DSN`` environment) accepts a TCP connection (nothing is sent).
"""

from __future__ import annotations

import os
import socket
import time
from urllib.parse import urlsplit

from collectors.checks import facts
from collectors.checks.base import Check, Result, fail, passed, skip, warn
from collectors.checks.host import Host

STALE_AFTER = 86400.0
CONNECT_TIMEOUT = 3.0


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


class Outbox(Check):
    id = "reporting.outbox"
    phase = "reporting"
    title = "Reports waiting in the outbox"

    def run(self, host: Host) -> Result:
        from reporter.outbox import Outbox as Box
        from reporter.outbox import default_path

        where = default_path(facts.hook(host).spool)
        box = Box(host.path(where))
        if not os.path.isdir(box.path):
            return passed(f"no outbox at {where}: nothing is waiting")
        stats = box.stats()
        queued = box.entries()
        failed = box.entries("failed")
        ev = [f"outbox {where}: {stats.queued} queued ({stats.bytes} bytes), {stats.failed} failed"]
        ev += [f"queued {e.id}: {e.kind} to {e.url}, {e.attempts} tries, last: {e.last_error}" for e in queued[:10]]
        ev += [f"failed {e.id}: {e.kind} to {e.url}: {e.last_error}" for e in failed[-10:]]
        if stats.queued:
            age = time.time() - (stats.oldest_created or time.time())
            summary = f"{stats.queued} report(s) queued, the oldest for {_age(age)}"
            remedy = ("Check the server (`crashkit check --only reporting.servers`), then "
                      "`crashkit report --flush`; the crashkit-report-flush.timer retries every 5 minutes.")
            return (fail if age > STALE_AFTER else warn)(summary + f": {queued[0].last_error}", ev, remedy)
        if stats.failed:
            return warn(f"{stats.failed} report(s) failed for good: {failed[-1].last_error}", ev,
                        "Read the server's message above; fix the configuration and report again.")
        return passed("the outbox is empty", ev)


def configured_servers() -> list[tuple[str, str]]:
    """``(what, url)`` of every configured report server (no credentials)."""
    from reporter import report_config
    from reporter.redact import strip_url_credentials

    cfg = report_config.load()
    out = []
    for what, env, section, key in (("upload", "Upload_URL", "upload", "url"),
                                    ("uReport", "uReport_URL", "ureport", "url"),
                                    ("Sentry", "Sentry_DSN", "sentry", "dsn")):
        url = os.environ.get(env) or cfg.section(section).get(key)
        if isinstance(url, str) and url:
            out.append((what, strip_url_credentials(url)))
    return out


def reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """``None`` when the URL's host accepts a TCP connection, else why not."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = parts.path.rstrip("/") or "/"
        return None if os.path.isdir(path if url.endswith("/") else os.path.dirname(path)) else f"no directory {path}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"unsupported URL {url}"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"bad port in {url}"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


class Servers(Check):
    id = "reporting.servers"
    phase = "reporting"
    title = "Configured report servers reachable"

    def run(self, host: Host) -> Result:
        if not host.live:
            return skip("servers are only tried on the live host (not with --root)")
        servers = configured_servers()
        if not servers:
            return skip("no report server configured ([report.upload] url, [report.ureport] url, "
                        "[report.sentry] dsn)")
        ev = []
        bad = []
        for what, url in servers:
            why = reachable(url)
            ev.append(f"{what} {url}: {'reachable' if why is None else why}")
            if why is not None:
                bad.append(f"{what} {url}: {why}")
        if bad:
            return fail(f"{len(bad)} of {len(servers)} report servers unreachable: {bad[0]}", ev,
                        "Check the URL, the network and the server; reports wait in the outbox meanwhile.")
        return passed(f"{len(servers)} report server(s) reachable", ev)
