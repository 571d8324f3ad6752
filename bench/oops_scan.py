#!/usr/bin/env python3
"""Figure: `crashkit oops scan` throughput on a large, mostly normal kernel log.

Generates SIZE (default 1 GB) of dmesg-style lines with a few hundred kernel reports mixed in,
then times the in-process scanner (collectors.oops.parse.scan_stream, what `crashkit oops scan`
runs) and `grep -c 'BUG\\|WARNING\\|Oops'` on the same file, and prints MB/s for both and the ratio.
Target: >= 50 MB/s on one core.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import tempfile
import time

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
REPORT = """WARNING: CPU: 3 PID: {n} at arch/x86/kvm/x86.c:11321 kvm_arch_vcpu_ioctl_run+0x1a7b/0x1c20 [kvm]
Modules linked in: kvm_intel kvm irqbypass
CPU: 3 PID: {n} Comm: qemu-kvm Tainted: G        W          6.6.0 #1
RIP: 0010:kvm_arch_vcpu_ioctl_run+0x1a7b/0x1c20 [kvm]
Call Trace:
 <TASK>
 ? __warn+0x81/0x130
 kvm_vcpu_ioctl+0x25f/0x6b0 [kvm]
 __x64_sys_ioctl+0x90/0xd0
 do_syscall_64+0x3f/0x90
 entry_SYSCALL_64_after_hwframe+0x6e/0xd8
 </TASK>
---[ end trace 0000000000000000 ]---"""


def generate(path: str, size: int, reports: int) -> int:
    rnd = random.Random(1)
    every = max(1, size // 100 // max(reports, 1))  # lines between reports (~100 bytes a line)
    written = 0
    count = 0
    t = 0.0
    with open(path, "w") as fp:
        lines = 0
        while written < size:
            chunk = []
            for _ in range(10000):
                t += rnd.random() / 10
                lines += 1
                if lines % every == 0 and count < reports:
                    count += 1
                    for ln in REPORT.format(n=rnd.randint(1, 99999)).splitlines():
                        chunk.append(f"[{t:12.6f}] {ln}\n")
                else:
                    chunk.append(f"[{t:12.6f}] " + rnd.choice(NORMAL).format(n=rnd.randint(1, 99999)) + "\n")
            data = "".join(chunk)
            fp.write(data)
            written += len(data)
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=1024, help="log size in MB (default 1024)")
    ap.add_argument("--reports", type=int, default=300, help="reports to mix in (default 300)")
    args = ap.parse_args()
    from collectors.oops.parse import scan_stream

    size = int(args.size * 1e6)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kern.log")
        planted = generate(path, size, args.reports)
        real = os.path.getsize(path)
        with open(path, "rb") as fp:  # warm the page cache for both contenders
            while fp.read(1 << 24):
                pass
        t0 = time.perf_counter()
        with open(path, "rb") as fp:
            found = sum(1 for _ in scan_stream(fp))
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = subprocess.run(["grep", "-c", r"BUG\|WARNING\|Oops", path], capture_output=True, text=True)
        grep = time.perf_counter() - t0
    mb = real / 1e6
    print(f"log: {mb:.0f} MB, {planted} reports planted, {found} found, grep matched {out.stdout.strip()} lines")
    print(f"crashkit scan_stream: {ours:.2f} s  {mb / ours:.1f} MB/s")
    print(f"grep -c (baseline):  {grep:.2f} s  {mb / grep:.1f} MB/s")
    print(f"ratio (ours / grep throughput): {grep / ours:.3f}  (target: >= 50 MB/s for ours)")


if __name__ == "__main__":
    main()
