"""What the Docker and Podman plugins share: the API socket, the CLI fallback and the
conversion of an inspected container into an :class:`Instance`."""

from __future__ import annotations

import os

from collectors.errors import StateError
from collectors.state.base import Context
from collectors.state.formats import oci
from collectors.state.model import Disk, Instance, Resources
from collectors.state.unixhttp import UnixClient


def socket_from(url: str | None) -> str | None:
    """The path of a ``unix://`` daemon URL (``DOCKER_HOST``, ``CONTAINER_HOST``)."""
    if url and url.startswith("unix://"):
        return url[len("unix://"):] or None
    return None


def to_instance(ctx: Context, tech: str, c: oci.Container, config: str | None,
                extra: dict[str, object]) -> Instance:
    """An inspected container as an instance; usage from its cgroup while it runs."""
    running = c.state in ("running", "paused")
    res = Resources(c.cpu_limit, None, c.memory_limit, None, "container config")
    if running and c.pid:
        res = ctx.resources_of(c.pid).merged(res)
    disks: tuple[Disk, ...] = ()
    if c.upper_dir:
        usage, complete = ctx.fs.tree_usage(c.upper_dir)
        disks = (Disk(c.upper_dir, usage, None, "overlay upper" if complete else "overlay upper (partial)"),)
    autostart = None if c.restart_policy is None else c.restart_policy not in ("", "no")
    info = {"labels": dict(c.labels), "restart_policy": c.restart_policy, "exit_code": c.exit_code,
            "oom_killed": c.oom_killed, "rootfs": c.merged_dir, **extra}
    return Instance(tech, c.id, c.name, None, c.state, c.native_state, c.pid if running else None,
                    c.started_at, c.image, res, disks, c.ips, autostart, config, info)


def from_api(ctx: Context, sock: str, list_path: str, inspect_path: str, what: str) -> list[oci.Container]:
    """List then inspect every container through an API socket."""
    with UnixClient(sock, ctx.options.timeout) as client:
        listing = client.get_json(list_path)
        if not isinstance(listing, list):
            raise StateError(f"{sock}: GET {list_path}: expected a JSON array")
        return [oci.parse_inspect(client.get_json(inspect_path.format(id=cid)), what)
                for cid in oci.ps_ids(listing, what)]


def from_cli(ctx: Context, tool: str, ps_argv: list[str]) -> list[oci.Container]:
    """``TOOL ps -a --format json`` then one ``TOOL inspect ID...``."""
    res = ctx.run([tool, *ps_argv])
    if not res.ok:
        raise StateError(res.failure or f"{tool} ps failed")
    ids = oci.ps_ids(oci.loads_lines(res.stdout, f"{tool} ps"), f"{tool} ps")
    if not ids:
        return []
    res = ctx.run([tool, "inspect", "--type", "container", *ids])
    if not res.ok and not res.stdout:
        raise StateError(res.failure or f"{tool} inspect failed")
    return oci.parse_inspect_list(res.stdout, f"{tool} inspect")


def live_socket(ctx: Context, configured: str | None, env_var: str,
                defaults: tuple[str, ...]) -> str | None:
    """The API socket to use: the configured one, the environment's, or the first default
    that is a socket (``None``: none here)."""
    for candidate in (socket_from(configured), socket_from(os.environ.get(env_var))):
        if candidate:
            return candidate
    return next((s for s in defaults if ctx.has_socket(s)), None)
