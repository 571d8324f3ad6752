"""Docker and Podman container descriptions: the Docker Engine API's ``ContainerInspect``
(GET /containers/{id}/json, ``docker inspect``), Podman's inspect (libpod API, ``podman
inspect``: the same shape with its own extras), Docker's on-disk ``config.v2.json`` +
``hostconfig.json``, Podman's storage ``containers.json`` and ``ps --format json`` lists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from collectors.errors import StateError

#: Docker/Podman ``State.Status`` → our states (moby api/types/container/state.go; libpod
#: define/containerstate.go).
STATE_MAP = {"running": "running", "restarting": "running", "paused": "paused",
             "exited": "stopped", "created": "stopped", "configured": "stopped",
             "stopped": "stopped", "initialized": "stopped", "removing": "unknown",
             "dead": "crashed", "stopping": "running"}


@dataclass(frozen=True)
class Container:
    """What we keep of one inspected container."""

    id: str
    name: str | None
    native_state: str
    state: str
    pid: int | None
    started_at: str | None
    image: str | None
    memory_limit: int | None
    cpu_limit: float | None
    restart_policy: str | None
    ips: tuple[str, ...]
    upper_dir: str | None
    merged_dir: str | None
    labels: Mapping[str, str]
    oom_killed: bool
    exit_code: int | None
    config_path: str | None


def loads(data: bytes | str, what: str) -> Any:
    """JSON from a tool or socket; malformed is a :class:`StateError`."""
    try:
        return json.loads(data)
    except ValueError as exc:
        raise StateError(f"malformed JSON from {what}: {exc}") from exc


def loads_lines(data: bytes | str, what: str) -> list[Any]:
    """``docker ps --format json`` prints one JSON object per line; podman a JSON array."""
    text = data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        value = loads(stripped, what)
        return value if isinstance(value, list) else []
    return [loads(line, what) for line in stripped.splitlines() if line.strip()]


def iso_time(value: Any) -> str | None:
    """An RFC 3339 time (nanoseconds, any offset) as ``YYYY-MM-DDTHH:MM:SSZ``; the zero time
    (``0001-01-01T00:00:00Z``, never started) is ``None``."""
    if not isinstance(value, str) or not value or value.startswith("0001-01-01"):
        return None
    text = value.strip()
    main, _, frac = text.partition(".")
    if frac:
        tz = "".join(c for c in frac if not c.isdigit())
        text = main + tz
    text = text.replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _ips(net: dict[str, Any]) -> tuple[str, ...]:
    ips = [net.get("IPAddress"), net.get("GlobalIPv6Address")]
    for n in _dict(net.get("Networks")).values():
        n = _dict(n)
        ips += [n.get("IPAddress"), n.get("GlobalIPv6Address")]
    return tuple(dict.fromkeys(ip for ip in ips if isinstance(ip, str) and ip))


def _cpus(host: dict[str, Any]) -> float | None:
    nano = _int(host.get("NanoCpus"))
    if nano:
        return round(nano / 1e9, 3)
    quota, period = _int(host.get("CpuQuota")), _int(host.get("CpuPeriod")) or 100000
    return round(quota / period, 3) if quota and quota > 0 else None


def _status(state: dict[str, Any]) -> str:
    status = _str(state.get("Status"))
    if status:
        return status
    # config.v2.json keeps booleans only (moby container/state.go StateString)
    if state.get("Running"):
        return "paused" if state.get("Paused") else ("restarting" if state.get("Restarting") else "running")
    if state.get("Dead"):
        return "dead"
    return "exited" if _str(state.get("StartedAt")) and not str(state.get("StartedAt")).startswith("0001") \
        else "created"


def parse_inspect(obj: Any, what: str = "inspect") -> Container:
    """One ``ContainerInspect`` object (Docker or Podman)."""
    if not isinstance(obj, dict):
        raise StateError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    cid = _str(obj.get("Id")) or _str(obj.get("ID"))
    if not cid:
        raise StateError(f"{what}: container without an Id")
    state, config, host = _dict(obj.get("State")), _dict(obj.get("Config")), _dict(obj.get("HostConfig"))
    data = _dict(_dict(obj.get("GraphDriver")).get("Data"))
    status = _status(state)
    mapped = STATE_MAP.get(status, "unknown")
    oom = bool(state.get("OOMKilled"))
    if mapped == "stopped" and oom:
        mapped = "crashed"
    pid = _int(state.get("Pid"))
    name = _str(obj.get("Name"))
    labels = {str(k): str(v) for k, v in _dict(config.get("Labels")).items()}
    memory = _int(host.get("Memory"))
    return Container(
        cid, name.lstrip("/") if name else None, status, mapped, pid if pid else None,
        iso_time(state.get("StartedAt")) if mapped in ("running", "paused") else None,
        _str(obj.get("ImageName")) or _str(config.get("Image")) or _str(obj.get("Image")),
        memory if memory else None, _cpus(host),
        _str(_dict(host.get("RestartPolicy")).get("Name")), _ips(_dict(obj.get("NetworkSettings"))),
        _str(data.get("UpperDir")), _str(data.get("MergedDir")), labels, oom,
        _int(state.get("ExitCode")), _str(obj.get("OCIConfigPath")))


def parse_inspect_list(data: bytes | str, what: str) -> list[Container]:
    """``docker|podman inspect ID...`` output (a JSON array)."""
    value = loads(data, what)
    if not isinstance(value, list):
        raise StateError(f"{what}: expected a JSON array")
    return [parse_inspect(v, what) for v in value]


def ps_ids(entries: list[Any], what: str) -> list[str]:
    """Container ids of a ``ps --format json`` / ``GET /containers/json`` list."""
    ids = []
    for e in entries:
        cid = _str(_dict(e).get("Id")) or _str(_dict(e).get("ID"))
        if not cid:
            raise StateError(f"{what}: entry without an Id")
        ids.append(cid)
    return ids


@dataclass(frozen=True)
class StoredContainer:
    """One entry of containers/storage ``containers.json`` (podman's on-disk list)."""

    id: str
    names: tuple[str, ...]
    image: str | None
    created: str | None


def parse_storage_containers(data: bytes) -> list[StoredContainer]:
    """containers/storage ``overlay-containers/containers.json``."""
    value = loads(data, "containers.json")
    if not isinstance(value, list):
        raise StateError("containers.json: expected a JSON array")
    out = []
    for e in value:
        e = _dict(e)
        cid = _str(e.get("id"))
        if not cid:
            continue
        names = tuple(n for n in e.get("names") or [] if isinstance(n, str))
        out.append(StoredContainer(cid, names, _str(e.get("image")), iso_time(e.get("created"))))
    return out
