"""Kernel log sources over real files: rotated and compressed syslog files, kdump output,
/dev/kmsg and dmesg on this host, and a bad-input tour (corrupt archives, symlinks,
directories, binary garbage)."""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from collectors.oops.sources import (
    MAX_LINE,
    FileSource,
    KdumpSource,
    KmsgSource,
    LogUnit,
    SyslogSource,
    kmsg_lines,
    make_source,
    parse_kmsg_record,
    rotated_family,
)


def _lines(n: int, start: int = 0, tag: str = "") -> list[str]:
    return [f"Nov 24 03:{(i // 60) % 60:02d}:{i % 60:02d} host kernel: [{i:5d}.000000] {tag}line {i}"
            for i in range(start, start + n)]


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _drain(units: list[LogUnit] | object) -> list[tuple[str, list[str]]]:
    out = []
    for unit in units:  # type: ignore[attr-defined]
        lines = list(unit.lines)
        unit.finish()
        out.append((unit.origin, lines))
    return out


def _make_rotated(logdir: Path, base: str = "kern.log") -> list[str]:
    """A rotated family, oldest first: .4.bz2, .3.xz, .2.gz, .1 (plain), current."""
    chunks = [_lines(50, 100 * i, f"r{i} ") for i in range(5)]
    (logdir / f"{base}.4.bz2").write_bytes(bz2.compress(_text(chunks[0])))
    (logdir / f"{base}.3.xz").write_bytes(lzma.compress(_text(chunks[1])))
    (logdir / f"{base}.2.gz").write_bytes(gzip.compress(_text(chunks[2])))
    (logdir / f"{base}.1").write_bytes(_text(chunks[3]))
    (logdir / base).write_bytes(_text(chunks[4]))
    return [line for chunk in chunks for line in chunk]


def test_rotated_family_order(tmp_path: Path) -> None:
    for name in ["messages", "messages.1", "messages.10.gz", "messages.2.gz", "messages-20240101",
                 "messages-20231231.xz", "messages.bak", "messages.1.swp", "messagesX"]:
        (tmp_path / name).write_text("x\n")
    base = str(tmp_path / "messages")
    got = [os.path.basename(p) for p in rotated_family(base)]
    assert got == ["messages-20231231.xz", "messages-20240101", "messages.10.gz", "messages.2.gz",
                   "messages.1", "messages"]


def test_syslog_reads_rotated_compressed_family_in_order(tmp_path: Path) -> None:
    expected = _make_rotated(tmp_path)
    (tmp_path / "messages").write_text("Nov 24 03:00:00 host kernel: not read\n")
    src = SyslogSource(str(tmp_path))
    assert src.exists()
    state: dict = {}
    units = _drain(src.units(state))
    assert [os.path.basename(o) for o, _ in units] == [
        "kern.log.4.bz2", "kern.log.3.xz", "kern.log.2.gz", "kern.log.1", "kern.log"]
    assert [line for _, lines in units for line in lines] == expected
    # Nothing new: a second run yields no lines.
    assert all(lines == [] for _, lines in _drain(src.units(state)))


def test_syslog_after_rotation_reads_only_new_lines(tmp_path: Path) -> None:
    first = _lines(300)
    (tmp_path / "kern.log").write_bytes(_text(first))
    src = SyslogSource(str(tmp_path))
    state: dict = {}
    _drain(src.units(state))
    # logrotate: kern.log -> kern.log.1 (+ lines written before the rotation) -> new kern.log.
    late = _lines(5, 300, "late ")
    os.rename(tmp_path / "kern.log", tmp_path / "kern.log.1")
    with open(tmp_path / "kern.log.1", "ab") as f:
        f.write(_text(late))
    fresh = _lines(7, 400, "fresh ")
    (tmp_path / "kern.log").write_bytes(_text(fresh))
    units = dict(_drain(src.units(state)))
    assert units[str(tmp_path / "kern.log.1")] == late
    assert units[str(tmp_path / "kern.log")] == fresh
    # Next rotation compresses .1 to .2.gz: still recognised, nothing re-read.
    data = (tmp_path / "kern.log.1").read_bytes()
    (tmp_path / "kern.log.2.gz").write_bytes(gzip.compress(data))
    os.unlink(tmp_path / "kern.log.1")
    os.rename(tmp_path / "kern.log", tmp_path / "kern.log.1")
    (tmp_path / "kern.log").write_bytes(b"")
    assert all(lines == [] for _, lines in _drain(src.units(state)))


def test_live_file_keeps_an_unterminated_last_line_for_later(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(b"Nov 24 03:00:00 host kernel: one\nNov 24 03:00:01 host kernel: tw")
    src = SyslogSource(str(tmp_path))
    state: dict = {}
    assert _drain(src.units(state))[0][1] == ["Nov 24 03:00:00 host kernel: one"]
    with open(log, "ab") as f:
        f.write(b"o\n")
    assert _drain(src.units(state))[0][1] == ["Nov 24 03:00:01 host kernel: two"]


def test_copytruncate_is_read_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "kern.log"
    log.write_bytes(_text(_lines(200)))
    src = SyslogSource(str(tmp_path))
    state: dict = {}
    _drain(src.units(state))
    again = _lines(3, 1000, "after truncate ")
    log.write_bytes(_text(again))  # truncated in place, then written again
    assert _drain(src.units(state))[0][1] == again


def test_bad_files_are_skipped_with_a_reason_and_others_still_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = _lines(20, 0, "good ")
    (tmp_path / "kern.log").write_bytes(_text(good))
    corrupt = bytearray(gzip.compress(_text(_lines(2000, 0, "lost "))))
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 64] = b"\x00" * 64
    (tmp_path / "kern.log.2.gz").write_bytes(bytes(corrupt))
    (tmp_path / "kern.log.3.xz").write_bytes(b"\xfd7zXZ\x00" + b"garbage" * 10)
    os.symlink("/etc/passwd", tmp_path / "kern.log.4")
    (tmp_path / "kern.log.5").mkdir()
    src = SyslogSource(str(tmp_path))
    state: dict = {}
    with caplog.at_level(logging.WARNING):
        units = _drain(src.units(state))
    by_name = {os.path.basename(o): lines for o, lines in units}
    assert by_name["kern.log"] == good
    assert "kern.log.4" not in by_name and "kern.log.5" not in by_name
    warnings = [r.getMessage() for r in caplog.records]
    for name in ("kern.log.2.gz", "kern.log.3.xz", "kern.log.4", "kern.log.5"):
        assert any(name in w for w in warnings), (name, warnings)
    assert all("\n" not in w for w in warnings)
    # The intact lines before the damage in the .gz were still passed on.
    assert by_name["kern.log.2.gz"][:3] == _lines(3, 0, "lost ")


def test_garbage_nul_invalid_utf8_and_huge_lines(tmp_path: Path) -> None:
    path = tmp_path / "garbage.log"
    blob = os.urandom(200_000)
    path.write_bytes(b"first\x00line\n\xff\xfe\xc3(bad utf8\n" + b"A" * (10 * 1024 * 1024)
                     + b"\nafter huge\n" + blob)
    units = _drain(FileSource(str(path)).units({}))
    lines = units[0][1]
    assert lines[0] == "first line"
    assert lines[1].endswith("(bad utf8") and "\ufffd" in lines[1]
    assert lines[2] == "A" * MAX_LINE  # capped (the rest of the line dropped)
    assert lines[3] == "after huge"
    assert all(len(line) <= MAX_LINE for line in lines)


def test_zstd_rotated_file(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "kern.log.2.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(_text(_lines(500))))
    state: dict = {}
    assert _drain(FileSource(str(path)).units(state))[0][1] == _lines(500)
    assert _drain(FileSource(str(path)).units(state))[0][1] == []


def test_file_source_cursor_survives_between_runs(tmp_path: Path) -> None:
    path = tmp_path / "some.log.xz"
    path.write_bytes(lzma.compress(_text(_lines(10))))
    src = FileSource(str(path))
    state: dict = {}
    assert _drain(src.units(state))[0][1] == _lines(10)
    assert _drain(src.units(state))[0][1] == []


def test_kdump_finds_fedora_and_debian_layouts(tmp_path: Path) -> None:
    fedora = tmp_path / "127.0.0.1-2024-01-02-03:04:05"
    debian = tmp_path / "202401020304"
    fedora.mkdir()
    debian.mkdir()
    (fedora / "vmcore-dmesg.txt").write_bytes(_text(_lines(3, 0, "fedora ")))
    (fedora / "vmcore").write_bytes(b"\x7fELF")
    (debian / "dmesg.202401020304").write_bytes(_text(_lines(3, 0, "debian ")))
    (debian / "dump.202401020304").write_bytes(b"KDUMP")
    src = KdumpSource(str(tmp_path))
    assert src.exists()
    units = dict(_drain(src.units({})))
    assert units == {str(fedora / "vmcore-dmesg.txt"): _lines(3, 0, "fedora "),
                     str(debian / "dmesg.202401020304"): _lines(3, 0, "debian ")}
    assert not KdumpSource(str(tmp_path / "none")).exists()


@pytest.mark.parametrize("record, level, seq, ts, caller, text", [
    (b"4,1234,5678901,-;WARNING: CPU: 1 PID: 2 at x.c:3 f+0x1/0x2\n", 4, 1234, 5678901, None,
     "WARNING: CPU: 1 PID: 2 at x.c:3 f+0x1/0x2"),
    (b"6,339,5140900,-,caller=T1;line one\\x0aline two\n SUBSYSTEM=acpi\n DEVICE=+acpi:x\n",
     6, 339, 5140900, "T1", "line one\nline two"),
    (b"12,7,0,c;user \\x5c write\n", 4, 7, 0, None, "user \\ write"),
])
def test_parse_kmsg_record(record: bytes, level: int, seq: int, ts: int, caller: str | None,
                           text: str) -> None:
    rec = parse_kmsg_record(record)
    assert rec is not None
    assert (rec.level, rec.seq, rec.ts_usec, rec.caller, rec.text) == (level, seq, ts, caller, text)


@pytest.mark.parametrize("junk", [b"", b"no separator", b"a,b,c,d;text", b"1,2;short", b"\xff\x00;"])
def test_malformed_kmsg_records_are_rejected(junk: bytes) -> None:
    assert parse_kmsg_record(junk) is None


def test_kmsg_lines_look_like_dmesg_raw() -> None:
    rec = parse_kmsg_record(b"4,10,1500000,-;Call Trace:\\x0a foo+0x1/0x2\n")
    assert rec is not None
    assert kmsg_lines(rec) == ["<4>[    1.500000] Call Trace:", "<4>[    1.500000]  foo+0x1/0x2"]
    rec = parse_kmsg_record(b"6,11,2000001,-,caller=T42;hello\n")
    assert rec is not None and kmsg_lines(rec) == ["<6>[    2.000001][   T42] hello"]


def _kmsg_write(text: str) -> None:
    fd = os.open("/dev/kmsg", os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _need_kmsg() -> None:
    if not os.access("/dev/kmsg", os.R_OK | os.W_OK):
        pytest.skip("needs read and write access to /dev/kmsg (root)")


def test_kmsg_reads_real_ring_buffer_and_resumes_after_cursor() -> None:
    _need_kmsg()
    src = KmsgSource()
    state: dict = {}
    first = _drain(src.units(state))[0][1]
    assert first and all(line.startswith("<") for line in first)
    assert state["seq"] >= 0 and len(state["boot_id"]) == 32
    marker = f"crashkit-test-kmsg-{uuid.uuid4().hex}"
    _kmsg_write(f"<6>{marker}\n")
    second = _drain(src.units(state))[0][1]
    # Only records after the cursor: ours (and maybe a few more from other processes).
    assert any(line.endswith(marker) for line in second)
    assert len(second) < len(first) or len(first) < 20
    assert not any(marker in line for line in _drain(src.units(state))[0][1])


def test_dmesg_fallback_when_kmsg_cannot_be_opened(tmp_path: Path) -> None:
    _need_kmsg()
    if shutil.which("dmesg") is None:
        pytest.skip("dmesg not installed")
    src = KmsgSource(path=str(tmp_path / "no-kmsg"))
    state: dict = {}
    units = _drain(src.units(state))
    assert units[0][0] == "dmesg"
    real = subprocess.run(["dmesg", "--raw"], capture_output=True, check=True).stdout
    first_real = real.decode("utf-8", "replace").splitlines()[0]
    assert units[0][1][0] == first_real
    marker = f"crashkit-test-dmesg-{uuid.uuid4().hex}"
    _kmsg_write(f"<6>{marker}\n")
    again = _drain(src.units(state))[0][1]
    assert any(marker in line for line in again) and len(again) < len(units[0][1])


def test_make_source_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        make_source("nonsense")
    with pytest.raises(ValueError, match="directory"):
        make_source(str(tmp_path))
    (tmp_path / "x.log").write_text("x\n")
    assert isinstance(make_source(str(tmp_path / "x.log")), FileSource)
    assert make_source("pstore").name == "pstore"
