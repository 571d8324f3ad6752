"""Hostile and damaged cores: a clear CoreFormatError or a valid best-effort core, fast, bounded."""

from __future__ import annotations

import io
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coripper.minimizer.elfcore import PT_LOAD, parse_elf_header, parse_program_headers
from coripper.errors import CoripperError, CoreFormatError, UnsupportedCoreError
from coripper.minimizer.stream import minimize_file, minimize_stream

from elfwriter import build_core, simple_spec

BASE = build_core(simple_spec(3))


def check_output(out: bytes) -> list:
    """The output is a structurally valid core: phdrs inside the file, sorted, non-overlapping."""
    hdr = parse_elf_header(out)
    phdrs = parse_program_headers(out[hdr.e_phoff:], hdr.e_phnum)
    assert len(phdrs) == hdr.e_phnum
    loads = [p for p in phdrs if p.p_type == PT_LOAD]
    for p in phdrs:
        assert p.p_offset + p.p_filesz <= len(out)
        assert p.p_memsz >= p.p_filesz
    for a, b in zip(loads, loads[1:], strict=False):
        assert a.p_vaddr + a.p_memsz <= b.p_vaddr
    return loads


def run_both(data: bytes):
    """Minimize ``data`` in both modes; return the stream report (or the error raised)."""
    results = []
    for fn in (minimize_stream, minimize_file):
        src = io.BytesIO(data)
        dst = io.BytesIO()
        start = time.monotonic()
        try:
            report = fn(src, dst)
        except (CoreFormatError, UnsupportedCoreError) as exc:
            assert str(exc)
            results.append(exc)
        else:
            check_output(dst.getvalue())
            assert report.bytes_out == len(dst.getvalue())
            results.append(report)
        assert time.monotonic() - start < 5
        if fn is minimize_stream:
            assert src.tell() == len(data), "stream mode must read its input to EOF"
    assert type(results[0]) is type(results[1])
    return results[0]


def test_synthetic_core_keeps_stacks() -> None:
    report = run_both(BASE)
    assert not report.truncated
    assert [t.tid for t in report.threads] == [100, 101, 102]
    assert any(r.startswith("stack tid 101") for _, _, r in report.kept)


@pytest.mark.parametrize("cut", sorted({0, 10, 63, 64, 100, 64 + 56 * 4, 400, 1000}))
def test_truncated_headers(cut: int) -> None:
    result = run_both(BASE[:cut])
    if cut < 64 + 56 * 5:
        assert isinstance(result, CoreFormatError)


def test_truncated_at_every_segment_boundary() -> None:
    hdr = parse_elf_header(BASE)
    phdrs = parse_program_headers(BASE[hdr.e_phoff:], hdr.e_phnum)
    cuts = {p.p_offset for p in phdrs} | {p.p_offset + p.p_filesz for p in phdrs}
    for cut in sorted(cuts | {c - 1 for c in cuts} | {c + 1 for c in cuts}):
        result = run_both(BASE[:cut])
        if not isinstance(result, CoripperError) and cut < len(BASE):
            assert result.truncated


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(BASE)))
def test_truncated_anywhere(cut: int) -> None:
    run_both(BASE[:cut])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=12))
def test_random_byte_damage_in_headers_and_notes(edits) -> None:
    data = bytearray(BASE)
    for pos, val in edits:
        data[pos] = val
    run_both(bytes(data))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 4), st.sampled_from(["p_offset", "p_filesz", "p_vaddr"]),
       st.integers(0, (1 << 64) - 1))
def test_lying_program_headers(index: int, fieldname: str, value: int) -> None:
    data = bytearray(BASE)
    off = 64 + 56 * index + {"p_offset": 8, "p_vaddr": 16, "p_filesz": 32}[fieldname]
    struct.pack_into("<Q", data, off, value)
    run_both(bytes(data))


def test_note_sizes_past_the_end() -> None:
    data = bytearray(BASE)
    note_off = struct.unpack_from("<Q", data, 64 + 8)[0]
    struct.pack_into("<I", data, note_off + 4, 0xFFFFFFF0)   # descsz of the first note
    report = run_both(bytes(data))
    assert not isinstance(report, Exception)
    assert any("note" in w for w in report.warnings)


def test_100000_program_headers() -> None:
    n = 100_000
    notes = b""
    data_off = 64 + 56 * n
    phdrs = bytearray(struct.pack("<IIQQQQQQ", 4, 0, data_off, 0, 0, 0, 0, 4))
    for i in range(1, n):
        phdrs += struct.pack("<IIQQQQQQ", 1, 6, data_off, 0x10000 + i * 0x1000, 0, 0, 0x1000, 4096)
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", ident, 4, 62, 1, 0, 64, 0, 0, 64, 56, 0xFFFF, 0, 0, 0)
    core = ehdr + bytes(phdrs) + notes
    start = time.monotonic()
    result = run_both(core)
    assert time.monotonic() - start < 10
    assert not isinstance(result, Exception)
    assert any("NT_PRSTATUS" in w for w in result.warnings)


@pytest.mark.parametrize("ident,error", [
    (b"\x7fELF\x01\x01\x01", UnsupportedCoreError),
    (b"\x7fELF\x02\x02\x01", UnsupportedCoreError),
    (b"GARBAGE", CoreFormatError),
])
def test_refused_kinds(ident: bytes, error: type) -> None:
    data = ident + BASE[len(ident):]
    with pytest.raises(error):
        minimize_stream(io.BytesIO(data), io.BytesIO())


def test_unknown_machine_is_refused() -> None:
    data = bytearray(BASE)
    struct.pack_into("<H", data, 18, 40)    # EM_ARM
    with pytest.raises(UnsupportedCoreError, match="machine"):
        minimize_file(io.BytesIO(bytes(data)), io.BytesIO())


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=2048))
def test_garbage_after_a_valid_header(tail: bytes) -> None:
    run_both(BASE[:64] + tail)
