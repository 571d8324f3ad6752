"""Bad input never raises and never hangs (bounded hypothesis runs)."""

from __future__ import annotations

import io
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.oops.parse import MAX_REPORT_LINES, scan_stream, scan_text

PIECES = [
    "BUG: kernel NULL pointer dereference, address: 0000000000000008\n", "Call Trace:\n",
    " [<ffffffff8106dd4f>] warn_slowpath_common+0x7f/0xc0\n", " dump_stack+0x5c/0x80\n", "---[ end trace 0 ]---\n",
    "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2\n", "Kernel panic - not syncing: x\n", "==================\n",
    "BUG: KASAN: use-after-free in f+0x1/0x2\n", "<4>[  1.2][ T12] ", "4,1,2,-;", " KEY=v\n", "\x00", "\xff",
    "Linux version 6.1\n", "RIP: 0010:f+0x1/0x2\n", "invoked oom-killer: x\n", "\n", "[<", "+0x", "Tainted: ",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=40)), max_size=60))
def test_fuzz_text(parts: list[str]) -> None:
    text = "".join(parts)
    reports = scan_text(text)
    for r in reports:
        assert 1 <= r.start_line <= r.end_line
        r.to_json_dict()
    streamed = list(scan_stream(io.BytesIO(text.encode("utf-8", "surrogatepass")), block_size=7))
    assert [(r.kind, r.start_line, r.end_line) for r in streamed] == [(r.kind, r.start_line, r.end_line) for r in reports]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_binary(data: bytes) -> None:
    list(scan_stream(io.BytesIO(data), block_size=64))


def test_huge_line_nul_bytes_and_invalid_utf8() -> None:
    data = (b"\xff\xfe\x00garbage\n" + b"A" * (20 << 20) + b"BUG: hidden far away\n"
            + b"[  1.0] BUG: kernel NULL pointer dereference, address: 0\xc3\n[  1.1] Call Trace:\n"
            + b"[  1.2]  f+0x1/0x2\n[  1.3]  g+0x1/0x2\n")
    t0 = time.monotonic()
    reports = list(scan_stream(io.BytesIO(data)))
    assert time.monotonic() - t0 < 20
    assert [r.start_line for r in reports] == [3]
    assert reports[0].frames[-1].function == "g"


def test_never_ending_trace_is_cut() -> None:
    lines = ["BUG: unable to handle kernel paging request at 0", "Call Trace:"]
    lines += [f" [<ffffffff8106dd4f>] f{i}+0x7f/0xc0" for i in range(MAX_REPORT_LINES * 2)]
    reports = scan_text("\n".join(lines))
    assert reports[0].truncated and reports[0].end_line - reports[0].start_line + 1 <= MAX_REPORT_LINES
    assert len(reports[0].frames) <= 256


def test_log_cut_mid_line() -> None:
    (r,) = scan_text("[ 1.0] general protection fault: 0000 [#1] SMP\n[ 1.1] CPU: 0 PID: 1 Comm: x Not tai")
    assert r.truncated and r.kind == "gpf"
