"""Reading log files: rotated, compressed (gzip, xz, bzip2, zstd), resumed where the last
run stopped.

:class:`LogFile` gives random access to one file's decompressed content;
:func:`file_units` turns a list of files into :class:`~.base.LogUnit` objects and keeps
their cursor marks (see :mod:`collectors.oops.cursor`). Used by the syslog, kdump and
plain-file sources.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import os
import stat
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

from collectors.errors import OopsError
from collectors.oops.cursor import load_marks, make_mark, resume_offset
from collectors.oops.sources.base import MAX_LINE, UNKNOWN_ORIGIN, LogUnit, decode_line, one_line

log = logging.getLogger(__name__)

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"),
          (b"\x28\xb5\x2f\xfd", "zstd"))


class LogFile:
    """Random access to one log file's content, decompressed by its magic bytes.

    Opened with ``O_NOFOLLOW`` (a symlink in /var/log is not followed) and only when it
    is a regular file. ``size`` is known only for uncompressed files.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OopsError(f"{path}: not a regular file")
            raw = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        self.inode = st.st_ino
        self.stat = st  # of the file opened (its owner and mode say who could have written it)
        self._raw = raw
        magic = raw.read(6)
        raw.seek(0)
        self.compression = next((name for m, name in _MAGIC if magic.startswith(m)), None)
        self.size: int | None = st.st_size if self.compression is None else None
        self._f: BinaryIO = self._open_stream(raw)

    def _open_stream(self, raw: BinaryIO) -> BinaryIO:
        if self.compression == "gzip":
            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
        if self.compression == "xz":
            return lzma.LZMAFile(raw)  # type: ignore[return-value]
        if self.compression == "bzip2":
            return bz2.BZ2File(raw)  # type: ignore[return-value]
        if self.compression == "zstd":
            import zstandard  # lazy: only for zstd-rotated logs

            # stream_reader ends silently on a bare or cut frame header: check it up front
            # and report it where decoder errors are reported, when the lines are read.
            try:
                zstandard.get_frame_parameters(raw.read(18))
            except zstandard.ZstdError as exc:
                return io.BufferedReader(_Failing(exc))
            finally:
                raw.seek(0)
            # The zstd reader lacks readline() and seek(): buffer it, see _seek().
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            return io.BufferedReader(_Unseekable(reader))
        return raw

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of content at ``offset`` (short at the end)."""
        if length <= 0:
            return b""
        self._seek(offset)
        return self._f.read(length)

    def _seek(self, offset: int) -> None:
        if self.compression != "zstd":
            self._f.seek(offset)
            return
        # The zstd reader cannot seek: start over and read up to the offset.
        self._raw.seek(0)
        self._f = self._open_stream(self._raw)
        while offset > 0:
            chunk = self._f.read(min(offset, 1 << 20))
            if not chunk:
                return
            offset -= len(chunk)

    def lines(self, offset: int, *, complete_only: bool) -> Iterator[tuple[str, int]]:
        """``(line, end offset)`` from ``offset``; a last line without ``\\n`` is left for
        later when ``complete_only`` (the file is still being written)."""
        self._seek(offset)
        pos = offset
        while True:
            raw = self._f.readline(MAX_LINE)
            if not raw:
                return
            length = len(raw)
            if not raw.endswith(b"\n") and length == MAX_LINE:
                while True:  # drop the rest of an overlong line
                    more = self._f.readline(MAX_LINE)
                    length += len(more)
                    if not more or more.endswith(b"\n"):
                        break
            elif not raw.endswith(b"\n") and complete_only:
                return
            pos += length
            yield decode_line(raw), pos

    def close(self) -> None:
        """Close the file."""
        try:
            self._f.close()
        finally:
            self._raw.close()


class _Failing(io.RawIOBase):
    """A stream whose every read raises the error found when it was opened."""

    def __init__(self, error: Exception) -> None:
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self._error


class _Unseekable(io.RawIOBase):
    """A decompressing reader as a raw stream, so io.BufferedReader can give readline()."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self._reader.read(len(buf))
        buf[: len(data)] = data
        return len(data)


# Errors decompressors raise on corrupt input, besides OSError.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error,
                                                 ValueError, OopsError)


def _unknown(logf: LogFile) -> str | None:
    return UNKNOWN_ORIGIN


def file_units(source: str, paths: Sequence[str], state: dict[str, Any], *,
               live: Sequence[str] = (),
               trust: Callable[[LogFile], str | None] = _unknown) -> Iterator[LogUnit]:
    """Units for log files, resuming each where a previous run stopped (by content).

    ``paths`` should be ordered oldest first so the marks of a rotated file are matched
    before its path is reused. ``live`` files are still being written: their last,
    unterminated line is left for the next run. Marks of files that vanished are dropped.
    ``trust`` gives each opened file's ``LogUnit.unauthenticated``.
    """
    old_marks = load_marks(state)
    new_marks: dict[str, Any] = {}
    failed: set[str] = set()
    for path in paths:
        try:
            logf = LogFile(path)
        except READ_ERRORS as exc:
            log.warning("%s: %s: skipped: %s", source, path, one_line(exc))
            failed.add(path)
            continue
        unit = LogUnit(source, path, iter(()), unauthenticated=trust(logf))
        try:
            start = resume_offset(old_marks, logf.read_at, logf.size)
        except READ_ERRORS as exc:
            log.warning("%s: %s: skipped: %s", source, path, one_line(exc))
            failed.add(path)
            logf.close()
            continue
        end = [start]

        def lines(logf: LogFile = logf, start: int = start, end: list[int] = end,
                  unit: LogUnit = unit, path: str = path) -> Iterator[str]:
            try:
                for line, pos in logf.lines(start, complete_only=path in live):
                    end[0] = pos
                    yield line
            except Exception as exc:  # noqa: BLE001 - any decoder's error (zstd has its own)
                # A corrupt archive ends its unit early; what was read is still scanned.
                unit.errors.append(f"{path}: {one_line(exc)}")
                log.warning("%s: %s: read error after byte %d: %s", source, path, end[0],
                            one_line(exc))

        def finish(logf: LogFile = logf, end: list[int] = end, unit: LogUnit = unit,
                   path: str = path) -> None:
            try:
                if not unit.errors:
                    new_marks[path] = make_mark(path, logf.inode, end[0], logf.read_at).to_json()
                else:
                    failed.add(path)
            except READ_ERRORS as exc:
                log.warning("%s: %s: cannot record position: %s", source, path, one_line(exc))
                failed.add(path)
            finally:
                logf.close()

        unit.lines = lines()
        unit.finish = finish
        yield unit
    # Keep the old marks of files that could not be read this time (perhaps only for now).
    stored = state.get("files")
    if not isinstance(stored, dict):
        stored = {}
    for path in failed:
        if path in stored and path not in new_marks and os.path.lexists(path):
            new_marks[path] = stored[path]
    state["files"] = new_marks
