"""Podman containers: the libpod API socket (``$CONTAINER_HOST`` or
``/run/podman/podman.sock``) when the service runs, else ``podman ps -a``/``inspect``, else
(``--root``) containers/storage's ``containers.json`` (names and images; no run state)."""

from __future__ import annotations

from collectors.state.base import Context, StatePlugin
from collectors.state.formats import oci
from collectors.state.model import Instance
from collectors.state.signals import parse_cgroup
from collectors.state.plugins.ociruntime import from_api, from_cli, live_socket, to_instance

SOCKETS = ("/run/podman/podman.sock",)
STORAGE = "/var/lib/containers/storage/overlay-containers"


class Podman(StatePlugin):
    """Podman (libpod) containers of root."""

    name = "podman"
    description = "Podman containers via the libpod API, podman CLI or containers/storage"
    commands = ("podman",)
    sockets = SOCKETS
    files = (f"{STORAGE}/containers.json",)

    def collect(self, ctx: Context) -> list[Instance]:
        if ctx.live:
            sock = live_socket(ctx, ctx.options.podman_host, "CONTAINER_HOST", SOCKETS)
            if sock:
                found = from_api(ctx, sock, "/v4.0.0/libpod/containers/json?all=true",
                                 "/v4.0.0/libpod/containers/{id}/json", "libpod API")
                return [self._instance(ctx, c, {"source": "api", "socket": sock}) for c in found]
            if ctx.has_command("podman"):
                found = from_cli(ctx, "podman", ["ps", "-a", "--format", "json"])
                return [self._instance(ctx, c, {"source": "cli"}) for c in found]
        return self._from_storage(ctx)

    def _instance(self, ctx: Context, c: oci.Container, extra: dict[str, object]) -> Instance:
        config = c.config_path or f"{STORAGE}/{c.id}/userdata/config.json"
        return to_instance(ctx, "podman", c, config, extra)

    def _from_storage(self, ctx: Context) -> list[Instance]:
        raw = ctx.fs.read_opt(self.files[0], 64 << 20)
        if raw is None:
            return []
        # a running container's processes sit in its libpod-<id> cgroup
        inits: dict[str, int] = {}
        for proc in ctx.procs.all():
            match = parse_cgroup(proc.cgroup)
            if match is not None and match.tech == "podman":
                inits[match.id] = min(proc.pid, inits.get(match.id, proc.pid))
        out = []
        for s in oci.parse_storage_containers(raw):
            pid = inits.get(s.id)
            out.append(Instance(
                "podman", s.id, s.names[0] if s.names else None,
                state="running" if pid else "stopped", native_state="cgroup" if pid else "no cgroup",
                init_pid=pid, os=s.image, resources=ctx.resources_of(pid),
                config=f"{STORAGE}/{s.id}/userdata/config.json",
                extra={"names": list(s.names), "created": s.created, "source": "storage"}))
        return out
