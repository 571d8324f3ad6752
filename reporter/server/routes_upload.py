"""Upload endpoints: reporter-upload bundles and FAF-compatible uReport intake.

- ``PUT|POST /upload/NAME``: the raw archive as body (what ``reporter-upload`` sends with a
  URL ending in ``/``); ``POST /upload/``: multipart with the archive in a file part (field
  ``file`` or the first file part) and an optional ``report_id`` field.
- ``POST /faf/reports/new/`` and ``/faf/reports/attach/``: multipart field ``file`` holding
  the uReport / attachment JSON; replies as FAF does (202, or 400/413 with ``{"error"}``).
- ``GET /faf/reports/bthash/HASH/``: redirect to the bucket page.

A client report id (``X-Crashkit-Report-Id`` header, ``report_id`` query parameter or form
field) makes a retried delivery one report even when the bytes differ.
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from reporter.server.app import state_of
from reporter.server.archive import EXTENSIONS
from reporter.server.errors import NotFound, RejectedInput
from reporter.server.ingest import Accepted, check_client_id
from reporter.server.models import Error, FafAttachReply, FafReply, UploadResult
from reporter.server.storage import add_attachment, bucket_for_bthash
from reporter.server.ureport import parse_attachment
from reporter.server.uploads import Form, Spooled, parse_form, spool_body

router = APIRouter()
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+@=,-]{0,199}$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,64}$")
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Error} for status in (400, 401, 404, 413, 429)}
RAW_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}
FORM_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}, "report_id": {"type": "string"}}}}}}}


def _client_id(request: Request, form: Form | None = None) -> str | None:
    value = request.headers.get("x-crashkit-report-id") or request.query_params.get("report_id")
    if not value and form is not None:
        value = form.fields.get("report_id")
    return check_client_id(value)


def _check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise RejectedInput(f"bad archive name; use letters, digits and ._:+@=,- ending in one of "
                            f"{', '.join(EXTENSIONS)}")
    if not any(name.lower().endswith(ext) for ext in EXTENSIONS):
        raise RejectedInput(f"archive name must end in one of {', '.join(EXTENSIONS)}")
    return name


def _upload_reply(request: Request, accepted: Accepted) -> JSONResponse:
    base = str(request.base_url).rstrip("/")
    body = UploadResult(id=accepted.report_id, bucket_id=accepted.bucket_id, duplicate=accepted.duplicate,
                        kind=accepted.kind, bthash=accepted.bthash,
                        url=f"{base}/reports/{accepted.report_id}", bucket_url=f"{base}/buckets/{accepted.bucket_id}")
    return JSONResponse(body.model_dump(), status_code=200 if accepted.duplicate else 201,
                        headers={"Location": body.url})


async def _ingest(request: Request, body: Spooled, name: str | None, token: str | None,
                  client_id: str | None, endpoint: str) -> JSONResponse:
    st = state_of(request)
    try:
        accepted = await st.run_ingest(st.ingestor.ingest_archive, body, name=name, token=token,
                                       client_id=client_id)
    except RejectedInput:
        st.metrics.upload(endpoint, "rejected")
        raise
    st.metrics.upload(endpoint, "duplicate" if accepted.duplicate else "accepted", body.size)
    return _upload_reply(request, accepted)


@router.put("/upload/{name}", status_code=201, response_model=UploadResult, responses=ERRORS,
            openapi_extra=RAW_BODY, summary="Upload a problem-directory archive (reporter-upload)")
@router.post("/upload/{name}", status_code=201, response_model=UploadResult, responses=ERRORS,
             openapi_extra=RAW_BODY, summary="Upload a problem-directory archive")
async def upload_named(request: Request, name: str) -> Response:
    """Receive the archive NAME as the raw request body."""
    st = state_of(request)
    token = st.upload_credential(request)
    name = _check_name(name)
    client_id = _client_id(request)
    body = await spool_body(request.stream(), st.config.tmp_dir, st.config.limits.max_upload_bytes)
    return await _ingest(request, body, name, token, client_id, "upload")


@router.api_route("/upload/{name}", methods=["GET", "HEAD", "DELETE", "PATCH", "OPTIONS"], include_in_schema=False)
def upload_other_methods(name: str) -> Response:
    """405 naming both upload methods (two routes would each claim only their own)."""
    return JSONResponse({"error": "method not allowed; use PUT or POST"}, status_code=405,
                        headers={"Allow": "POST, PUT"})


@router.post("/upload/", status_code=201, response_model=UploadResult, responses=ERRORS,
             openapi_extra=FORM_BODY, summary="Upload a problem-directory archive as a multipart form")
async def upload_form(request: Request) -> Response:
    """Receive the archive as the file part of a multipart form."""
    st = state_of(request)
    token = st.upload_credential(request)
    form = await parse_form(request.stream(), request.headers.get("content-type"), st.config.tmp_dir,
                            st.config.limits.max_upload_bytes)
    try:
        part = form.files.pop("file", None) or (form.files.pop(next(iter(form.files))) if form.files else None)
        if part is None:
            raise RejectedInput("the form has no file part (field 'file')")
        client_id = _client_id(request, form)
        name = part.filename
        if name is not None and not any(name.lower().endswith(ext) for ext in EXTENSIONS):
            name = None  # e.g. curl -F file=@- : judge by content only
    finally:
        form.discard()
    return await _ingest(request, part, name, token, client_id, "upload-form")


def _faf_error(reason: str, status: int) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


@router.post("/faf/reports/new/", status_code=202, response_model=FafReply, responses=ERRORS,
             openapi_extra=FORM_BODY, summary="FAF-compatible uReport submission (reporter-ureport)")
async def faf_new(request: Request) -> Response:
    """Accept a uReport; the reply is FAF's (``result`` true when the problem was known)."""
    st = state_of(request)
    token = st.upload_credential(request)
    form = await parse_form(request.stream(), request.headers.get("content-type"), st.config.tmp_dir,
                            st.config.limits.max_ureport_bytes)
    try:
        part = form.files.pop("file", None)
        if part is None:
            raise RejectedInput("Invalid form data: no 'file' field")
        client_id = _client_id(request, form)
    finally:
        form.discard()
    try:
        accepted, report = await st.run_ingest(st.ingestor.ingest_ureport, part, token=token,
                                               client_id=client_id)
    except RejectedInput:
        st.metrics.upload("faf", "rejected")
        raise
    st.metrics.upload("faf", "duplicate" if accepted.duplicate else "accepted", part.size)
    base = st.config.public_url or str(request.base_url).rstrip("/")
    bucket_url = f"{base.rstrip('/')}/buckets/{accepted.bucket_id}"
    reply = FafReply(result=accepted.known, bthash=report.bthash, message="", reported_to=[], solutions=[])
    if accepted.known:
        reply.message = bucket_url
        reply.reported_to = [{"reporter": "ABRT Server", "value": bucket_url, "type": "url"}]  # type: ignore[list-item]
    return JSONResponse(reply.model_dump(exclude_none=False), status_code=202)


@router.post("/faf/reports/attach/", status_code=202, response_model=FafAttachReply, responses=ERRORS,
             openapi_extra=FORM_BODY, summary="FAF-compatible attachment (bug number, email, comment, URL)")
async def faf_attach(request: Request) -> Response:
    """Store an attachment for a bthash (FAF accepts it even before the report arrives)."""
    st = state_of(request)
    token = st.upload_credential(request)
    limit = st.config.limits.max_attachment_bytes
    form = await parse_form(request.stream(), request.headers.get("content-type"), st.config.tmp_dir, limit)
    try:
        part = form.files.get("file")
        if part is None:
            raise RejectedInput("Invalid form data: no 'file' field")
        data = part.read_bytes()
    finally:
        form.discard()
    bthash, kind, value = parse_attachment(data, max_bytes=limit)
    await run_in_threadpool(add_attachment, st.writer, bthash, kind, value, time.time(), token)
    return JSONResponse({"result": True}, status_code=202)


@router.get("/faf/reports/bthash/{bthash}/", status_code=302, responses={404: {"model": Error}, 400: {"model": Error}},
            summary="Redirect a bthash to its bucket page", response_class=RedirectResponse)
def faf_bthash(request: Request, bthash: str) -> Response:
    """FAF's known-problem link."""
    st = state_of(request)
    st.check_read(request)
    if not _HEX.match(bthash):
        raise RejectedInput("a bthash is hexadecimal")
    bucket = bucket_for_bthash(st.reader, bthash.lower())
    if bucket is None:
        raise NotFound(f"no report with bthash {bthash.lower()}")
    return RedirectResponse(f"/buckets/{bucket}", status_code=302)
