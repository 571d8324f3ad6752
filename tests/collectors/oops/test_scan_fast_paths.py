"""The fast paths of the oops scan give what the line-by-line scanner gives.

``scan_stream`` finds anchor lines with one automaton pass per block (collectors.oops.prefilter)
and hands stretches of plain lines to the title windows in bulk; ``scan_lines`` looks at every
line itself. The oracle for the first is the second, on logs made of real ABRT oopses mixed
with ordinary lines in the prefix styles a scan meets (timestamps, caller ids, syslog, bare
text, blank lines, boot lines, questionable frames, NMI backtraces), cut in blocks of several
sizes so that every boundary case is crossed.
"""

from __future__ import annotations

import io
import random

import pytest
from testlib import FIXTURES

from collectors.oops.parse import scan_lines, scan_stream
from collectors.oops.prefilter import anchor_lines, chunk_words, has_anchor

NOISE = [
    "[{t:12.6f}] usb 1-1: new high-speed USB device number {n} using xhci_hcd",
    "[{t:12.6f}] EXT4-fs (sda1): mounted filesystem with ordered data mode.",
    "[{t:12.6f}]  ? some_function+0x{n:x}/0x100",
    "[{t:12.6f}] Sending NMI from CPU 0 to CPUs 1:",
    "[{t:12.6f}] Disabling lock debugging due to kernel taint",
    "[{t:12.6f}] [ T{n}] audit: type=1400 audit({n}): apparmor=\"STATUS\"",
    "[{t:12.6f}] [  C1] irq work on cpu {n}",
    "Nov 24 03:15:20 host kernel: [{t:12.6f}] e1000e eno1: NIC Link is Up",
    "Nov 24 03:15:20 host sshd[{n}]: Accepted publickey for root",
    "plain text line {n} without any prefix",
    "",
    "[{t:12.6f}] ",
    "[{t:12.6f}] -- more text -- {n}",
    "[{t:12.6f}] Command line: root=/dev/sda1 quiet",
    "[{t:12.6f}] Kernel command line: BOOT_IMAGE=/vmlinuz root=/dev/sda1",
    "[{t:12.6f}] Booting paravirtualized kernel on KVM",
    "[{t:12.6f}] \t ",
    "[{t:12.6f}] text with a carriage return {n}\r",
    "[{t:12.6f}] {long}",
    "[{t:12.6f}] vmalloc: allocation failure: {n} bytes",
    "[{t:12.6f}]  frame_like_name+0x10/0x20",
    "[{t:12.6f}] caf\u00e9 \u2028 text {n}",
]


def _reports() -> list[list[str]]:
    out: list[list[str]] = []
    for path in sorted((FIXTURES / "abrt-oops").glob("*.right")):
        if path.name.startswith("xorg_"):
            continue
        report: list[str] = []
        for ln in path.read_text(errors="replace").splitlines() + [""]:
            if ln.startswith(("abrt-dump-oops:", "Version:")):
                continue
            if ln.strip():
                report.append(ln)
            elif report:
                out.append(report)
                report = []
    return out


def _log(seed: int, lines: int = 6000) -> str:
    rnd = random.Random(seed)
    reports = _reports()
    out: list[str] = []
    t = 0.0
    while len(out) < lines:
        t += rnd.random()
        if rnd.random() < 0.01:
            stamp = rnd.random() < 0.8
            out += [f"[{t:12.6f}] {ln}" if stamp else ln for ln in rnd.choice(reports)]
        else:
            out.append(rnd.choice(NOISE).format(t=t, n=rnd.randint(1, 99999), long="y" * rnd.choice((10, 5000))))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("seed", range(6))
def test_stream_equals_line_by_line(seed):
    text = _log(seed)
    expected = [r.to_json_dict() for r in scan_lines(text.split("\n")[:-1])]
    assert expected  # the log holds reports
    data = text.encode()
    for block in (4 << 20, 65536, 7000):
        got = [r.to_json_dict() for r in scan_stream(io.BytesIO(data), block_size=block)]
        assert got == expected, f"block size {block}"


def test_anchor_lines_names_the_lines_with_an_anchor():
    block = b"ok line\nxx BUG: boom\nWARNING: CPU: 0 PID: 1 and BUG: twice\nnothing\nKernel panic - not syncing\n"
    starts = anchor_lines(block)
    assert starts == [block.index(b"xx BUG"), block.index(b"WARNING:"), block.index(b"Kernel panic")]
    assert [block[s:block.index(b"\n", s)].split()[0] for s in starts] == [b"xx", b"WARNING:", b"Kernel"]


def test_has_anchor_and_surrogates():
    assert has_anchor("general protection fault, probably for non-canonical address")
    assert not has_anchor("usb 1-1: new high-speed USB device")
    assert has_anchor("BUG: x \udcff")  # text decoded with surrogateescape does not raise
    assert not has_anchor("\udcff plain")


def test_chunk_words():
    assert chunk_words(b"a ? b") == {" ? "}
    assert chunk_words(b"[ 1.0] Booting Linux on physical CPU\n[ 1.1] x (unreliable)\n") == {"Booting ", " (unreliable)"}
    assert chunk_words(b"[ 1.0] Sending NMI from CPU 0 to CPUs 1:\n") == {"Sending NMI from CPU"}
    assert chunk_words(b"nothing to see\n") == set()


def test_has_anchor_is_any_anchor_substring():
    """The automaton answers what a plain substring test over kinds.ANCHORS answers, on every
    line (and pieces of lines) of the ABRT example logs."""
    from collectors.oops.kinds import ANCHORS

    checked = 0
    for path in sorted((FIXTURES / "abrt-oops").iterdir()):
        for line in path.read_text(errors="replace").splitlines():
            for piece in (line, line[3:40], line[len(line) // 2:]):
                assert has_anchor(piece) == any(a in piece for a in ANCHORS), piece
                checked += 1
    assert checked > 1000
