"""Host identity and hardware."""

from __future__ import annotations

from collectors.diagnose.base import MiB, Section, SectionContext

DMI = ("sys_vendor", "product_name", "product_version", "bios_vendor", "bios_version", "bios_date",
       "board_vendor", "board_name", "chassis_type")


class HostSection(Section):
    name = "host"
    title = "Host identity and hardware"
    time_limit = 10.0
    budget = 4 * MiB

    def collect(self, ctx: SectionContext) -> None:
        for f in ("/proc/sys/kernel/hostname", "/etc/hostname", "/etc/machine-id", "/proc/cpuinfo",
                  "/proc/meminfo", "/proc/uptime", "/proc/stat", "/proc/sys/kernel/random/boot_id"):
            ctx.add_file(f.strip("/").replace("/", "_"), f)
        dmi = []
        for key in DMI:
            try:
                with open(f"/sys/class/dmi/id/{key}", encoding="utf-8", errors="replace") as fp:
                    dmi.append(f"{key}: {fp.read().strip()}")
            except OSError:
                continue
        ctx.add_text("dmi.txt", "\n".join(dmi) + "\n", "/sys/class/dmi/id")
        ctx.add_command("uname.txt", ["uname", "-a"])
        ctx.add_command("lscpu.txt", ["lscpu"])
        ctx.add_command("lspci.txt", ["lspci", "-nn"])
        ctx.add_command("hostnamectl.txt", ["hostnamectl", "status"], timeout=5)
