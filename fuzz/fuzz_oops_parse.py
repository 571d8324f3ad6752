"""Fuzz collectors.oops: the kernel log scanner, ABRT hashes and taint helpers.

Input: a kernel log as bytes (dmesg, syslog, journal or console text).

Contract checked (docs/internal-apis.md "collectors.oops.parse": pure, best-effort;
tests/collectors/oops/test_parse_badinput.py):

* ``scan_stream`` (any bytes, several block sizes), ``scan_text``, ``KernelReport.to_json_dict``,
  ``koops_hash.abrt_duphash``/``abrt_hash_text``/``abrt_crash_function``/``abrt_reason``/
  ``abrt_kernel_version``, ``taint.abrt_tainted_short``/``abrt_tainted_long``/``tainted_letters``/
  ``taint_meanings``, ``frames.parse_frame``/``parse_ip_line`` and ``lines.strip_prefix``
  never raise: no exception type is allowed;
* every report has ``1 <= start_line <= end_line`` within the input's line count;
* for valid UTF-8 input, ``scan_stream`` finds the same reports (kind, start, end) as
  ``scan_text``, whatever the block size;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: every log of the ABRT oops fixtures (``$CRASHKIT_FIXTURES/abrt-oops``), read in place.

Run: ``python3 fuzz/fuzz_oops_parse.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["collectors"]):
    from collectors.oops import frames, koops_hash, lines, taint  # noqa: E402
    from collectors.oops.parse import KernelReport, scan_stream, scan_text  # noqa: E402

TARGET = "oops_parse"


def key(reports: list[KernelReport]) -> list[tuple[str, int, int]]:
    """What must agree between the text and the stream scanners."""
    return [(r.kind, r.start_line, r.end_line) for r in reports]


def check_text_helpers(text: str) -> None:
    """The ABRT-compatible helpers over a report's (or any) text."""
    koops_hash.abrt_duphash(text)
    koops_hash.abrt_duphash(text, normalize=True)
    koops_hash.abrt_hash_text(text)
    koops_hash.abrt_crash_function(text)
    koops_hash.abrt_reason(text)
    koops_hash.abrt_kernel_version(text)
    short = taint.abrt_tainted_short(text)
    if short is not None:
        taint.abrt_tainted_long(short)
    taint.taint_meanings(taint.tainted_letters(text))


def test_one(data: bytes) -> None:
    """One fuzz input."""
    nlines = data.count(b"\n") + 1
    streamed = list(scan_stream(io.BytesIO(data)))
    for r in streamed:
        assert 1 <= r.start_line <= r.end_line <= nlines, (r.start_line, r.end_line, nlines)
        r.to_json_dict()
        check_text_helpers(r.text)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
    else:
        for block_size in (1 + len(data) % 61, 4096):
            again = list(scan_stream(io.BytesIO(data), block_size=block_size))
            assert key(again) == key(streamed), (block_size, key(again), key(streamed))
        assert key(scan_text(text)) == key(streamed), (key(scan_text(text)), key(streamed))
    check_text_helpers(text)
    for line in text.split("\n")[:200]:
        stripped = lines.strip_prefix(line)
        frames.parse_frame(stripped.text)
        frames.parse_ip_line(stripped.text)


def seeds() -> Iterator[bytes]:
    """The ABRT oops fixture logs, read in place."""
    for path in _common.fixture_files("abrt-oops"):
        data = path.read_bytes()
        if len(data) <= 64 << 10:
            yield data


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds, defaults=("-max_len=8192",))
