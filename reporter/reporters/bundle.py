"""A problem directory as libreport's ``reporter-upload`` packs it (docs/formats/libreport.md §4.1).

A flat gzip-compressed tar (pax where needed): one entry per regular element named by its
bare element name, mode forced to 0644, mtime/uid/gid (and their names) copied; ``.lock``,
``.libreport`` and excluded elements left out. Text elements are redacted
(:mod:`reporter.redact`) before they are packed; binary elements (the core) are streamed.

Nothing is held whole: :meth:`Bundle.chunks` yields compressed pieces while a worker thread
reads and compresses ahead (zlib releases the GIL), so packing and sending overlap and
memory stays at a few chunk sizes whatever the core's size. The gzip header carries no
time and no name, so the same directory packs to the same bytes.
"""

from __future__ import annotations

import grp
import os
import pwd
import queue
import tarfile
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from reporter import dirfs, elements, redact
from reporter.dumpdir import DumpDir
from reporter.errors import BadElementError
from reporter.reporters.exclude import Exclusions

CHUNK = 1 << 20
QUEUE_DEPTH = 6
DEFAULT_LEVEL = 1
PROBE = 16 << 10          # sample of each element chunk deflated to judge it
INCOMPRESSIBLE = 0.9       # sample shrinks less than this: store the chunk
MODE = 0o644
BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


@dataclass(frozen=True)
class Member:
    """One element to pack: its name and stat fields, and the (redacted) text or ``None``
    for a binary element streamed from the directory."""

    name: str
    size: int
    mtime: int
    uid: int
    gid: int
    data: bytes | None = None


@dataclass
class PackReport:
    """What packing skipped or changed (for the log)."""

    skipped: dict[str, str] = field(default_factory=dict)
    redacted: list[str] = field(default_factory=list)
    short: list[str] = field(default_factory=list)
    members: int = 0
    raw_bytes: int = 0
    packed_bytes: int = 0


def _owner_names(uid: int, gid: int, cache: dict[tuple[str, int], str]) -> tuple[str, str]:
    def look(kind: str, ident: int) -> str:
        key = (kind, ident)
        if key not in cache:
            try:
                cache[key] = pwd.getpwuid(ident).pw_name if kind == "u" else grp.getgrgid(ident).gr_name
            except KeyError:
                cache[key] = ""
        return cache[key]
    return look("u", uid), look("g", gid)


def tar_header(m: Member, names: dict[tuple[str, int], str]) -> bytes:
    """The tar header block(s) of *m*."""
    info = tarfile.TarInfo(m.name)
    info.size = m.size
    info.mode = MODE
    info.mtime = m.mtime
    info.uid, info.gid = m.uid, m.gid
    info.uname, info.gname = _owner_names(m.uid, m.gid, names)
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class Bundle:
    """The archive of one problem directory; build with :meth:`open`, then stream."""

    def __init__(self, path: str, members: list[Member], extra: Mapping[str, bytes], *,
                 level: int, report: PackReport) -> None:
        self.path = path
        self.members = members
        self.extra = dict(extra)
        self.level = level
        self.report = report
        self._names: dict[tuple[str, int], str] = {}

    @classmethod
    def open(cls, path: str, exclusions: Exclusions, *, extra: Mapping[str, bytes] | None = None,
             level: int = DEFAULT_LEVEL, redact_text: bool = True) -> Bundle:
        """Scan *path* (locked while scanning): the members, text elements read and redacted.

        *extra* elements (e.g. ``host_checks.json``) are added unless the directory has them.
        """
        report = PackReport()
        members: list[Member] = []
        with DumpDir.open(path, readonly=True, timeout=30) as dd:
            names = dd.list_elements()
            for name, problem in dd.entry_problems().items():
                report.skipped[name] = problem
        dfd = dirfs.open_dir(path)
        try:
            for name in names:
                if exclusions.excludes(name):
                    report.skipped[name] = "excluded"
                    continue
                member = _member(dfd, path, name, redact_text, report)
                if member is not None:
                    members.append(member)
        finally:
            os.close(dfd)
        have = {m.name for m in members}
        extras = {k: v for k, v in (extra or {}).items() if k not in have and not exclusions.excludes(k)}
        return cls(path, members, extras, level=level, report=report)

    def _blocks(self) -> Iterator[tuple[bytes, bool]]:
        """Uncompressed tar stream, as ``(bytes, is_element_binary_data)`` pieces."""
        now = int(os.path.getmtime(self.path)) if os.path.exists(self.path) else 0
        dfd = dirfs.open_dir(self.path)
        total = 0
        try:
            for m in [*self.members, *(Member(k, len(v), now, 0, 0, v) for k, v in self.extra.items())]:
                header = tar_header(m, self._names)
                yield header, False
                total += len(header)
                if m.data is not None:
                    yield m.data, False
                else:
                    for piece in self._stream_element(dfd, m):
                        yield piece, True
                total += m.size
                pad = -m.size % BLOCK
                if pad:
                    yield b"\0" * pad, False
                    total += pad
                self.report.members += 1
                self.report.raw_bytes += m.size
        finally:
            os.close(dfd)
        end = 2 * BLOCK
        total += end
        end += -total % RECORD
        yield b"\0" * end, False

    def _stream_element(self, dfd: int, m: Member) -> Iterator[bytes]:
        try:
            fd = dirfs.open_element(dfd, m.name, self.path)
        except BadElementError:
            fd = None
        left = m.size
        if fd is not None:
            try:
                while left > 0:
                    data = os.read(fd, min(CHUNK, left))
                    if not data:
                        break
                    left -= len(data)
                    yield data
            finally:
                os.close(fd)
        if left:
            self.report.short.append(m.name)  # shrank or vanished meanwhile: keep the tar valid
            while left:
                n = min(CHUNK, left)
                yield b"\0" * n
                left -= n

    def _compressed(self) -> Iterator[bytes]:
        """The gzip stream: one member at the configured level, switching to a stored member
        for stretches of element data that do not compress (random or already compressed
        bytes: deflate would only cost time). Concatenated members are valid gzip."""
        gz = _GzipMembers(self.level)
        for data, binary in self._blocks():
            level = self.level
            if binary and self.level > 0 and len(data) >= PROBE:
                sample = data[:PROBE]
                if len(zlib.compress(sample, 1)) > len(sample) * INCOMPRESSIBLE:
                    level = 0
            out = gz.write(data, level)
            if out:
                self.report.packed_bytes += len(out)
                yield out
        out = gz.finish()
        self.report.packed_bytes += len(out)
        yield out

    def chunks(self) -> Iterator[bytes]:
        """The compressed archive in pieces, read and compressed ahead by a worker thread."""
        q: queue.Queue[bytes | BaseException | None] = queue.Queue(QUEUE_DEPTH)
        stop = threading.Event()

        def work() -> None:
            try:
                for piece in self._compressed():
                    if stop.is_set():
                        return
                    q.put(piece)
                q.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                q.put(exc)

        worker = threading.Thread(target=work, name="bundle-pack", daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while worker.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    worker.join(0.05)

    def write_to(self, f: BinaryIO) -> int:
        """Write the archive to *f*; returns its size."""
        n = 0
        for piece in self.chunks():
            f.write(piece)
            n += len(piece)
        return n


class _GzipMembers:
    """A gzip stream written as members: a new member begins when the level changes."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip wrapper, mtime 0
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes, level: int) -> bytes:
        out = b""
        if level != self.level:
            out = self._drain() + self._comp.flush()
            self.level = level
            self._comp = zlib.compressobj(level, zlib.DEFLATED, 31)
        self._pending.append(data)
        self._size += len(data)
        if self._size >= CHUNK:
            out += self._drain()
        return out

    def _drain(self) -> bytes:
        if not self._pending:
            return b""
        out = self._comp.compress(b"".join(self._pending))
        self._pending, self._size = [], 0
        return out

    def finish(self) -> bytes:
        return self._drain() + self._comp.flush()


def _member(dfd: int, path: str, name: str, redact_text: bool, report: PackReport) -> Member | None:
    try:
        fd = dirfs.open_element(dfd, name, path)
    except BadElementError as exc:
        report.skipped[name] = exc.problem
        return None
    if fd is None:
        return None  # removed meanwhile
    try:
        st = os.fstat(fd)
        head = os.pread(fd, elements.TEXT_PROBE_SIZE, 0)
        data = None
        if redact_text and elements.is_text(head, st.st_size):
            raw = dirfs.read_all(fd)
            text = raw.decode("utf-8", "surrogateescape")
            cleaned = redact.redact_element(name, text)
            if cleaned != text:  # else streamed from the file like a binary element
                report.redacted.append(name)
                data = cleaned.encode("utf-8", "surrogateescape")
        size = len(data) if data is not None else st.st_size
        return Member(name, size, int(st.st_mtime), st.st_uid, st.st_gid, data)
    except OSError as exc:
        report.skipped[name] = f"can't be read: {exc.strerror}"
        return None
    finally:
        os.close(fd)


def archive_name(path: str) -> str:
    """``<basename(DIR)>.tar.gz``, with characters an upload name can't carry made ``_``."""
    base = os.path.basename(os.path.abspath(path)) or "problem"
    safe = "".join(c if c.isalnum() and c.isascii() or c in "._:+@=,-" else "_" for c in base)
    if not safe[0].isalnum():
        safe = "p" + safe
    return safe[:190] + ".tar.gz"


def check_dir(path: str) -> None:
    """Raise :class:`ProblemDirError` unless *path* is a problem directory."""
    with DumpDir.open(path, readonly=True, timeout=30):
        pass
