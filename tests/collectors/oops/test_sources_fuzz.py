"""Hypothesis fuzzing of the sources' small parsers: kmsg records, pstore records and
headers, log file line splitting. Bounded example counts keep it fast."""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.errors import OopsError
from collectors.oops.sources import (
    FileSource,
    PstoreRecord,
    assemble_dmesg,
    inflate_pstore,
    kmsg_lines,
    parse_kmsg_record,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_kmsg_record_never_raises(data: bytes) -> None:
    rec = parse_kmsg_record(data)
    if rec is not None:
        assert 0 <= rec.level <= 7
        assert all("\n" not in line for line in kmsg_lines(rec))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 191), st.integers(0, 2**40), st.integers(0, 2**40),
       st.text(max_size=80).filter(lambda t: "\x00" not in t))
def test_kmsg_record_round_trip(prio: int, seq: int, ts: int, text: str) -> None:
    escaped = "".join(f"\\x{ord(c):02x}" if c in "\\\n" or ord(c) < 32 else c for c in text)
    rec = parse_kmsg_record(f"{prio},{seq},{ts},-;{escaped}\n".encode())
    assert rec is not None
    assert (rec.level, rec.facility, rec.seq, rec.ts_usec, rec.text) == (prio & 7, prio >> 3, seq, ts, text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_inflate_never_raises_anything_but_oops_error(data: bytes) -> None:
    try:
        inflate_pstore(data)
    except OopsError:
        pass
    assert inflate_pstore(zlib.compress(data + b"x")) == data + b"x"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.text(max_size=60)), max_size=12))
def test_assemble_dmesg_keeps_every_record(items: list[tuple[int, str]]) -> None:
    records = [PstoreRecord(name=f"dmesg-x-{i}", type="dmesg", backend="x", id=i, text=t)
               for i, (_, t) in enumerate(items)]
    events = assemble_dmesg(records)
    assert sorted(n for e in events for n in e.parts) == sorted(r.name for r in records)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000))
def test_file_lines_cover_the_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.log"
        path.write_bytes(data)
        units = list(FileSource(str(path)).units({}))
        lines = list(units[0].lines)
        units[0].finish()
    if units[0].errors:  # starts like a compressed file but is not one: logged, skipped
        assert data[:6].startswith((b"\x1f\x8b", b"\xfd7zXZ\x00", b"BZh", b"\x28\xb5\x2f\xfd"))
        return
    expected = data.decode("utf-8", "replace").replace("\x00", " ").split("\n")
    if expected and expected[-1] == "":
        expected.pop()
    assert [line.rstrip("\r") for line in lines] == [e.rstrip("\r") for e in expected]
