"""Cursors of oops collect: the state file and recognising files again by content."""

from __future__ import annotations

import fcntl
import gzip
import json
import logging
import os
from pathlib import Path

import pytest

from collectors.oops.cursor import (
    BLOCK,
    CURSOR_FILE,
    LOCK_FILE,
    CursorStore,
    FileMark,
    load_marks,
    make_mark,
    resume_offset,
)


def _reader(data: bytes):
    return lambda off, n: data[off:off + n]


def _mark(path: str, data: bytes, offset: int | None = None) -> FileMark:
    return make_mark(path, 1, len(data) if offset is None else offset, _reader(data))


def _log(n: int, start: int = 0) -> bytes:
    return b"".join(b"Nov 24 03:15:%02d host kernel: line %06d of the log\n" % (i % 60, i)
                    for i in range(start, start + n))


def test_state_round_trip_is_atomic_and_private(tmp_path: Path) -> None:
    with CursorStore(str(tmp_path)) as store:
        store.section("kmsg").update({"boot_id": "abc", "seq": 42})
        store.add_occurrence("f" * 40, "oops-x")
        store.save()
    assert sorted(os.listdir(tmp_path)) == [CURSOR_FILE, LOCK_FILE]  # no temp file left
    assert (tmp_path / CURSOR_FILE).stat().st_mode & 0o777 == 0o600
    with CursorStore(str(tmp_path)) as again:
        assert again.section("kmsg") == {"boot_id": "abc", "seq": 42}
        assert again.seen_occurrence("f" * 40) == "oops-x"
        assert again.seen_occurrence("0" * 40) is None


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"version": 99}', b"\xff\xfe\x00"])
def test_corrupt_state_starts_over_with_a_warning(tmp_path: Path, content: bytes,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / CURSOR_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING), CursorStore(str(tmp_path)) as store:
        assert store.state["sources"] == {}
    assert "unreadable cursor file" in caplog.text


def test_lock_is_exclusive(tmp_path: Path) -> None:
    with CursorStore(str(tmp_path)):
        fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on exit
    finally:
        os.close(fd)


def test_occurrences_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("collectors.oops.cursor.MAX_OCCURRENCES", 3)
    with CursorStore(str(tmp_path)) as store:
        for i in range(5):
            store.add_occurrence(f"k{i}", f"d{i}")
        store.save()
    data = json.loads((tmp_path / CURSOR_FILE).read_text())
    assert list(data["occurrences"]) == ["k2", "k3", "k4"]


def test_appended_file_resumes_at_old_end() -> None:
    old = _log(500)
    new = old + _log(10, 500)
    assert resume_offset([_mark("kern.log", old)], _reader(new), len(new)) == len(old)


def test_small_file_that_grew_resumes() -> None:
    old = _log(3)  # smaller than one block: the head is the whole file
    assert len(old) < BLOCK
    new = old + _log(400, 3)
    assert resume_offset([_mark("kern.log", old)], _reader(new), len(new)) == len(old)


def test_truncated_or_replaced_file_starts_over() -> None:
    old = _log(500)
    mark = _mark("kern.log", old)
    truncated = old[: len(old) // 2]
    assert resume_offset([mark], _reader(truncated), len(truncated)) == 0
    replaced = _log(500, 1000)  # same size, other content (copytruncate + new lines)
    assert len(replaced) == len(old)
    assert resume_offset([mark], _reader(replaced), len(replaced)) == 0
    edited = bytearray(old)
    edited[len(old) - 10] ^= 0xFF  # the block before the offset changed
    assert resume_offset([mark], _reader(bytes(edited)), len(edited)) == 0


def test_rotated_and_compressed_file_is_recognised(tmp_path: Path) -> None:
    old = _log(800)
    mark = _mark(str(tmp_path / "kern.log"), old)
    gz = tmp_path / "kern.log.2.gz"
    gz.write_bytes(gzip.compress(old))
    with gzip.open(gz, "rb") as f:
        def read_at(off: int, n: int) -> bytes:
            f.seek(off)
            return f.read(n)
        assert resume_offset([mark], read_at) == len(old)


def test_furthest_matching_mark_wins() -> None:
    data = _log(900)
    marks = [_mark("a", data, 1000), _mark("b", data, 5000), _mark("c", _log(900, 5000))]
    assert resume_offset(marks, _reader(data), len(data)) == 5000


def test_marks_round_trip_and_malformed_ones_are_dropped() -> None:
    mark = _mark("/var/log/kern.log", _log(10))
    section = {"files": {"a": mark.to_json(), "b": {"path": "x"}, "c": "junk",
                         "d": {**mark.to_json(), "offset": -1}}}
    assert load_marks(section) == [mark]
    assert load_marks({"files": []}) == []
