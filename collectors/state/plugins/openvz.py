"""OpenVZ / Virtuozzo containers (and Virtuozzo VMs): ``prlctl list -a -i -j`` (Virtuozzo 7),
else ``vzlist -a -j`` (OpenVZ), else the files: ``/etc/vz/conf/*.conf``, ``/proc/vz/veinfo``;
always ``/proc/user_beancounters`` (a non-zero ``failcnt`` is a finding naming the resource)
and the ploop ``DiskDescriptor.xml`` of each private area."""

from __future__ import annotations

import os
from typing import Any

from collectors.errors import StateError
from collectors.state.base import Context, StatePlugin
from collectors.state.formats import openvz as fmt
from collectors.state.model import Disk, Instance, Resources
from collectors.state.signals import is_uuid

CONF_DIR = "/etc/vz/conf"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _num(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pages(value: Any) -> int | None:
    """A beancounter page count as bytes (the LONG_MAX "unlimited" is ``None``)."""
    n = _num(value)
    return n * fmt.PAGE if n is not None and n < (1 << 50) else None


class OpenVZ(StatePlugin):
    """OpenVZ / Virtuozzo."""

    name = "openvz"
    description = "OpenVZ/Virtuozzo via prlctl, vzlist, /proc/vz and /etc/vz/conf"
    commands = ("prlctl", "vzlist")
    files = ("/proc/vz/veinfo", f"{CONF_DIR}/*.conf", "/proc/user_beancounters")

    def collect(self, ctx: Context) -> list[Instance]:
        text = ctx.fs.text("/proc/user_beancounters", 16 << 20)
        counters = fmt.parse_beancounters(text) if text else {}
        if ctx.live and ctx.has_command("prlctl"):
            items = fmt.parse_prlctl(self._run(ctx, ["prlctl", "list", "-a", "-i", "-j"]))
            return [self._from_prlctl(ctx, item, counters) for item in items]
        if ctx.live and ctx.has_command("vzlist"):
            items = fmt.parse_vzlist(self._run(ctx, ["vzlist", "-a", "-j"]))
            return [self._from_vzlist(ctx, item, counters) for item in items]
        return self._from_files(ctx, counters)

    def _run(self, ctx: Context, argv: list[str]) -> bytes:
        res = ctx.run(argv)
        if not res.ok:
            raise StateError(res.failure or f"{argv[0]} failed")
        return res.stdout

    # ---------------------------------------------------------------- common parts

    def _ploop(self, ctx: Context, private: str) -> Disk | None:
        raw = ctx.fs.read_opt(f"{private}/root.hdd/DiskDescriptor.xml", 1 << 20)
        if raw is None:
            return None
        desc = fmt.parse_disk_descriptor(raw)
        used = [ctx.fs.file_usage(f"{private}/root.hdd/{img}") for img in desc.images]
        usage = sum(u[0] for u in used if u) if any(used) else None
        return Disk(f"{private}/root.hdd", usage, desc.size, "ploop")

    def _disk(self, ctx: Context, private: str | None) -> tuple[Disk, ...]:
        if not private:
            return ()
        ploop = self._ploop(ctx, private)
        if ploop:
            return (ploop,)
        usage, complete = ctx.fs.tree_usage(private)
        return (Disk(private, usage, None, "simfs" if complete else "simfs (partial)"),) \
            if usage is not None else ()

    def _extra(self, ctid: str, counters: dict[str, Any], **more: Any) -> dict[str, Any]:
        ubc = counters.get(ctid, {})
        return {**more, "beancounters": ubc, "findings": fmt.findings(ubc)}

    # ---------------------------------------------------------------- sources

    def _from_vzlist(self, ctx: Context, item: dict[str, Any], counters: dict[str, Any]) -> Instance:
        ctid = str(item.get("ctid"))
        ubc = {k: v for k, v in item.items() if isinstance(v, dict) and "failcnt" in v}
        counters = {ctid: ubc or counters.get(ctid, {})}
        native = _str(item.get("status")) or "unknown"
        phys = _obj(item.get("physpages"))
        cpulimit, cpus = _num(item.get("cpulimit")), _num(item.get("cpus"))
        res = Resources(cpulimit / 100 if cpulimit else (float(cpus) if cpus else None), None,
                        _pages(phys.get("limit")),
                        _pages(phys.get("held")) if native == "running" else None, "vzlist")
        ip = item.get("ip")
        ips = ip if isinstance(ip, list) else []
        uuid = _str(item.get("uuid")) or (ctid if is_uuid(ctid) else None)
        return Instance(
            "openvz", ctid, _str(item.get("name")) or _str(item.get("hostname")), uuid,
            fmt.STATE_MAP.get(native, "unknown"), native, None, None, _str(item.get("ostemplate")),
            res, self._disk(ctx, _str(item.get("private"))), tuple(str(i) for i in ips),
            item.get("onboot") if isinstance(item.get("onboot"), bool) else None,
            f"{CONF_DIR}/{ctid}.conf",
            self._extra(ctid, counters, hostname=item.get("hostname"), numproc=item.get("numproc"),
                        uptime=item.get("uptime"), laverage=item.get("laverage"),
                        layout=item.get("layout"), root=item.get("root"), type="CT",
                        diskspace=item.get("diskspace"), source="vzlist"))

    def _from_prlctl(self, ctx: Context, item: dict[str, Any], counters: dict[str, Any]) -> Instance:
        uuid = (_str(item.get("ID")) or "").strip("{}").lower() or None
        kind = _str(item.get("Type")) or "CT"
        ctid = _str(item.get("EnvID")) or uuid or "?"
        hw = _obj(item.get("Hardware"))
        cpu, mem = _obj(hw.get("cpu")), _obj(hw.get("memory"))
        disks, ips = [], []
        for dev, spec in sorted(hw.items()):
            if not isinstance(spec, dict):
                continue
            if dev.startswith("hdd") and _str(spec.get("image")):
                image = spec["image"]
                usage = ctx.fs.tree_usage(image)[0]
                disks.append(Disk(image, usage, fmt.mib(spec.get("size")), _str(spec.get("type"))))
            if dev.startswith("net") and _str(spec.get("ips")):
                ips += [ip.split("/")[0] for ip in spec["ips"].split()]
        native = _str(item.get("State")) or "unknown"
        cpus = cpu.get("cpus")
        res = Resources(float(cpus) if isinstance(cpus, int) else None, None, fmt.mib(mem.get("size")),
                        None, "prlctl")
        home = _str(item.get("Home"))
        config = f"{CONF_DIR}/{ctid}.conf" if kind == "CT" else (f"{home}/config.pvs" if home else None)
        return Instance(
            "openvz", ctid, _str(item.get("Name")), uuid, fmt.STATE_MAP.get(native, "unknown"),
            native, None, None, _str(item.get("OS")), res, tuple(disks), tuple(ips),
            {"on": True, "auto": True, "off": False}.get(str(item.get("Autostart"))), config,
            self._extra(ctid, counters, type=kind, home=home, uptime=item.get("Uptime"),
                        description=item.get("Description"), hostname=item.get("Hostname"),
                        source="prlctl"))

    def _from_files(self, ctx: Context, counters: dict[str, Any]) -> list[Instance]:
        veinfo_text = ctx.fs.text("/proc/vz/veinfo")
        veinfo = fmt.parse_veinfo(veinfo_text) if veinfo_text else {}
        globals_ = fmt.parse_conf(ctx.fs.text("/etc/vz/vz.conf") or "")
        out = []
        ctids = [os.path.basename(p)[:-5] for p in ctx.fs.glob(f"{CONF_DIR}/*.conf")]
        for ctid in sorted(set(ctids) | set(veinfo)):
            if ctid == "0" or not (ctid.isdigit() or is_uuid(ctid)):
                continue  # 0.conf is the host's, ve-*.conf-sample are samples
            conf_text = ctx.fs.text(f"{CONF_DIR}/{ctid}.conf")
            conf = fmt.parse_conf(conf_text or "", {**globals_, "VEID": ctid, "CTID": ctid})
            numproc, ips = veinfo.get(ctid, (None, []))
            running = ctid in veinfo
            private = conf.get("VE_PRIVATE") or globals_.get("VE_PRIVATE", "").replace("$VEID", ctid) or None
            held = counters.get(ctid, {}).get("physpages", {}).get("held")
            cpulimit, cpus = conf.get("CPULIMIT", ""), conf.get("CPUS", "")
            res = Resources(int(cpulimit) / 100 if cpulimit.isdigit() and cpulimit != "0" else
                            (float(cpus) if cpus.isdigit() else None), None,
                            fmt.conf_pages(conf.get("PHYSPAGES")), held * fmt.PAGE if running and held else None,
                            "vz config")
            out.append(Instance(
                "openvz", ctid, conf.get("NAME") or conf.get("HOSTNAME"),
                ctid if is_uuid(ctid) else (conf.get("UUID") or None),
                "running" if running else "stopped", "running" if running else "stopped", None, None,
                conf.get("OSTEMPLATE"), res, self._disk(ctx, private),
                tuple(ips or conf.get("IP_ADDRESS", "").split()),
                conf.get("ONBOOT") == "yes" if conf.get("ONBOOT") else None,
                f"{CONF_DIR}/{ctid}.conf" if conf_text is not None else None,
                self._extra(ctid, counters, hostname=conf.get("HOSTNAME"), numproc=numproc,
                            layout=conf.get("VE_LAYOUT"), root=conf.get("VE_ROOT"), type="CT",
                            source="files")))
        return out
