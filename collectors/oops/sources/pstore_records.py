"""pstore records (``/sys/fs/pstore``): names, decompression, and dump reassembly.

:func:`inflate_pstore` and :func:`assemble_dmesg` are pure: compressed record bytes in,
dump events in log order out.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from collectors.errors import OopsError

PSTORE_NAME = re.compile(r"^(?P<type>[a-z]+)-(?P<backend>.+)-(?P<id>\d+)(?P<z>\.enc\.z)?$")
_PSTORE_HEADER = re.compile(r"^(?P<reason>[A-Za-z]+)#(?P<count>\d+) Part(?P<part>\d+)$")
# Most a record's file is read, and most its text is inflated to: a pstore record is one dump
# buffer (kmsg_bytes, a few KiB to 1 MiB), so this only stops a decompression bomb.
MAX_RECORD_BYTES = 16 << 20


@dataclass(frozen=True)
class PstoreRecord:
    """One file of /sys/fs/pstore, decompressed."""

    name: str
    type: str
    backend: str
    id: int
    text: str


def inflate_pstore(data: bytes) -> bytes:
    """Decompress an ``.enc.z`` record: zlib-wrapped (pstore before 6.6, ``WINDOW_BITS``
    12) or raw deflate (the crypto API ``deflate`` and pstore since 6.6).

    Backends keep records in fixed-size buffers, so data after the stream is ignored. The
    output is cut at :data:`MAX_RECORD_BYTES` (a decompression bomb costs no more memory).
    """
    for wbits in (zlib.MAX_WBITS | 32, -zlib.MAX_WBITS):
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data, MAX_RECORD_BYTES)
        except zlib.error:
            continue
        if out:
            return out
    raise OopsError("not a zlib or deflate stream")


def read_pstore_record(path: str) -> PstoreRecord | None:
    """The record at ``path``; None for names pstore does not produce."""
    name = os.path.basename(path)
    m = PSTORE_NAME.match(name)
    if not m:
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_RECORD_BYTES)
    if m.group("z"):
        data = inflate_pstore(data)
    return PstoreRecord(name=name, type=m.group("type"), backend=m.group("backend"),
                        id=int(m.group("id")), text=data.decode("utf-8", "replace").replace("\x00", " "))


@dataclass(frozen=True)
class PstoreEvent:
    """One kernel dump reassembled from its parts (``Oops#1 Part1`` …)."""

    backend: str
    reason: str
    count: int
    parts: tuple[str, ...]  # record names, as stored
    text: str

    @property
    def origin(self) -> str:
        """Human-readable name, e.g. ``pstore dmesg-ramoops-0..2 (Oops#1, 3 parts)``."""
        return f"pstore {','.join(self.parts)} ({self.reason}#{self.count}, {len(self.parts)} parts)"


def assemble_dmesg(records: Sequence[PstoreRecord]) -> list[PstoreEvent]:
    """Group ``dmesg`` records into events and join their parts in log order.

    pstore_dump() (fs/pstore/platform.c) walks the log from its end backwards: ``Part1``
    holds the newest lines and is written first, with the lowest id; each part begins
    with the header ``<reason>#<count> Part<n>``. A new event starts at every ``Part1``
    or wherever the header's reason, count or part sequence breaks. Log order is
    therefore PartN … Part1.
    """
    events: list[PstoreEvent] = []
    current: list[tuple[int, PstoreRecord, str]] = []
    key: tuple[str, str, int] | None = None

    def flush() -> None:
        if not current:
            return
        ordered = sorted(current, key=lambda c: -c[0])
        body = "".join(text if text.endswith("\n") else text + "\n" for _p, _r, text in ordered)
        head = current[0]
        events.append(PstoreEvent(backend=head[1].backend, reason=key[1] if key else "Unknown",
                                  count=key[2] if key else 0,
                                  parts=tuple(r.name for _p, r, _t in ordered), text=body))
        current.clear()

    by_backend = sorted((r for r in records if r.type == "dmesg"), key=lambda r: (r.backend, r.id))
    for rec in by_backend:
        first, _nl, rest = rec.text.partition("\n")
        m = _PSTORE_HEADER.match(first.strip())
        if m is None:  # no header: a record of its own
            flush()
            key = None
            current.append((1, rec, rec.text))
            flush()
            continue
        part = int(m.group("part"))
        rkey = (rec.backend, m.group("reason"), int(m.group("count")))
        if not current or part == 1 or rkey != key or part != current[-1][0] + 1:
            flush()
        key = rkey
        current.append((part, rec, rest))
    flush()
    return events
