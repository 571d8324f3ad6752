"""libvirt domains: on the live host the libvirt Python binding when it is installed
(collectors/state/libvirtapi.py), else ``virsh`` (one batch for all domains: ``dominfo``,
``domstate --reason``, ``dumpxml``), both giving the same instances; the domain XML files
under the root otherwise (``/etc/libvirt/qemu/*.xml`` and the ``/run/libvirt/qemu/*.xml``
status of running ones)."""

from __future__ import annotations

import os
import secrets

from collectors.errors import StateError
from collectors.state import libvirtapi
from collectors.state.base import DEFAULT_LIBVIRT_URI, Context, NotPresent, StatePlugin
from collectors.state.formats import libvirt as fmt
from collectors.state.model import Disk, Instance, Resources

#: Daemon sockets of qemu:///system (monolithic libvirtd, modular virtqemud).
SYSTEM_SOCKETS = ("/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock",
                  "/run/libvirt/libvirt-sock-ro", "/run/libvirt/virtqemud-sock-ro")
CONFIG_DIR = "/etc/libvirt/qemu"
STATUS_DIR = "/run/libvirt/qemu"


def _disks(ctx: Context, dom: fmt.DomainXml) -> tuple[Disk, ...]:
    out = []
    for d in dom.disks:
        usage = ctx.fs.file_usage(d.source) if d.source.startswith("/") else None
        out.append(Disk(d.source, usage[0] if usage else None, usage[1] if usage else None, d.format))
    return tuple(out)


class Libvirt(StatePlugin):
    """libvirt domains (QEMU/KVM and whatever driver the URI names)."""

    name = "libvirt"
    description = ("libvirt domains via the libvirt Python binding or virsh, or the domain XML "
                   "files under the root")
    commands = ("virsh",)
    files = (f"{CONFIG_DIR}/*.xml", f"{STATUS_DIR}/*.xml")
    #: Use the binding where it is installed (the tests turn it off to test the virsh path).
    use_binding = True

    def _binding(self, ctx: Context) -> bool:
        return self.use_binding and ctx.live and libvirtapi.binding() is not None

    def available(self, ctx: Context) -> bool:
        return super().available(ctx) or self._binding(ctx)

    def collect(self, ctx: Context) -> list[Instance]:
        binding = self._binding(ctx)
        if binding or (ctx.live and ctx.has_command("virsh")):
            uri = ctx.options.libvirt_uri
            if uri == DEFAULT_LIBVIRT_URI and not any(ctx.has_socket(s) for s in SYSTEM_SOCKETS):
                if not ctx.fs.glob(f"{CONFIG_DIR}/*.xml"):
                    raise NotPresent()  # a client with no daemon and no domains
                return self._from_files(ctx)
            return self._from_binding(ctx, uri) if binding else self._from_virsh(ctx, uri)
        return self._from_files(ctx)

    def _from_binding(self, ctx: Context, uri: str) -> list[Instance]:
        return [self._instance(ctx, fmt.parse_domain_xml(d.xml), d.info, d.native_state, d.reason,
                               uri, "libvirt API")
                for d in libvirtapi.read_domains(uri, ctx.options.timeout)]

    def _virsh(self, ctx: Context, uri: str, command: str) -> str:
        res = ctx.run(["virsh", "-c", uri, command])
        if not res.ok:
            raise StateError(res.failure or "virsh failed")
        return res.stdout.decode("utf-8", "surrogateescape")

    def _from_virsh(self, ctx: Context, uri: str) -> list[Instance]:
        uuids = fmt.parse_uuid_list(self._virsh(ctx, uri, "list --all --uuid"))
        if not uuids:
            return []
        mark = "ck" + secrets.token_hex(8)
        batch = "; ".join(f"echo {mark} info {u}; dominfo {u}; echo {mark} state {u}; "
                          f"domstate --reason {u}; echo {mark} xml {u}; dumpxml {u}" for u in uuids)
        sections = fmt.split_batch(self._virsh(ctx, uri, batch), mark)
        out = []
        for u in uuids:
            xml = sections.get(("xml", u), "").strip()
            if not xml:
                continue  # undefined between the two calls
            dom = fmt.parse_domain_xml(xml)
            info = fmt.parse_dominfo(sections.get(("info", u), ""))
            native, reason = fmt.parse_domstate(sections.get(("state", u), ""))
            out.append(self._instance(ctx, dom, info, native, reason, uri))
        return out

    def _instance(self, ctx: Context, dom: fmt.DomainXml, info: dict[str, str], native: str,
                  reason: str | None, uri: str, source: str = "virsh") -> Instance:
        res = Resources(float(dom.vcpus) if dom.vcpus else None, fmt.cpu_seconds(info.get("CPU time")),
                        fmt.kib(info.get("Max memory")) or dom.memory,
                        fmt.kib(info.get("Used memory")) or dom.current_memory, source)
        extra = {"uri": uri, "domain_id": info.get("Id"), "reason": reason,
                 "persistent": info.get("Persistent"), "os_type": info.get("OS Type"),
                 "security_model": info.get("Security model"), "macs": list(dom.macs)}
        return Instance("libvirt", dom.name, dom.name, dom.uuid, fmt.STATE_MAP.get(native, "unknown"),
                        native, os=dom.os_type, resources=res, disks=_disks(ctx, dom),
                        autostart=info.get("Autostart") == "enable" if "Autostart" in info else None,
                        extra=extra)

    def _from_files(self, ctx: Context) -> list[Instance]:
        found: dict[str, Instance] = {}
        for path in ctx.fs.glob(f"{STATUS_DIR}/*.xml") + ctx.fs.glob(f"{CONFIG_DIR}/*.xml"):
            raw = ctx.fs.read_opt(path)
            if raw is None:
                continue
            try:
                dom = fmt.parse_domain_xml(raw)
            except StateError as exc:
                raise StateError(f"{path}: {exc}") from exc
            if dom.name in found:
                continue  # the status of a running domain came first
            running = path.startswith(STATUS_DIR)
            native = dom.status_state or ("running" if running else "shutoff")
            autostart = ctx.fs.exists(f"{CONFIG_DIR}/autostart/{os.path.basename(path)}")
            res = Resources(float(dom.vcpus) if dom.vcpus else None, None, dom.memory,
                            None, "domain XML").merged(ctx.resources_of(dom.pid) if running else Resources())
            found[dom.name] = Instance(
                "libvirt", dom.name, dom.name, dom.uuid, fmt.STATE_MAP.get(native, "unknown"), native,
                init_pid=dom.pid, os=dom.os_type, resources=res, disks=_disks(ctx, dom),
                autostart=autostart, config=path if not running else
                f"{CONFIG_DIR}/{os.path.basename(path)}",
                extra={"reason": dom.status_reason, "macs": list(dom.macs)})
        return list(found.values())
