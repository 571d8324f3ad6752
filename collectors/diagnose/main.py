"""``crashkit diagnose``: run the sections into an atomically written archive, render the
HTML report into it (and beside it with ``--html``), keep the ``--clean`` mapping outside."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import sys
import time
from typing import Any

from collectors.diagnose.base import ManifestEntry, MiB, Options
from collectors.diagnose.bundle import Bundle
from collectors.errors import CollectorError

DEFAULT_BUDGET = 256 * MiB
MANIFEST_VERSION = 1


def _read(path: str, limit: int = 1 << 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(limit)
    except OSError:
        return ""


def make_cleaner() -> Any:
    """A cleaner for this host's own names (hostname, FQDN, /etc/hosts, resolv.conf, users)."""
    from collectors.diagnose.clean import Cleaner, learn_names

    hostname = socket.gethostname()
    hosts, domains, users = learn_names(hostname, socket.getfqdn(), _read("/etc/hosts"),
                                        _read("/etc/resolv.conf"), _read("/etc/passwd"))
    return Cleaner(hosts, domains, users)


def _atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Handler of ``crashkit diagnose``; exit 0 once the bundle is written, whatever the checks
    found (their findings are printed and lead the report; ``crashkit check`` exits 1 on them),
    so that ``crashkit diagnose && <send the bundle>`` works on a host with problems."""
    from collectors.diagnose.progress import make_progress
    from collectors.diagnose.timeparse import parse_since

    start = time.monotonic()
    since = parse_since(args.since)
    now = time.time()
    if args.budget is not None and not args.budget > 0:
        raise CollectorError("--budget must be a positive number of MB")
    cleaner = make_cleaner() if args.clean else None
    hostname = socket.gethostname()
    shown = cleaner.clean_text(hostname) if cleaner else hostname
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    top = f"crashkit-diagnose-{shown}-{stamp}"
    output = args.output or f"{top}.tar.zst"
    if args.html and os.path.isdir(args.html):
        raise CollectorError(f"--html {args.html}: is a directory")
    bundle = Bundle(output, top, int((args.budget or DEFAULT_BUDGET / MiB) * MiB), cleaner)
    options = Options(since=since, clean=args.clean, self_test=args.self_test, with_cores=args.with_cores,
                      spool=args.spool)
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    progress = None
    try:
        from collectors.diagnose.engine import all_sections, run_sections

        sections = all_sections()
        progress = make_progress(args.quiet, len(sections))
        runs, shared = run_sections(bundle, options, progress, sections)
        html = _report(bundle, shared, runs, since, now, shown)
        report_entry = ManifestEntry("report.html", "report", "crashkit diagnose", len(html),
                                     hashlib.sha256(html).hexdigest())
        bundle.add_top("report.html", html)
        manifest = _manifest(bundle, runs, report_entry, since, now, time.monotonic() - start)
        bundle.add_top("manifest.json", bundle.filter(json.dumps(manifest, indent=2).encode()))
        path = bundle.commit()
    except BaseException:  # cleanup (Ctrl-C included), then re-raised
        bundle.abort()
        if progress is not None:
            progress.close()
        raise
    finally:
        signal.signal(signal.SIGTERM, old)
    progress.close()
    if args.html:
        _atomic_write(args.html, html)
    if cleaner is not None:
        cleaner.mapping.save(f"{path}.mapping.json")
    return _finish(progress, path, args, runs, shared, bundle, cleaner)


def _report(bundle: Bundle, shared: dict[str, Any], runs: list[Any], since: float, now: float,
            hostname: str) -> bytes:
    from collectors.diagnose import report

    kernel = _read("/proc/sys/kernel/osrelease").strip()
    try:
        from importlib import metadata

        version = metadata.version("crashkit")
    except metadata.PackageNotFoundError:  # an uninstalled tree
        version = "unknown"
    model = report.build_model(
        host={"hostname": hostname, "kernel": f"Linux {kernel}", "version": version},
        checks=shared.get("checks", []), problems=shared.get("problems", []),
        corrupt=shared.get("corrupt", []), kernel_reports=shared.get("kernel_reports", []),
        state=shared.get("state"), sections=[r.to_json() for r in runs],
        entries=[e.to_json() for e in bundle.entries], since=since, now=now)
    return bundle.filter(report.render(model).encode("utf-8", "surrogateescape"))


def _manifest(bundle: Bundle, runs: list[Any], report_entry: ManifestEntry, since: float, now: float,
              duration: float) -> dict[str, Any]:
    entries = sorted(bundle.entries, key=lambda e: e.path)
    return {"version": MANIFEST_VERSION, "created": now, "since": since, "duration": round(duration, 3),
            "euid": os.geteuid(), "cleaned": bundle.cleaner is not None,
            "clean": {"seconds": round(bundle.clean_seconds, 4), "bytes": bundle.clean_bytes},
            "sections": [r.to_json() for r in runs],
            "items": [e.to_json() for e in entries] + [report_entry.to_json()]}


def _finish(progress: Any, path: str, args: argparse.Namespace, runs: list[Any], shared: dict[str, Any],
            bundle: Bundle, cleaner: Any) -> int:
    unreadable = [e for e in bundle.entries if e.error and not e.size]
    out = sys.stdout
    out.write(f"bundle: {path} ({os.path.getsize(path) / 1e6:.1f} MB)\n")
    if args.html:
        out.write(f"report: {args.html}\n")
    else:
        out.write("report: report.html inside the bundle (or use --html FILE)\n")
    if cleaner is not None:
        out.write(f"mapping: {path}.mapping.json (private: keep it out of the ticket)\n")
    denied = [e for e in unreadable if "permission denied" in (e.error or "").lower()
              or "not permitted" in (e.error or "")]
    if denied:
        out.write(f"could not read {len(denied)} item(s) (permission denied): run as root for a complete bundle\n")
    records = shared.get("checks", [])
    bad = [r for r in records if r.status in ("fail", "error", "warn")]
    for r in sorted(bad, key=lambda r: ("fail", "error", "warn").index(r.status))[:10]:
        out.write(f"  {r.status.upper():<5} {r.id}: {r.result.summary}\n")
    for r in runs:
        if r.status != "ok":
            out.write(f"  section {r.name}: {r.status} ({r.error})\n")
    return 0
