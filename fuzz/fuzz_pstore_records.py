"""Fuzz collectors.oops.sources.pstore_records: decompression and dump reassembly.

Input: bytes, used twice: as one compressed ``.enc.z`` record (``inflate_pstore``), and, split
at ``\\x00\\x00``, as the texts of consecutive ``dmesg-ramoops-N`` records (``assemble_dmesg``).

Contract checked (the module's docstrings; collectors/errors.py):

* ``inflate_pstore`` returns bytes or raises ``OopsError`` only;
* ``assemble_dmesg`` never raises, and every ``dmesg`` record lands in exactly one event's
  ``parts`` (non-dmesg records in none);
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: the ABRT oops fixtures (``$CRASHKIT_FIXTURES``, read in place) cut into pstore parts
with ``Oops#1 PartN`` headers, and compressed as zlib and raw deflate as pstore does.

Run: ``python3 fuzz/fuzz_pstore_records.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["collectors"]):
    from collectors.errors import OopsError  # noqa: E402
    from collectors.oops.sources.pstore_records import (  # noqa: E402
        PstoreRecord,
        assemble_dmesg,
        inflate_pstore,
    )

TARGET = "pstore_records"


def test_one(data: bytes) -> None:
    """One fuzz input."""
    try:
        inflate_pstore(data)
    except OopsError as exc:
        assert str(exc)
    pieces = data.split(b"\x00\x00")[:64]
    records = [PstoreRecord(name=f"{kind}-ramoops-{i}", type=kind, backend="ramoops" if i % 5 else "efi",
                            id=i, text=p.decode("utf-8", "replace").replace("\x00", " "))
               for i, p in enumerate(pieces) for kind in (("dmesg",) if i % 7 else ("console",))]
    events = assemble_dmesg(records)
    seen = Counter(name for ev in events for name in ev.parts)
    for rec in records:
        assert seen[rec.name] == (1 if rec.type == "dmesg" else 0), (rec.name, seen[rec.name])
        for ev in events:
            assert ev.origin


def deflate(data: bytes, wbits: int) -> bytes:
    """Compress as pstore does (zlib with a 4 KiB window before 6.6, raw deflate since)."""
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    return c.compress(data) + c.flush()


def seeds() -> Iterator[bytes]:
    """Fixture oopses as multi-part dumps, raw and compressed."""
    for path in _common.fixture_files("abrt-oops", (".test",))[:30]:
        text = path.read_bytes()[:6000]
        lines = text.split(b"\n")
        third = max(1, len(lines) // 3)
        chunks = [b"\n".join(lines[i:i + third]) for i in range(0, len(lines), third)][::-1]
        parts = [b"Oops#1 Part%d\n%s" % (n + 1, c) for n, c in enumerate(chunks)]
        yield b"\x00\x00".join(parts)
        yield deflate(parts[0], 12)
        yield deflate(parts[0], -15)


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
