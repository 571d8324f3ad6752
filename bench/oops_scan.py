#!/usr/bin/env python3
"""Figure: `crashkit oops scan` throughput on a sparse and on a crash-dense kernel log.

Generates two dmesg-style logs of SIZE MB each (default 1024) and, in the same run, times
`crashkit oops scan FILE --json` (the installed command, start-up included) and
`grep -c 'BUG\\|WARNING\\|Oops'` on each, printing MB/s for both and the ratio:

- sparse: normal boot/driver lines with REPORTS (default 300) reports mixed in;
- dense: a real report every EVERY (default 2000) lines, as a crash-looping host writes.

The planted reports are the real oopses ABRT's test suite extracts (`*.right` in
$CRASHKIT_FIXTURES/abrt-oops, default ../shared/fixtures), cycled. Target: >= 100 MB/s for
both logs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("CRASHKIT_FIXTURES", REPO.parent / "shared" / "fixtures"))
TARGET_MBS = 100.0

NORMAL = [
    "usb 1-1: new high-speed USB device number {n} using xhci_hcd",
    "EXT4-fs (sda1): mounted filesystem with ordered data mode. Quota mode: none.",
    'audit: type=1400 audit(1700000000.{n}:123): apparmor="STATUS" operation="profile_load" profile="unconfined" '
    'name="nvidia_modprobe" pid={n} comm="apparmor_parser"',
    "e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    "IPv6: ADDRCONF(NETDEV_CHANGE): eno1: link becomes ready",
    "input: Logitech USB Receiver as /devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/input/input{n}",
    "[UFW BLOCK] IN=eno1 OUT= MAC=01:00:5e:00:00:01 SRC=192.168.1.1 DST=224.0.0.1 LEN=36 TTL=1 ID={n} PROTO=2",
    "nvme nvme0: 8/0/0 default/read/poll queues",
    "sd 0:0:0:0: [sda] Attached SCSI disk",
    "perf: interrupt took too long ({n} > 2500), lowering kernel.perf_event_max_sample_rate to 79750",
    "systemd-journald[288]: Under memory pressure, flushing caches.",
]


def real_reports() -> list[list[str]]:
    """The oopses ABRT extracts from its test logs: one list of lines per report."""
    out: list[list[str]] = []
    for path in sorted((FIXTURES / "abrt-oops").glob("*.right")):
        body = [ln for ln in path.read_text(errors="replace").splitlines()
                if not ln.startswith(("abrt-dump-oops:", "Version:"))]
        report: list[str] = []
        for ln in body + [""]:
            if ln.strip():
                report.append(ln)
            elif report:
                out.append(report)
                report = []
    if not out:
        sys.exit(f"oops_scan: no reports under {FIXTURES / 'abrt-oops'} (set CRASHKIT_FIXTURES)")
    return out


def generate(path: Path, size: int, every: int, reports: list[list[str]], limit: int) -> int:
    """Write ``size`` bytes of log with a report after every ``every`` normal lines (at most
    ``limit`` reports); returns how many were planted."""
    rnd = random.Random(1)
    written = count = lines = 0
    t = 0.0
    with path.open("w") as fp:
        while written < size:
            chunk = []
            for _ in range(10000):
                t += rnd.random() / 10
                lines += 1
                if lines % every == 0 and count < limit:
                    for ln in reports[count % len(reports)]:
                        chunk.append(f"[{t:12.6f}] {ln}\n")
                    count += 1
                chunk.append(f"[{t:12.6f}] " + rnd.choice(NORMAL).format(n=rnd.randint(1, 99999)) + "\n")
            data = "".join(chunk)
            fp.write(data)
            written += len(data)
    return count


def crashkit_command() -> list[str]:
    """The installed ``crashkit`` beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name("crashkit")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crashkit")
    if found is None:
        sys.exit("oops_scan: no crashkit command (install the project: pip install -e .)")
    return [found]


def measure(path: Path, out: Path) -> tuple[float, int, float, str]:
    """``(crashkit seconds, reports found, grep seconds, grep count)`` on one file."""
    with path.open("rb") as fp:  # warm the page cache for both contenders
        while fp.read(1 << 24):
            pass
    t0 = time.perf_counter()
    with out.open("w") as sink:
        subprocess.run([*crashkit_command(), "oops", "scan", str(path), "--json"], stdout=sink, check=True)
    ours = time.perf_counter() - t0
    found = len(json.loads(out.read_text()))
    t0 = time.perf_counter()
    grep = subprocess.run(["grep", "-c", r"BUG\|WARNING\|Oops", str(path)], capture_output=True, text=True)
    return ours, found, time.perf_counter() - t0, grep.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=1024, help="size of each log in MB (default 1024)")
    ap.add_argument("--reports", type=int, default=300, help="reports in the sparse log (default 300)")
    ap.add_argument("--every", type=int, default=2000, help="normal lines between reports in the dense log (default 2000)")
    ap.add_argument("--only", choices=("sparse", "dense"), help="measure one log only")
    args = ap.parse_args()
    size = int(args.size * 1e6)
    reports = real_reports()
    profiles = {"sparse": (max(1, size // 100 // max(args.reports, 1)), args.reports),
                "dense": (args.every, 1 << 62)}
    worst = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (every, limit) in profiles.items():
            if args.only and name != args.only:
                continue
            path = Path(tmp, f"{name}.log")
            planted = generate(path, size, every, reports, limit)
            ours, found, grep, matched = measure(path, Path(tmp, "out.json"))
            mb = path.stat().st_size / 1e6
            path.unlink()
            worst = min(worst, mb / ours)
            print(f"{name}: {mb:.0f} MB, a report every {every} lines, {planted} planted, {found} found,"
                  f" grep matched {matched} lines")
            print(f"  crashkit oops scan --json: {ours:6.2f} s  {mb / ours:7.1f} MB/s")
            print(f"  grep -c (baseline):        {grep:6.2f} s  {mb / grep:7.1f} MB/s")
            print(f"  ratio (ours / grep throughput): {grep / ours:.3f}")
    verdict = "ok" if worst >= TARGET_MBS else "BELOW TARGET"
    print(f"slowest: {worst:.1f} MB/s (target: >= {TARGET_MBS:.0f} MB/s for both logs): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
