"""Pydantic models of the JSON API: they make the OpenAPI schema that schemathesis checks."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Error(BaseModel):
    """Every 4xx/5xx JSON body."""

    error: str = Field(description="one-line reason")


class BucketSummary(BaseModel):
    """One row of the bucket list."""

    id: int
    title: str
    kind: str
    count: int = Field(description="reports ever counted (survives pruning)")
    first_seen: float = Field(description="unix seconds")
    last_seen: float = Field(description="unix seconds")
    hosts: int = Field(description="distinct hosts")


class BucketList(BaseModel):
    """``GET /api/v1/buckets``."""

    buckets: list[BucketSummary]
    total: int
    limit: int
    offset: int


class HostCount(BaseModel):
    """A host's reports in a bucket."""

    host: str
    count: int
    first_seen: float
    last_seen: float


class VersionCount(BaseModel):
    """A kernel, package, OS or container seen in a bucket."""

    value: str
    count: int


class DayCount(BaseModel):
    """Reports on one UTC day."""

    day: str
    count: int


class ReportSummary(BaseModel):
    """A report in a bucket's list."""

    id: int
    source: str
    host: str | None
    received_at: float
    crash_time: float | None
    reason: str | None
    kernel: str | None
    package: str | None
    blob_size: int


class BucketDetail(BucketSummary):
    """``GET /api/v1/buckets/ID``."""

    duphash: str
    component: str | None
    executable: str | None
    crash_function: str | None
    representative_id: int | None
    stored_reports: int
    host_counts: list[HostCount]
    versions: dict[str, list[VersionCount]]
    days: list[DayCount]
    reports: list[ReportSummary]


class ElementInfo(BaseModel):
    """One element of a stored report."""

    name: str
    size: int
    binary: bool
    text: str | None = None
    truncated: bool = False


class ReportDetail(BaseModel):
    """``GET /api/v1/reports/ID``."""

    id: int
    bucket_id: int
    source: str
    kind: str
    host: str | None
    received_at: float
    crash_time: float | None
    reason: str | None
    executable: str | None
    component: str | None
    package: str | None
    kernel: str | None
    architecture: str | None
    os: str | None
    container: str | None
    bthash: str | None
    duphash_sent: str | None
    token: str | None
    name: str | None
    content_hash: str
    blob_size: int
    archive_format: str
    elements: list[ElementInfo]
    bundle_url: str


class UploadResult(BaseModel):
    """Reply to a bundle upload (201 new, 200 repeat)."""

    id: int
    bucket_id: int
    duplicate: bool
    kind: str
    bthash: str | None
    url: str
    bucket_url: str


class ReportedTo(BaseModel):
    """FAF's ``reported_to`` item."""

    reporter: str
    value: str
    type: str


class Solution(BaseModel):
    """FAF's ``solutions`` item."""

    cause: str
    note: str
    url: str | None = None


class FafReply(BaseModel):
    """FAF's reply to ``/reports/new/`` (202)."""

    result: bool = Field(description="true when the problem was known before this report")
    bthash: str | None
    message: str
    reported_to: list[ReportedTo]
    solutions: list[Solution]


class FafAttachReply(BaseModel):
    """FAF's reply to ``/reports/attach/`` (202)."""

    result: bool


class Health(BaseModel):
    """``GET /healthz``."""

    status: str
    database: str
