"""Docker containers: the Engine API on its unix socket (``$DOCKER_HOST`` or
``/run/docker.sock``), else ``docker ps -a``/``inspect``, else (no daemon, or ``--root``) the
daemon's files ``/var/lib/docker/containers/*/config.v2.json`` + ``hostconfig.json``."""

from __future__ import annotations

from collectors.errors import StateError
from collectors.state.base import Context, NotPresent, StatePlugin
from collectors.state.formats import oci
from collectors.state.model import Instance
from collectors.state.plugins.ociruntime import from_api, from_cli, live_socket, to_instance

SOCKETS = ("/run/docker.sock", "/var/run/docker.sock")
STATE_DIR = "/var/lib/docker/containers"


class Docker(StatePlugin):
    """Docker Engine containers."""

    name = "docker"
    description = "Docker containers via the Engine API, docker CLI or the daemon's files"
    commands = ("docker",)
    sockets = SOCKETS
    files = (f"{STATE_DIR}/*/config.v2.json",)

    def available(self, ctx: Context) -> bool:
        return super().available(ctx) or (ctx.live and live_socket(
            ctx, ctx.options.docker_host, "DOCKER_HOST", SOCKETS) is not None)

    def collect(self, ctx: Context) -> list[Instance]:
        if ctx.live:
            sock = live_socket(ctx, ctx.options.docker_host, "DOCKER_HOST", SOCKETS)
            if sock:
                found = from_api(ctx, sock, "/containers/json?all=1", "/containers/{id}/json",
                                 "Docker API")
                return [self._instance(ctx, c, {"source": "api", "socket": sock}) for c in found]
            if ctx.has_command("docker"):
                try:
                    found = from_cli(ctx, "docker", ["ps", "-a", "--no-trunc", "--format", "{{json .}}"])
                    return [self._instance(ctx, c, {"source": "cli"}) for c in found]
                except StateError as exc:
                    if "Cannot connect to the Docker daemon" not in str(exc):
                        raise
        if not ctx.fs.glob(self.files[0]):
            raise NotPresent()
        return self._from_files(ctx)

    def _instance(self, ctx: Context, c: oci.Container, extra: dict[str, object]) -> Instance:
        return to_instance(ctx, "docker", c, f"{STATE_DIR}/{c.id}/config.v2.json", extra)

    def _from_files(self, ctx: Context) -> list[Instance]:
        out = []
        for path in ctx.fs.glob(self.files[0]):
            raw = ctx.fs.read_opt(path)
            if raw is None:
                continue
            obj = oci.loads(raw, path)
            if isinstance(obj, dict):
                host = ctx.fs.read_opt(path.rsplit("/", 1)[0] + "/hostconfig.json")
                obj = {**obj, "HostConfig": oci.loads(host, "hostconfig.json") if host else {}}
            c = oci.parse_inspect(obj, path)
            out.append(to_instance(ctx, "docker", c, path, {"source": "files"}))
        return out
