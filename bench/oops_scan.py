#!/usr/bin/env python3
"""Figure: `crashkit oops scan` throughput on a sparse and on a crash-dense kernel log.

Generates two dmesg-style logs of SIZE MB each (default 1024) and, in the same run, times
`crashkit oops scan FILE --json` (the installed command, start-up included) and
`grep -c 'BUG\\|WARNING\\|Oops'` on each, printing MB/s for both (wall clock, and the
command's own CPU time, which other load on the machine does not inflate) and the ratio:

- sparse: normal boot/driver lines with REPORTS (default 300) reports mixed in;
- dense: a real report every EVERY (default 2000) lines, as a crash-looping host writes.

The planted reports are the real kernel oopses ABRT's test suite extracts (`*.right` in
$CRASHKIT_FIXTURES/abrt-oops, default ../shared/fixtures; not the Xorg ones), cycled.
Target: >= 100 MB/s for both logs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

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
        if path.name.startswith("xorg_"):
            continue  # X server backtraces (ABRT's Xorg detector), not kernel reports
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], sink: IO[str] | int) -> tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of one run of ``argv`` (the CPU time is the command's
    own, user and system: it does not grow when other processes take the cores)."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(argv, stdout=sink, check=True)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def measure(path: Path, out: Path) -> tuple[tuple[float, float], int, tuple[float, float], str]:
    """``((wall, cpu) of crashkit, reports found, (wall, cpu) of grep, grep count)``."""
    with path.open("rb") as fp:  # warm the page cache for both contenders
        while fp.read(1 << 24):
            pass
    with out.open("w") as sink:
        ours = timed([*crashkit_command(), "oops", "scan", str(path), "--json"], sink)
    found = len(json.loads(out.read_text()))
    with out.open("w") as sink:
        grep = timed(["grep", "-c", r"BUG\|WARNING\|Oops", str(path)], sink)
    return ours, found, grep, out.read_text().strip()


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
    worst = worst_cpu = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (every, limit) in profiles.items():
            if args.only and name != args.only:
                continue
            path = Path(tmp, f"{name}.log")
            planted = generate(path, size, every, reports, limit)
            ours, found, grep, matched = measure(path, Path(tmp, "out.txt"))
            mb = path.stat().st_size / 1e6
            path.unlink()
            worst = min(worst, mb / ours[0])
            worst_cpu = min(worst_cpu, mb / max(ours[1], 1e-9))
            print(f"{name}: {mb:.0f} MB, a report every {every} lines, {planted} planted, {found} found,"
                  f" grep matched {matched} lines")
            for label, (wall, cpu) in (("crashkit oops scan --json", ours), ("grep -c (baseline)", grep)):
                print(f"  {label + ':':<27}{wall:6.2f} s {mb / wall:7.1f} MB/s wall;"
                      f" {cpu:6.2f} s {mb / max(cpu, 1e-9):7.1f} MB/s CPU")
            print(f"  ratio (ours / grep throughput): {grep[0] / ours[0]:.3f} wall, {grep[1] / max(ours[1], 1e-9):.3f} CPU")
    verdict = "ok" if worst >= TARGET_MBS else "BELOW TARGET"
    verdict_cpu = "ok" if worst_cpu >= TARGET_MBS else "BELOW TARGET"
    print(f"slowest: {worst:.1f} MB/s wall: {verdict}; {worst_cpu:.1f} MB/s CPU: {verdict_cpu}"
          f" (target: >= {TARGET_MBS:.0f} MB/s for both logs; wall time grows with the machine's other load)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
