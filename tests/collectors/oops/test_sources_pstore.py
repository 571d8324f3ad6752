"""pstore records: multi-part dmesg dumps reassembled in log order, .enc.z inflated."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import pytest

from collectors.errors import OopsError
from collectors.oops.sources import PstoreSource, inflate_pstore


def _dmesg_lines(start: int, n: int) -> list[str]:
    return [f"<4>[  {100 + i:4d}.000000] panic log line {i}" for i in range(start, start + n)]


def _deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _zlib_window12(data: bytes) -> bytes:
    # pstore before 6.6: zlib_deflateInit2(..., WINDOW_BITS=12, ...) = zlib header.
    c = zlib.compressobj(6, zlib.DEFLATED, 12)
    return c.compress(data) + c.flush()


def _write_event(root: Path, backend: str, first_id: int, reason: str, count: int,
                 log: list[str], parts: int, compress) -> None:
    """Split ``log`` like pstore_dump(): Part1 = the newest lines, written first (lowest id)."""
    size = -(-len(log) // parts)
    chunks = [log[i:i + size] for i in range(0, len(log), size)]
    for part, chunk in enumerate(reversed(chunks), start=1):
        body = f"{reason}#{count} Part{part}\n" + "\n".join(chunk) + "\n"
        data = body.encode()
        name = f"dmesg-{backend}-{first_id + part - 1}"
        if compress is not None:
            data = compress(data) + b"\x00" * 37  # records sit in fixed-size buffers
            name += ".enc.z"
        (root / name).write_bytes(data)


def _units(src: PstoreSource, state: dict) -> list[tuple[str, str]]:
    out = []
    for unit in src.units(state):
        out.append((unit.origin, "\n".join(unit.lines)))
        unit.finish()
    return out


def test_multipart_compressed_dump_is_reassembled_in_log_order(tmp_path: Path) -> None:
    log = _dmesg_lines(0, 30)
    _write_event(tmp_path, "ramoops", 0, "Oops", 1, log, 3, _zlib_window12)
    src = PstoreSource(str(tmp_path))
    assert src.exists()
    units = _units(src, {})
    assert len(units) == 1
    origin, text = units[0]
    assert text.rstrip("\n").split("\n") == log
    assert "Oops#1" in origin and "3 parts" in origin


def test_raw_deflate_plain_and_mixed_events(tmp_path: Path) -> None:
    first = _dmesg_lines(0, 12)
    second = _dmesg_lines(100, 8)
    _write_event(tmp_path, "efi_pstore", 10, "Panic", 1, first, 2, _deflate_raw)
    _write_event(tmp_path, "efi_pstore", 20, "Oops", 2, second, 2, None)
    (tmp_path / "console-ramoops-0").write_text("console line 1\nconsole line 2\n")
    (tmp_path / "ftrace-ramoops-0").write_text("not a kernel log\n")
    texts = [t for _, t in _units(PstoreSource(str(tmp_path)), {})]
    assert [t.rstrip("\n").split("\n") for t in texts] == [
        first, second, ["console line 1", "console line 2"]]


def test_pstore_records_are_not_read_twice(tmp_path: Path) -> None:
    _write_event(tmp_path, "ramoops", 0, "Oops", 1, _dmesg_lines(0, 10), 2, None)
    src = PstoreSource(str(tmp_path))
    state: dict = {}
    assert len(_units(src, state)) == 1
    assert _units(src, state) == []
    _write_event(tmp_path, "ramoops", 5, "Panic", 2, _dmesg_lines(50, 4), 1, None)
    again = _units(src, state)
    assert len(again) == 1 and "Panic#2" in again[0][0]


def test_corrupt_compressed_record_is_skipped_with_a_reason(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "dmesg-ramoops-0.enc.z").write_bytes(b"\x00not compressed at all" * 5)
    _write_event(tmp_path, "ramoops", 1, "Oops", 1, _dmesg_lines(0, 4), 1, None)
    with caplog.at_level(logging.WARNING):
        units = _units(PstoreSource(str(tmp_path)), {})
    assert len(units) == 1
    assert "dmesg-ramoops-0.enc.z" in caplog.text and "skipped" in caplog.text


def test_inflate_rejects_garbage() -> None:
    with pytest.raises(OopsError):
        inflate_pstore(b"\xff" * 100)
    assert inflate_pstore(zlib.compress(b"x" * 10)) == b"x" * 10


def test_missing_pstore_is_not_an_error(tmp_path: Path) -> None:
    src = PstoreSource(str(tmp_path / "absent"))
    assert not src.exists()
    assert _units(src, {}) == []
