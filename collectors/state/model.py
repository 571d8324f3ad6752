"""The records ``crashkit state`` reports (docs/state.md names every JSON key).

One :class:`Instance` per container or VM, one :class:`TechResult` per technology. Text from
tools and files can hold any bytes: :func:`text` decodes it so that the JSON stays valid UTF-8
(undecodable bytes become ``\\xNN`` escapes, not lone surrogates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Every technology ``crashkit state`` reports on, in output order.
TECHS = ("openvz", "lxc", "docker", "podman", "libvirt", "nspawn", "qemu")
#: The normalised states (the tool's own string stays beside it as ``native_state``).
STATES = ("running", "stopped", "paused", "suspended", "mounted", "crashed", "unknown")
STATUSES = ("present", "absent", "error")


def text(value: bytes | str | None) -> str | None:
    """Tool/file text as a str that JSON-encodes losslessly enough and always validly."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Disk:
    """A disk image or private area: host path, bytes used on the host, size (if known)."""

    path: str
    usage: int | None = None
    size: int | None = None
    format: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": text(self.path), "usage": self.usage, "size": self.size,
                "format": text(self.format)}


@dataclass(frozen=True)
class Resources:
    """CPU and memory limits and current usage.

    ``cpu_limit`` is in CPUs (a quota of 50 ms per 100 ms is 0.5), ``cpu_usage`` CPU
    seconds consumed, memory in bytes; ``None`` where unlimited or unknown. ``source`` says
    where the numbers come from (``cgroup v1``, ``cgroup v2``, ``virsh``, ``vzlist``, ...);
    ``errors`` maps a file that could not be read to the reason.
    """

    cpu_limit: float | None = None
    cpu_usage: float | None = None
    memory_limit: int | None = None
    memory_usage: int | None = None
    source: str | None = None
    cgroup: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)

    def merged(self, other: Resources) -> Resources:
        """Fields of *self*, with the gaps filled from *other*."""
        return Resources(
            self.cpu_limit if self.cpu_limit is not None else other.cpu_limit,
            self.cpu_usage if self.cpu_usage is not None else other.cpu_usage,
            self.memory_limit if self.memory_limit is not None else other.memory_limit,
            self.memory_usage if self.memory_usage is not None else other.memory_usage,
            self.source or other.source, self.cgroup or other.cgroup,
            {**other.errors, **self.errors})


@dataclass(frozen=True)
class Instance:
    """One container or VM (docs/state.md, "Instance")."""

    tech: str
    id: str
    name: str | None = None
    uuid: str | None = None
    state: str = "unknown"
    native_state: str | None = None
    init_pid: int | None = None
    started_at: str | None = None      # ISO 8601, UTC
    os: str | None = None              # guest OS, OS template or image
    resources: Resources = field(default_factory=Resources)
    disks: tuple[Disk, ...] = ()
    ips: tuple[str, ...] = ()
    autostart: bool | None = None
    config: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        r = self.resources
        return {
            "tech": self.tech, "id": text(self.id), "name": text(self.name),
            "uuid": text(self.uuid), "state": self.state if self.state in STATES else "unknown",
            "native_state": text(self.native_state), "init_pid": self.init_pid,
            "started_at": self.started_at, "os": text(self.os),
            "cpu": {"limit": r.cpu_limit, "usage_seconds": r.cpu_usage},
            "memory": {"limit": r.memory_limit, "usage": r.memory_usage},
            "resources_from": r.source,
            "cgroup": text(r.cgroup),
            "read_errors": {text(k): text(v) for k, v in r.errors.items()},
            "disks": [d.to_json() for d in self.disks],
            "ips": [text(ip) for ip in self.ips],
            "autostart": self.autostart,
            "config": text(self.config),
            "extra": json_safe(self.extra),
        }


@dataclass(frozen=True)
class TechResult:
    """What one technology's plugin found: ``status`` is ``present`` (it ran and listed what
    there is, possibly nothing), ``absent`` (not installed/not running here) or ``error``
    (with the reason)."""

    status: str
    instances: tuple[Instance, ...] = ()
    error: str | None = None
    duration: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "instances": [i.to_json() for i in self.instances],
                "error": text(self.error)}


def json_safe(value: Any) -> Any:
    """*value* with every str made valid UTF-8 and every key a str (for ``extra``)."""
    if isinstance(value, Mapping):
        return {text(str(k) if not isinstance(k, (str, bytes)) else k): json_safe(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, bytes)):
        return text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return text(str(value))
