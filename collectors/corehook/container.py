"""Is the crashed process in a container or a chroot? (formats/libreport.md §6.1)

Pure parts, tested with literal text: :func:`parse_cgroup_container` recognises the cgroup
paths of docker, podman/libpod, lxc, systemd-nspawn and OpenVZ/Virtuozzo;
:func:`find_container_init` walks the parent chain the way libreport's
``get_pid_of_container`` does (up to the topmost ancestor that still has the crashed
process's namespace set). :func:`detect` is the thin edge that reads ``/proc``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from collectors.corehook import procsnap

_HEX = frozenset("0123456789abcdef")
# Namespaces whose difference from PID 1 means "containerised" (a new user or net
# namespace alone is a sandbox, e.g. a browser renderer, not a container).
CONTAINER_NAMESPACES = ("pid", "mnt")
MAX_PARENT_WALK = 64


@dataclass(frozen=True)
class ContainerInfo:
    """What the hook records about containers and chroots."""

    container: str | None = None        # docker | podman | lxc | systemd-nspawn | openvz | unknown
    container_id: str | None = None
    container_cmdline: bytes | None = None
    container_pid: int | None = None
    rootdir: str | None = None          # chroot directory (not saved for containers)


def _is_hex_id(text: str) -> bool:
    return len(text) >= 12 and set(text) <= _HEX


def _is_uuid(text: str) -> bool:
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(set(p.lower()) <= _HEX for p in parts)


def _unescape_unit(name: str) -> str:
    """systemd unit name escaping: ``\\x2d`` → ``-``."""
    if "\\x" not in name:
        return name
    out, i = [], 0
    while i < len(name):
        if name.startswith("\\x", i) and len(name) >= i + 4:
            try:
                out.append(chr(int(name[i + 2:i + 4], 16)))
                i += 4
                continue
            except ValueError:
                pass
        out.append(name[i])
        i += 1
    return "".join(out)


def classify_cgroup_path(path: str) -> tuple[str, str] | None:
    """``(container kind, id)`` for one cgroup path, or ``None``."""
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        if part.endswith(".scope"):
            unit = part[: -len(".scope")]
            for prefix, kind in (("docker-", "docker"), ("libpod-", "podman"),
                                 ("crio-", "cri-o"), ("cri-containerd-", "containerd")):
                if unit.startswith(prefix) and _is_hex_id(unit[len(prefix):]):
                    kind = {"cri-o": "unknown", "containerd": "unknown"}.get(kind, kind)
                    return kind, unit[len(prefix):]
            if unit.startswith("machine-"):
                name = _unescape_unit(unit[len("machine-"):])
                if name.startswith("qemu-") or name.startswith("lxc-"):
                    # libvirt guests (qemu-N-name: the emulator runs on the host) or libvirt-lxc
                    if name.startswith("lxc-"):
                        return "lxc", name.split("-", 2)[-1]
                    return None
                return "systemd-nspawn", name
        if part == "docker" and i + 1 < len(parts) and _is_hex_id(parts[i + 1]):
            return "docker", parts[i + 1]
        if part.startswith("libpod-") and _is_hex_id(part[len("libpod-"):]):
            return "podman", part[len("libpod-"):]
        if part == "lxc" and i + 1 < len(parts):
            return "lxc", parts[i + 1]
        if part.startswith("lxc.payload."):
            return "lxc", part[len("lxc.payload."):]
        if part == "lxc.payload" and i + 1 < len(parts):
            return "lxc", parts[i + 1]
        if part == "machine.slice" and i + 1 < len(parts):
            nxt = parts[i + 1]
            if nxt.isdigit() or _is_uuid(nxt):
                return "openvz", nxt  # Virtuozzo 7: /machine.slice/<CTID or UUID>
    if parts and (parts[0].isdigit() or _is_uuid(parts[0])) and parts[0] != "0":
        return "openvz", parts[0]  # OpenVZ 6 / legacy: /<CTID>
    return None


def parse_cgroup_container(text: str) -> tuple[str, str] | None:
    """First container found in ``/proc/PID/cgroup`` text (v1 ``N:ctrl:/path`` or v2 ``0::/path``)."""
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        found = classify_cgroup_path(fields[2])
        if found:
            return found
    return None


def differs(own: dict[str, str | None], ref: dict[str, str | None],
            names: tuple[str, ...] = CONTAINER_NAMESPACES) -> bool:
    """True when any of *names* is known in both sets and different."""
    return any(own.get(n) is not None and ref.get(n) is not None and own[n] != ref[n]
               for n in names)


def find_container_init(pid: int, ppid_of: Callable[[int], int | None],
                        ns_of: Callable[[int], dict[str, str | None]]) -> int:
    """The topmost ancestor of *pid* with *pid*'s namespace set (libreport
    ``get_pid_of_container``): walk up while the parent is not PID 1 and has the same
    namespaces."""
    mine = ns_of(pid)
    current = pid
    for _ in range(MAX_PARENT_WALK):
        parent = ppid_of(current)
        if parent is None or parent <= 1:
            break
        theirs = ns_of(parent)
        if any(mine.get(n) != theirs.get(n) for n in procsnap.NAMESPACES):
            break
        current = parent
    return current


# ------------------------------------------------------------------ I/O edge

def _ppid(pid: int, proc: str) -> int | None:
    try:
        status = procsnap.parse_status(procsnap.read_bounded(f"{proc}/{pid}/status", 64 << 10))
    except OSError:
        return None
    try:
        return int(status.get("PPid", ""))
    except ValueError:
        return None


def _ns(pid: int, proc: str) -> dict[str, str | None]:
    try:
        fd = os.open(f"{proc}/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        return procsnap.read_namespaces(fd)[0]
    finally:
        os.close(fd)


def detect(snap: procsnap.ProcSnapshot, init_ns: dict[str, str | None],
           proc: str = "/proc") -> ContainerInfo:
    """Container/chroot facts for the snapshotted process."""
    cgroup = (snap.get("cgroup") or b"").decode("utf-8", "replace")
    found = parse_cgroup_container(cgroup)
    in_ns = differs(snap.namespaces, init_ns)
    rootdir = None
    if snap.root and snap.root != "/" and not in_ns:
        rootdir = snap.root
    if not found and not in_ns:
        return ContainerInfo(rootdir=rootdir)
    kind, cid = found if found else ("unknown", None)
    cpid = find_container_init(snap.pid, lambda p: _ppid(p, proc), lambda p: _ns(p, proc)) \
        if not snap.gone else None
    cmdline = None
    if cpid is not None:
        if cpid == snap.pid:
            raw = snap.get("cmdline")
        else:
            try:
                raw = procsnap.read_bounded(f"{proc}/{cpid}/cmdline", procsnap.LIMITS["cmdline"])
            except OSError:
                raw = None
        if raw:
            cmdline = procsnap.format_cmdline_element(raw)
    return ContainerInfo(container=kind, container_id=cid, container_cmdline=cmdline,
                         container_pid=cpid, rootdir=rootdir)
