"""OS release and the versions of the packages that matter for crashes."""

from __future__ import annotations

import platform

from collectors.diagnose.base import MiB, Section, SectionContext

PACKAGES = ("linux-image-amd64", "systemd", "systemd-coredump", "libc6", "glibc", "gdb", "elfutils",
            "abrt", "apport", "kdump-tools", "kexec-tools", "makedumpfile", "crash", "libvirt-daemon",
            "libvirt-clients", "qemu-system-x86", "qemu-kvm", "podman", "docker-ce", "docker.io",
            "containerd", "lxc", "systemd-container", "vzctl", "prlctl", "chrony", "ntp",
            "python3", "zstd", "util-linux")


class SystemSection(Section):
    name = "system"
    title = "OS release and package versions"
    time_limit = 15.0
    budget = 4 * MiB

    def collect(self, ctx: SectionContext) -> None:
        for f in ("/etc/os-release", "/etc/debian_version", "/etc/redhat-release", "/etc/system-release",
                  "/etc/virtuozzo-release"):
            ctx.add_file(f.rsplit("/", 1)[1], f)
        res = ctx.add_command("dpkg.txt", ["dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n",
                                           *PACKAGES])
        if res.absent:
            ctx.add_command("rpm.txt", ["rpm", "-q", *PACKAGES])
        from importlib import metadata

        try:
            version = metadata.version("crashkit")
        except metadata.PackageNotFoundError:
            version = "unknown"
        ctx.add_text("crashkit.txt", f"crashkit {version}\npython {platform.python_version()}\n", "crashkit")
