"""systemd-nspawn containers: ``machinectl list``/``list-images --output=json`` where
machined runs, the running ``systemd-nspawn`` supervisors of ``/proc`` (machines started
with ``--register=no`` never reach machined) and the images in ``/var/lib/machines``."""

from __future__ import annotations

import os
from typing import Any

from collectors.errors import StateError
from collectors.state.base import Context, StatePlugin
from collectors.state.formats.oci import loads
from collectors.state.model import Disk, Instance, Resources
from collectors.state.procs import Proc
from collectors.state.signals import nspawn_directory, nspawn_machine_name

IMAGES = "/var/lib/machines"
#: machinectl's words for "machined is not there" (not an error of the plugin).
NO_MACHINED = ("Failed to connect to bus", "System has not been booted with systemd",
               "Host is down", "No such file or directory")


def parse_machines(data: bytes | str) -> list[dict[str, Any]]:
    """``machinectl list --output=json`` (systemd's table JSON: one object per row, keys
    are the lowercased column names machine, class, service, os, version, addresses)."""
    value = loads(data, "machinectl list")
    if not isinstance(value, list):
        raise StateError("machinectl list: expected a JSON array")
    return [v for v in value if isinstance(v, dict) and isinstance(v.get("machine"), str)]


def _addresses(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value not in ("", "-"):
        return value.split()
    return []


class Nspawn(StatePlugin):
    """systemd-nspawn machines (registered or not)."""

    name = "nspawn"
    description = "systemd-nspawn containers via machinectl, /proc and /var/lib/machines"
    commands = ("machinectl", "systemd-nspawn")
    files = (f"{IMAGES}/*",)

    def available(self, ctx: Context) -> bool:
        return super().available(ctx) or bool(self._supervisors(ctx))

    def _supervisors(self, ctx: Context) -> list[tuple[str, int, int | None, str | None]]:
        """(machine, supervisor pid, init pid, directory) of running ``systemd-nspawn``."""
        def is_nspawn(proc: Proc) -> bool:
            exe = os.path.basename((proc.exe or "").split(" (")[0])
            return exe == "systemd-nspawn" or os.path.basename(proc.argv[0] if proc.argv else "") == "systemd-nspawn"

        out = []
        for proc in ctx.procs.all():
            parent = ctx.procs.by_pid(proc.ppid) if proc.ppid else None
            if not is_nspawn(proc) or (parent is not None and is_nspawn(parent)):
                continue  # (nspawn's own child, before it execs the container's init)
            argv = list(proc.argv)
            name = nspawn_machine_name(argv)
            if not name:
                continue
            kids = ctx.procs.children(proc.pid)
            out.append((name, proc.pid, min((k.pid for k in kids), default=None), nspawn_directory(argv)))
        return out

    def _machined(self, ctx: Context) -> list[dict[str, Any]] | None:
        if not (ctx.live and ctx.has_command("machinectl")):
            return None
        res = ctx.run(["machinectl", "list", "--output=json", "--no-pager"])
        if not res.ok:
            if any(w.encode() in res.stderr for w in NO_MACHINED):
                return None
            raise StateError(res.failure or "machinectl failed")
        return parse_machines(res.stdout)

    def collect(self, ctx: Context) -> list[Instance]:
        found: dict[str, Instance] = {}
        for m in self._machined(ctx) or []:
            if m.get("class") != "container":
                continue  # VMs machined knows of are libvirt's
            name = m["machine"]
            found[name] = Instance("nspawn", name, name, None, "running", "registered",
                                   os=" ".join(str(m[k]) for k in ("os", "version") if m.get(k)) or None,
                                   ips=tuple(_addresses(m.get("addresses"))),
                                   extra={"service": m.get("service"), "machined": True})
        for name, sup, init, directory in self._supervisors(ctx):
            prior = found.get(name)
            disks: tuple[Disk, ...] = ()
            if directory and directory.startswith("/"):
                usage, complete = ctx.fs.tree_usage(directory)
                disks = (Disk(directory, usage, None, "dir" if complete else "dir (partial)"),)
            init_proc = ctx.procs.by_pid(init) if init else None
            found[name] = Instance(
                "nspawn", name, name, None, "running", prior.native_state if prior else "process",
                init, ctx.procs.started_at(init_proc) if init_proc else None,
                prior.os if prior else None, ctx.resources_of(init), disks,
                prior.ips if prior else (), None, None,
                {**(dict(prior.extra) if prior else {}), "supervisor_pid": sup})
        for entry in ctx.fs.listdir(IMAGES):
            name = entry[:-4] if entry.endswith(".raw") else entry
            if name in found or entry.startswith("."):
                continue
            path = f"{IMAGES}/{entry}"
            usage, complete = ctx.fs.tree_usage(path)
            kind = "raw" if entry.endswith(".raw") else "dir"
            os_release = ctx.fs.text(f"{path}/etc/os-release", 64 << 10) if kind == "dir" else None
            pretty = next((ln.split("=", 1)[1].strip('"') for ln in (os_release or "").splitlines()
                           if ln.startswith("PRETTY_NAME=")), None)
            nspawn_conf = f"/etc/systemd/nspawn/{name}.nspawn"
            found[name] = Instance(
                "nspawn", name, name, None, "stopped", "image", os=pretty, resources=Resources(),
                disks=(Disk(path, usage, None, kind if complete else f"{kind} (partial)"),),
                config=nspawn_conf if ctx.fs.exists(nspawn_conf) else None,
                autostart=ctx.fs.exists(f"/etc/systemd/system/machines.target.wants/systemd-nspawn@{name}.service"))
        return list(found.values())
