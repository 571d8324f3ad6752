"""From a spooled body to a stored, bucketed report: validate, classify, store blob, record.

The order makes a kill at any point harmless: the archive is validated in full before
anything is kept; the blob is stored under its content hash (idempotent) before the
database transaction; the report exists, and is counted, only once that transaction
commits. A repeat (same content or same client report id) is answered with the report
stored first and changes nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from reporter.server import storage
from reporter.server.archive import ArchiveLimits, ProblemArchive, validate
from reporter.server.blobs import BlobStore, blob_key
from reporter.server.classify import Classified, classify_bundle, classify_ureport
from reporter.server.config import ServerConfig
from reporter.server.errors import RejectedInput
from reporter.server.ureport import UReport, parse
from reporter.server.uploads import Spooled

STORED_ELEMENT_TEXT = 256 * 1024     # per element, in the database (the bundle has it all)
STORED_TEXT_TOTAL = 1024 * 1024      # per report
FUTURE_SLACK = 300.0                 # a crash "time" later than this past now is not believed


@dataclass(frozen=True)
class Accepted:
    """What an upload endpoint answers."""

    report_id: int
    bucket_id: int
    duplicate: bool
    known: bool
    bthash: str | None
    kind: str


def archive_limits(config: ServerConfig) -> ArchiveLimits:
    """The validator's limits from the service's."""
    lim = config.limits
    return ArchiveLimits(max_members=lim.max_members, max_uncompressed=lim.max_uncompressed_bytes,
                         max_ratio=lim.max_ratio, ratio_floor=lim.ratio_floor_bytes,
                         max_element=lim.max_element_bytes, keep_total=lim.max_kept_text_bytes)


def element_index(problem: ProblemArchive) -> list[dict[str, Any]]:
    """The ``reports.elements`` JSON: every element's name and size, text of the small ones."""
    out: list[dict[str, Any]] = []
    budget = STORED_TEXT_TOTAL
    for e in problem.elements:
        is_text = e.is_text
        entry: dict[str, Any] = {"name": e.name, "size": e.size, "binary": not is_text}
        if is_text and e.data is not None and budget > 0:
            text = problem.text(e.name) or ""
            limit = min(STORED_ELEMENT_TEXT, budget)
            entry["text"] = text[:limit]
            entry["truncated"] = len(text) > limit
            budget -= min(len(text), limit)
        out.append(entry)
    return out


def _first_line(text: str | None, limit: int = 255) -> str | None:
    if not text or not text.strip():
        return None
    return text.strip().splitlines()[0][:limit]


def _os_name(problem: ProblemArchive) -> str | None:
    for line in (problem.text("os_info") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"') or None
    return _first_line(problem.text("os_release"))


def _package(problem: ProblemArchive) -> str | None:
    if problem.text("package"):
        return _first_line(problem.text("package"))
    name, version = _first_line(problem.text("pkg_name")), _first_line(problem.text("pkg_version"))
    if name and version:
        release = _first_line(problem.text("pkg_release"))
        return f"{name}-{version}" + (f"-{release}" if release else "")
    return None


class Ingestor:
    """Ingestion with one configuration, database and blob store."""

    def __init__(self, config: ServerConfig, engine: Engine, blobs: BlobStore, reader: Engine | None = None) -> None:
        self.config = config
        self.engine = engine
        self.reader = reader or engine   # the look-up of repeats must not take SQLite's write lock
        self.blobs = blobs
        self.limits = archive_limits(config)

    def _already_stored(self, sha256: str, client_id: str | None) -> Accepted | None:
        """A cheap look-up so that a repeat is not validated and uploaded again (the upsert
        in :func:`storage.record` remains what guarantees one report)."""
        row = storage.find_existing(self.reader, sha256, client_id)
        if row is None:
            return None
        report_id, bucket_id, bthash, kind = row
        return Accepted(report_id, bucket_id, True, True, bthash, kind)

    def ingest_archive(self, body: Spooled, *, name: str | None, token: str | None,
                       client_id: str | None) -> Accepted:
        """Validate and store a problem-directory archive (consumes *body*)."""
        try:
            seen = self._already_stored(body.sha256, client_id)
            if seen is not None:
                return seen
            with open(body.path, "rb") as f:
                problem = validate(f, self.limits, name=name)
            facts = classify_bundle(problem)
            new = self._bundle_report(problem, facts, body, name=name, token=token, client_id=client_id)
            self.blobs.put_file(new.blob_key, body.path)
        finally:
            body.discard()
        return self._record(new, facts)

    def _record(self, new: storage.NewReport, facts: Classified) -> Accepted:
        rec = storage.record(self.engine, new)
        return Accepted(rec.report_id, rec.bucket_id, rec.duplicate, rec.known, facts.bthash, facts.kind)

    def _bundle_report(self, problem: ProblemArchive, facts: Classified, body: Spooled, *,
                       name: str | None, token: str | None, client_id: str | None) -> storage.NewReport:
        now = time.time()
        crash_time = float(int((problem.text("time") or "0").strip() or 0))
        host = _first_line(problem.text("hostname"))
        kernel = _first_line(problem.text("kernel"))
        package = _package(problem)
        os_name = _os_name(problem)
        container = _first_line(problem.text("container_id")) or _first_line(problem.text("container"))
        versions = [(d, v) for d, v in (("kernel", kernel), ("package", package), ("os", os_name),
                                        ("container", container)) if v]
        return storage.NewReport(
            source="bundle", kind=facts.kind, duphash=facts.duphash, title=facts.title,
            content_hash=body.sha256, blob_key=blob_key(body.sha256), blob_size=body.size,
            archive_format=problem.archive_format, received_at=now,
            elements_json=json.dumps(element_index(problem), ensure_ascii=False),
            occurred_at=crash_time if 0 < crash_time <= now + FUTURE_SLACK else now,
            client_id=client_id, bthash=facts.bthash, duphash_sent=facts.duphash_sent,
            component=_first_line(problem.text("component")), executable=_first_line(problem.text("executable"), 4096),
            crash_function=facts.crash_function, host=host, crash_time=crash_time,
            reason=_first_line(problem.text("reason"), 2000), package=package, kernel=kernel,
            architecture=_first_line(problem.text("architecture"), 64), os=os_name, container=container,
            token=token, name=os.path.basename(name) if name else body.filename, versions=tuple(versions))

    def ingest_ureport(self, body: Spooled, *, token: str | None, client_id: str | None) -> tuple[Accepted, UReport]:
        """Validate and store a uReport (consumes *body*)."""
        try:
            report = parse(body.read_bytes(), max_bytes=self.config.limits.max_ureport_bytes,
                           max_depth=self.config.limits.max_json_depth)
            seen = self._already_stored(body.sha256, client_id)
            if seen is not None:
                return seen, report
            facts = classify_ureport(report)
            new = self._ureport_report(report, facts, body, token=token, client_id=client_id)
            self.blobs.put_file(new.blob_key, body.path)
        finally:
            body.discard()
        return self._record(new, facts), report

    def _ureport_report(self, report: UReport, facts: Classified, body: Spooled, *, token: str | None,
                        client_id: str | None) -> storage.NewReport:
        now = time.time()
        package = report.packages[0] if report.packages else None
        versions = [("os", report.os)] + [("package", p) for p in report.packages[:8]]
        if report.kernel:
            versions.append(("kernel", report.kernel))
        pretty = json.dumps(report.doc, indent=2, ensure_ascii=False)
        elements = [{"name": "ureport.json", "size": body.size, "binary": False,
                     "text": pretty[:STORED_TEXT_TOTAL], "truncated": len(pretty) > STORED_TEXT_TOTAL}]
        return storage.NewReport(
            source="ureport", kind=facts.kind, duphash=facts.duphash, title=facts.title,
            content_hash=body.sha256, blob_key=blob_key(body.sha256), blob_size=body.size,
            archive_format="json", received_at=now, elements_json=json.dumps(elements, ensure_ascii=False),
            occurred_at=now, client_id=client_id, bthash=facts.bthash, component=report.component,
            executable=report.executable, crash_function=facts.crash_function, host=report.host,
            reason=report.reason, package=package, kernel=report.kernel, architecture=report.architecture,
            os=report.os, token=token, name=body.filename, versions=tuple(versions))


def check_client_id(value: str | None) -> str | None:
    """A client report id: 1..128 printable ASCII characters without spaces, or None."""
    if value is None or value == "":
        return None
    if len(value) > 128 or not all(0x21 <= ord(c) < 0x7F for c in value):
        raise RejectedInput("the client report id must be 1..128 printable ASCII characters")
    return value
