"""Request bodies to disk as they arrive: raw uploads and multipart forms, both bounded.

Nothing is held whole in memory: file parts and raw bodies are written to a temporary file
in the service's own ``tmp`` directory (inside ``--data``) while their SHA-256 and size are
computed; small form fields are kept in memory up to a limit. Temporary files belong to
the caller, who renames them into the blob store or removes them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from reporter.server.errors import RejectedInput, TooLarge

MAX_PARTS = 16
MAX_FIELD = 64 * 1024
# A typical bundle (tens of KiB) reaches the disk in one write: every syscall on the event loop
# thread hands the GIL to the ingest threads and waits to get it back.
WRITE_BUFFER = 128 * 1024


@dataclass
class Spooled:
    """A body (or file part) on disk."""

    path: str
    size: int
    sha256: str
    filename: str | None = None

    def discard(self) -> None:
        """Remove the temporary file if it is still there."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def read_bytes(self) -> bytes:
        """The whole content (only for small bodies such as uReports)."""
        with open(self.path, "rb") as f:
            return f.read()


class _SpoolFile:
    def __init__(self, tmp_dir: str, limit: int, what: str) -> None:
        try:
            fd, self.path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=tmp_dir)
        except FileNotFoundError:  # created at start-up; removed by hand since
            os.makedirs(tmp_dir, mode=0o750, exist_ok=True)
            fd, self.path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=tmp_dir)
        self.f = os.fdopen(fd, "wb", buffering=WRITE_BUFFER)
        self.hash = hashlib.sha256()
        self.size = 0
        self.limit = limit
        self.what = what

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise TooLarge(f"{self.what} is over the {self.limit}-byte limit")
        self.hash.update(data)
        self.f.write(data)

    def close(self, filename: str | None = None) -> Spooled:
        self.f.close()
        return Spooled(self.path, self.size, self.hash.hexdigest(), filename)

    def abort(self) -> None:
        self.f.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


async def spool_body(chunks: AsyncIterator[bytes], tmp_dir: str, limit: int) -> Spooled:
    """Write a raw request body to a temporary file."""
    spool = _SpoolFile(tmp_dir, limit, "the upload")
    try:
        async for chunk in chunks:
            spool.write(chunk)
    except BaseException:
        spool.abort()
        raise
    return spool.close()


@dataclass
class Form:
    """A parsed multipart form: small fields in memory, file parts on disk."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, Spooled] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove every spooled file part."""
        for f in self.files.values():
            f.discard()


class _FormBuilder:
    def __init__(self, tmp_dir: str, file_limit: int) -> None:
        self.tmp_dir = tmp_dir
        self.file_limit = file_limit
        self.form = Form()
        self.parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._name = ""
        self._filename: str | None = None
        self._file: _SpoolFile | None = None
        self._data = bytearray()

    # python-multipart callbacks --------------------------------------------------------
    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise RejectedInput(f"the form has more than {MAX_PARTS} parts")
        self._headers, self._data = {}, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname = self._hvalue = b""

    def on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise RejectedInput("a form part has no 'Content-Disposition: form-data; name=...' header")
        self._name = params[b"name"].decode("utf-8", "replace")[:64]
        raw_filename = params.get(b"filename")
        self._filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")[:255]
        if self._filename is not None:
            self._file = _SpoolFile(self.tmp_dir, self.file_limit, f"form part '{self._name}'")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
            return
        self._data += data[start:end]
        if len(self._data) > MAX_FIELD:
            raise TooLarge(f"form field '{self._name}' is over the {MAX_FIELD}-byte limit")

    def on_part_end(self) -> None:
        if self._name in self.form.files or self._name in self.form.fields:
            raise RejectedInput(f"form field '{self._name}' appears twice")
        if self._file is not None:
            self.form.files[self._name] = self._file.close(self._filename)
            self._file = None
        else:
            self.form.fields[self._name] = self._data.decode("utf-8", "replace")

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
        self.form.discard()


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary of a ``Content-Type`` header."""
    ctype, params = parse_options_header((content_type or "").encode("latin-1", "replace"))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise RejectedInput("expected a multipart/form-data body with a boundary")
    boundary = params[b"boundary"]
    if len(boundary) > 200:
        raise RejectedInput("the multipart boundary is longer than 200 bytes")
    return boundary


async def parse_form(chunks: AsyncIterator[bytes], content_type: str | None, tmp_dir: str,
                     file_limit: int) -> Form:
    """Stream a multipart/form-data body: file parts to disk, other fields (≤ 64 KiB) to memory."""
    boundary = boundary_of(content_type)
    builder = _FormBuilder(tmp_dir, file_limit)
    callbacks = {name: getattr(builder, name) for name in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
        "on_headers_finished", "on_part_data", "on_part_end")}
    parser = MultipartParser(boundary, callbacks, max_header_count=16, max_header_size=16 * 1024)  # type: ignore[arg-type]
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except RejectedInput:
        builder.abort()
        raise
    except Exception as exc:  # python-multipart's own errors: a malformed body
        builder.abort()
        raise RejectedInput(f"malformed multipart body: {exc}") from None
    except BaseException:
        builder.abort()
        raise
    if builder._file is not None:
        builder.abort()
        raise RejectedInput("the multipart body ends inside a part")
    return builder.form
