"""Fuzz collectors.oops.sources.kmsg_records: one ``/dev/kmsg`` record to ``dmesg --raw`` lines.

Input: the bytes of one record as read(2) returns it (``prio,seq,ts,flags[,caller=..];text``
plus `` KEY=value`` continuation lines).

Contract checked (the module's docstrings: pure, ``None`` if malformed):

* ``parse_kmsg_record`` returns ``None`` or a ``KmsgRecord`` and never raises;
* a record has ``0 <= level <= 7``, its text holds no NUL, and ``kmsg_lines`` never raises and
  gives one ``<L>[...]``-prefixed line per non-empty text line, none containing a newline;
* the lines then go through the oops scanner (``scan_lines``) without raising;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: kmsg records made from the lines of the ABRT oops fixtures (``$CRASHKIT_FIXTURES``,
read in place), escaped as the kernel escapes them.

Run: ``python3 fuzz/fuzz_kmsg_records.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["collectors"]):
    from collectors.oops.parse import scan_lines  # noqa: E402
    from collectors.oops.sources.kmsg_records import kmsg_lines, parse_kmsg_record  # noqa: E402

TARGET = "kmsg_records"


def test_one(data: bytes) -> None:
    """One fuzz input."""
    rec = parse_kmsg_record(data)
    if rec is None:
        return
    assert 0 <= rec.level <= 7, rec
    assert "\x00" not in rec.text
    out = kmsg_lines(rec)
    assert len(out) == sum(1 for line in rec.text.split("\n") if line)
    for line in out:
        assert line.startswith(f"<{rec.level}>["), line
        assert "\n" not in line
    list(scan_lines(out))


def escape(text: bytes) -> bytes:
    """Escape as the kernel's ``/dev/kmsg`` does: non-printable bytes and backslash as ``\\xNN``."""
    return b"".join(b"\\x%02x" % b if b < 0x20 or b >= 0x7F or b == 0x5C else bytes([b]) for b in text)


def seeds() -> Iterator[bytes]:
    """kmsg records built from the oops fixtures' lines."""
    seq = 0
    for path in _common.fixture_files("abrt-oops"):
        for line in path.read_bytes().split(b"\n")[:40]:
            seq += 1
            caller = b",caller=T%d" % (seq % 900) if seq % 2 else b""
            yield b"%d,%d,%d,-%s;%s\n SUBSYSTEM=test\n" % (seq % 8 + 8 * (seq % 3), seq, seq * 1000,
                                                         caller, escape(line))


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
