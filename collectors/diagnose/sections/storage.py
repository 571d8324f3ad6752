"""Mounts, block devices, disk space and network configuration."""

from __future__ import annotations

from collectors.diagnose.base import MiB, Section, SectionContext


class StorageNetSection(Section):
    name = "storage_net"
    title = "Mounts, block devices and network"
    time_limit = 15.0
    budget = 8 * MiB

    def collect(self, ctx: SectionContext) -> None:
        for f in ("/proc/self/mountinfo", "/proc/partitions", "/proc/swaps", "/etc/fstab",
                  "/etc/resolv.conf", "/etc/hosts", "/proc/net/dev"):
            ctx.add_file(f.strip("/").replace("/", "_"), f)
        ctx.add_command("lsblk.txt", ["lsblk", "-o", "NAME,KNAME,TYPE,SIZE,FSTYPE,MOUNTPOINT,RO,MODEL"])
        ctx.add_command("df.txt", ["df", "-P", "-T"], timeout=10)
        ctx.add_command("df-inodes.txt", ["df", "-P", "-i"], timeout=10)
        ctx.add_command("ip-addr.txt", ["ip", "-d", "addr", "show"])
        ctx.add_command("ip-route.txt", ["ip", "route", "show", "table", "all"])
        ctx.add_command("ip-link.txt", ["ip", "-s", "link", "show"])
        ctx.add_command("ss.txt", ["ss", "-tulpn"])
