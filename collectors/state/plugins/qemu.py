"""QEMU processes that no manager owns, found in ``/proc`` by their command line (``-name``,
``-uuid``, ``-m``, ``-smp``, drives). Emulators in a libvirt machine scope, or started by
libvirt (``-name guest=...``) or by a libvirt daemon, are the libvirt plugin's."""

from __future__ import annotations

import os
import re

from collectors.state.base import Context, StatePlugin
from collectors.state.model import Disk, Instance, Resources
from collectors.state.procs import Proc
from collectors.state.signals import is_qemu, parse_cgroup, qemu_args, qemu_identity, qemu_opt_fields

MANAGERS = ("libvirtd", "virtqemud", "prl_disp_service", "prl_vm_app")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([KMGT]?)[Bb]?$")
_MUL = {"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def memory_bytes(values: list[str]) -> int | None:
    """``-m 512`` / ``-m size=2G,slots=2`` as bytes (a bare number is MiB, qemu-options(7))."""
    if not values:
        return None
    fields = qemu_opt_fields(values[-1])
    size = next((f[5:] for f in fields if f.startswith("size=")), fields[0])
    m = _SIZE.match(size.upper())
    return int(float(m.group(1)) * _MUL[m.group(2)]) if m else None


def smp_cpus(values: list[str]) -> float | None:
    """``-smp 4`` / ``-smp cpus=2,sockets=1`` as a CPU count."""
    if not values:
        return None
    fields = qemu_opt_fields(values[-1])
    count = next((f[5:] for f in fields if f.startswith("cpus=")), fields[0])
    return float(count) if count.isdigit() else None


def drive_files(opts: dict[str, list[str]]) -> list[str]:
    """Image files of ``-drive file=...``, ``-blockdev ...filename=...`` and ``-hda`` etc."""
    files = []
    for value in opts.get("drive", []) + opts.get("blockdev", []):
        for f in qemu_opt_fields(value):
            key, eq, val = f.partition("=")
            if eq and key in ("file", "filename") and val:
                files.append(val)
    for key in ("hda", "hdb", "hdc", "hdd", "cdrom"):
        files += [v for v in opts.get(key, []) if v]
    return files


class Qemu(StatePlugin):
    """QEMU system emulators running without a manager."""

    name = "qemu"
    description = "qemu-system-* processes not owned by libvirt (from /proc)"

    def available(self, ctx: Context) -> bool:
        return bool(self._emulators(ctx)) or (ctx.live and any(
            ctx.has_command(t) for t in ("qemu-system-x86_64", "qemu-system-aarch64", "qemu-kvm")))

    def _emulators(self, ctx: Context) -> list[Proc]:
        return [p for p in ctx.procs.all() if is_qemu(list(p.argv), p.exe)]

    def _managed(self, ctx: Context, proc: Proc) -> bool:
        match = parse_cgroup(proc.cgroup)
        if match is not None and match.tech == "libvirt":
            return True
        if qemu_identity(list(proc.argv)).libvirt:
            return True
        parent = ctx.procs.by_pid(proc.ppid) if proc.ppid else None
        return parent is not None and os.path.basename((parent.exe or "").split(" (")[0]) in MANAGERS

    def collect(self, ctx: Context) -> list[Instance]:
        out = []
        for proc in self._emulators(ctx):
            if self._managed(ctx, proc):
                continue
            argv = list(proc.argv)
            ident, opts = qemu_identity(argv), qemu_args(argv)
            disks = []
            for path in drive_files(opts):
                usage = ctx.fs.file_usage(path) if path.startswith("/") else None
                disks.append(Disk(path, usage[0] if usage else None, usage[1] if usage else None))
            res = Resources(smp_cpus(opts.get("smp", [])) or 1.0, None, memory_bytes(opts.get("m", [])),
                            None, "qemu command line").merged(ctx.resources_of(proc.pid))
            vmid = ident.name or ident.uuid or str(proc.pid)
            machine = opts.get("machine", opts.get("M", [None]))[-1]
            out.append(Instance(
                "qemu", vmid, ident.name, ident.uuid, "running", "process", init_pid=proc.pid,
                started_at=ctx.procs.started_at(proc), resources=res, disks=tuple(disks),
                extra={"emulator": proc.exe or argv[0] if argv else None, "machine": machine,
                       "cpu_stopped_at_start": "S" in opts, "pid": proc.pid}))
        return out
