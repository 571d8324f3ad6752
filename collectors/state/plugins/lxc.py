"""LXC containers: ``lxc-ls -f`` per lxcpath on the live host (state, init PID, addresses),
the containers' ``config`` files (rootfs, template, limits, autostart) everywhere; under
``--root`` the run state comes from the ``lxc.payload.NAME`` cgroups of ``/proc``."""

from __future__ import annotations

from collectors.errors import StateError
from collectors.state.base import Context, StatePlugin
from collectors.state.formats import lxc as fmt
from collectors.state.model import Disk, Instance, Resources
from collectors.state.signals import parse_cgroup


class Lxc(StatePlugin):
    """LXC system containers."""

    name = "lxc"
    description = "LXC containers via lxc-ls and their config files"
    commands = ("lxc-ls",)
    files = ("/var/lib/lxc/*/config",)

    def available(self, ctx: Context) -> bool:
        return super().available(ctx) or any(ctx.fs.glob(f"{p}/*/config") for p in ctx.options.lxc_paths)

    def _listing(self, ctx: Context, lxcpath: str) -> dict[str, dict[str, str]]:
        if not (ctx.live and ctx.has_command("lxc-ls")):
            return {}
        res = ctx.run(["lxc-ls", "-f", "-F", ",".join(fmt.FIELDS), "-P", lxcpath])
        if not res.ok:
            raise StateError(res.failure or "lxc-ls failed")
        return {row["NAME"]: row for row in fmt.parse_fancy(res.stdout.decode("utf-8", "surrogateescape"))}

    def _running_by_cgroup(self, ctx: Context) -> dict[str, int]:
        inits: dict[str, int] = {}
        for proc in ctx.procs.all():
            match = parse_cgroup(proc.cgroup)
            if match is not None and match.tech == "lxc":
                inits[match.id] = min(proc.pid, inits.get(match.id, proc.pid))
        return inits

    def collect(self, ctx: Context) -> list[Instance]:
        out = []
        by_cgroup = None if ctx.live else self._running_by_cgroup(ctx)
        for lxcpath in ctx.options.lxc_paths:
            listing = self._listing(ctx, lxcpath)
            names = set(listing) | {p.rsplit("/", 2)[-2] for p in ctx.fs.glob(f"{lxcpath}/*/config")}
            for name in sorted(names):
                row = listing.get(name, {})
                if by_cgroup is not None and not row:
                    pid = by_cgroup.get(name)
                    row = {"NAME": name, "STATE": "RUNNING" if pid else "STOPPED"}
                    if pid:
                        row["PID"] = str(pid)
                out.append(self._instance(ctx, lxcpath, name, row))
        return out

    def _instance(self, ctx: Context, lxcpath: str, name: str, row: dict[str, str]) -> Instance:
        config_path = f"{lxcpath}/{name}/config"
        text = ctx.fs.text(config_path)
        cfg = fmt.parse_config(text) if text is not None else fmt.LxcConfig({}, None)
        native = row.get("STATE", "STOPPED" if text is not None else "UNKNOWN")
        pid = int(row["PID"]) if row.get("PID", "").isdigit() else None
        res = Resources(None, None, fmt.memory_limit(cfg), None, "lxc config")
        if pid:
            res = ctx.resources_of(pid).merged(res)
        rootfs = cfg.rootfs
        disks: tuple[Disk, ...] = ()
        if rootfs and rootfs.startswith("/"):
            usage, complete = ctx.fs.tree_usage(rootfs)
            disks = (Disk(rootfs, usage, None, "dir" if complete else "dir (partial)"),)
        ips = [ip.strip() for key in ("IPV4", "IPV6") for ip in row.get(key, "").split(",") if ip.strip()]
        auto = row.get("AUTOSTART") or cfg.get("lxc.start.auto")
        return Instance("lxc", name, name, None,
                        fmt.STATE_MAP.get(native, "unknown"), native, pid, None,
                        fmt.os_from_template(cfg.template) or cfg.get("lxc.arch"), res, disks,
                        tuple(ips or cfg.ipv4), auto == "1" if auto is not None else None,
                        config_path if text is not None else None,
                        {"lxcpath": lxcpath, "hostname": cfg.get("lxc.uts.name"),
                         "groups": row.get("GROUPS"), "unprivileged": row.get("UNPRIVILEGED"),
                         "arch": cfg.get("lxc.arch"), "template": cfg.template})
