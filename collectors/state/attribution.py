"""Which container or VM a process belongs to: the one answer the crash hook, the oops
collector, ``crashkit state --pid`` and diagnose share.

:func:`attribute_snapshot` works on the hook's ``/proc`` snapshot
(:class:`collectors.corehook.procsnap.ProcSnapshot`); :func:`attribute_pid` reads the few
files it needs of a live process. Signals, strongest first: a ``qemu-system-*`` command line
(``-name``/``-uuid``: the process is a VM's emulator), the cgroup path (every runtime's
layout, cgroup v1 and v2, :mod:`collectors.state.signals`), OpenVZ's ``envID``, pid and mount
namespaces compared with PID 1's, ``NSpid``, and the container init's ``container=`` /
``container_uuid=`` variables. :func:`resolve_name` adds names from the runtimes' own files
(not in the hook's path). Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from collectors.corehook import procsnap
from collectors.state import signals
from collectors.state.signals import argv_of, differs

#: Files of ``/proc/PID`` attribution reads for a live process, with their size caps.
LIVE_FILES = {name: procsnap.LIMITS[name] for name in ("cgroup", "status", "cmdline", "environ",
                                                       "mountinfo")}
#: Ancestors must share these to be the same container (libreport compares them all).
INIT_NAMESPACES = procsnap.NAMESPACES


@dataclass(frozen=True)
class Attribution:
    """The container or VM of one process; ``tech is None`` means the host.

    ``id`` is the runtime's id (docker/podman hex id, lxc/nspawn/libvirt name, OpenVZ CTID);
    ``init_pid`` the container's init (or the VM's emulator) as the host numbers it;
    ``ns_pid`` the process's own pid inside its pid namespace; ``cmdline`` the raw
    ``/proc/INIT/cmdline``; ``rootfs`` the container's ``/`` as a host path; ``signals``
    the evidence used.
    """

    pid: int
    tech: str | None = None
    id: str | None = None
    name: str | None = None
    uuid: str | None = None
    vm: bool = False
    init_pid: int | None = None
    ns_pid: int | None = None
    cmdline: bytes | None = None
    rootfs: str | None = None
    signals: tuple[str, ...] = ()

    @property
    def is_host(self) -> bool:
        """The process runs on the host itself (no container, not a VM's emulator)."""
        return self.tech is None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (docs/state.md, ``crashkit state --pid --json``)."""
        return {"pid": self.pid, "host": self.is_host, "tech": self.tech, "id": self.id,
                "name": self.name, "uuid": self.uuid, "vm": self.vm, "init_pid": self.init_pid,
                "ns_pid": self.ns_pid, "rootfs": self.rootfs,
                "cmdline": argv_of(self.cmdline) if self.cmdline else None,
                "signals": list(self.signals)}


# ------------------------------------------------------------------ I/O edge (live /proc)

def _read(path: str, limit: int) -> bytes | None:
    try:
        return procsnap.read_bounded(path, limit)
    except OSError:
        return None


def _ppid(pid: int, proc: str) -> int | None:
    raw = _read(f"{proc}/{pid}/status", procsnap.LIMITS["status"])
    try:
        return int(procsnap.parse_status(raw or b"").get("PPid", ""))
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


def read_live(pid: int, proc: str = "/proc") -> procsnap.ProcSnapshot:
    """The part of a ``/proc/PID`` snapshot attribution needs (never raises OSError)."""
    snap = procsnap.ProcSnapshot(pid)
    try:
        dfd = os.open(f"{proc}/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        snap.gone = True
        snap.errors["."] = exc.strerror or str(exc)
        return snap
    try:
        for attr in ("exe", "root"):
            try:
                setattr(snap, attr, os.readlink(attr, dir_fd=dfd)[:procsnap.MAX_LINK])
            except OSError as exc:
                snap.errors[attr] = exc.strerror or str(exc)
        for name, limit in LIVE_FILES.items():
            try:
                snap.files[name] = procsnap.read_bounded(name, limit, dfd)
            except OSError as exc:
                snap.errors[name] = exc.strerror or str(exc)
        snap.namespaces, errors = procsnap.read_namespaces(dfd)
        snap.errors.update(errors)
    finally:
        os.close(dfd)
    return snap


def attribute_pid(pid: int, proc: str = "/proc") -> Attribution:
    """Attribution of a live process (``gone`` processes are attributed to the host with no
    signals: there is nothing left to read)."""
    return attribute_snapshot(read_live(pid, proc), procsnap.read_init_namespaces(proc), proc)


# ------------------------------------------------------------------ the rules

def _vm(snap: procsnap.ProcSnapshot, match: signals.CgroupMatch | None,
        argv: list[str]) -> Attribution:
    """A VM's emulator: ``-name``/``-uuid`` of its command line, the libvirt machine scope."""
    ident = signals.qemu_identity(argv)
    found = ["qemu-cmdline"] + (["cgroup"] if match else [])
    managed = ident.libvirt or (match is not None and match.tech == "libvirt")
    name = ident.name or (match.id if match else None)
    vmid = name or ident.uuid or str(snap.pid)
    return Attribution(snap.pid, "libvirt" if managed else "qemu", vmid, name, ident.uuid, True,
                       snap.pid, snap.pid, snap.get("cmdline"), None, tuple(found))


def _init_env(snap: procsnap.ProcSnapshot, cpid: int | None, proc: str) -> bytes:
    if cpid is None:
        return b""
    if cpid == snap.pid:
        return snap.get("environ") or b""
    return _read(f"{proc}/{cpid}/environ", procsnap.LIMITS["environ"]) or b""


def _nspawn_supervisor(cpid: int, proc: str) -> list[str] | None:
    """Command line of the ``systemd-nspawn`` that supervises container init *cpid*."""
    parent = _ppid(cpid, proc)
    if parent is None:
        return None
    try:
        exe = os.readlink(f"{proc}/{parent}/exe")
    except OSError:
        return None
    if os.path.basename(procsnap.clean_exe(exe)) != "systemd-nspawn":
        return None
    return argv_of(_read(f"{proc}/{parent}/cmdline", procsnap.LIMITS["cmdline"]))


def _rootfs(snap: procsnap.ProcSnapshot, init_ns: dict[str, str | None], proc: str) -> str | None:
    mountinfo = snap.get("mountinfo")
    if not mountinfo or not differs(snap.namespaces, init_ns, ("mnt",)):
        return None
    # our own table: the hook runs in the initial mount namespace (the kernel starts it there)
    host = _read(f"{proc}/self/mountinfo", procsnap.LIMITS["mountinfo"])
    if not host:
        return None
    return signals.host_rootfs(mountinfo.decode("utf-8", "surrogateescape"),
                               host.decode("utf-8", "surrogateescape"))


def attribute_snapshot(snap: procsnap.ProcSnapshot, init_ns: dict[str, str | None],
                       proc: str = "/proc") -> Attribution:
    """Attribution of the snapshotted process; *init_ns* are PID 1's namespaces.

    The kind and id come from the cgroup path (or ``envID``); where it names no runtime
    (nspawn with ``--keep-unit``/``--register=no`` runs in ``<own cgroup>/payload``), the
    container init's ``container=`` variable gives the kind and the supervising nspawn's
    command line the machine name. A process in its own pid or mount namespace that no
    signal names is ``unknown``.
    """
    match = signals.parse_cgroup((snap.get("cgroup") or b"").decode("utf-8", "replace"))
    status = procsnap.parse_status(snap.get("status") or b"")
    nspid = procsnap.status_ids(status, "NSpid")
    argv = argv_of(snap.get("cmdline"))
    in_ns = differs(snap.namespaces, init_ns)
    if not in_ns and (signals.is_qemu(argv, snap.exe) or (match is not None and match.vm)):
        return _vm(snap, match, argv)
    envid = signals.openvz_envid(status)
    nested = len(nspid) > 1
    found = [name for name, hit in (("cgroup", match), ("envid", envid), ("namespaces", in_ns),
                                    ("nspid", nested)) if hit]
    if not found:
        return Attribution(snap.pid, ns_pid=nspid[-1] if nspid else None)
    tech, cid = (match.tech, match.id) if match else (("openvz", envid) if envid else ("unknown", None))
    cpid = None if snap.gone else signals.find_container_init(
        snap.pid, lambda p: _ppid(p, proc), lambda p: _ns(p, proc), INIT_NAMESPACES)
    cmdline = None
    if cpid is not None:
        cmdline = snap.get("cmdline") if cpid == snap.pid else \
            _read(f"{proc}/{cpid}/cmdline", procsnap.LIMITS["cmdline"])
    environ = _init_env(snap, cpid, proc) if not match or tech == "nspawn" else b""
    if not match and cpid is not None:
        kind = signals.kind_from_environ(environ)
        if kind:
            tech = kind
            found.append("environ")
        if tech == "nspawn":
            supervisor = _nspawn_supervisor(cpid, proc)
            cid = signals.nspawn_machine_name(supervisor) if supervisor else None
    uuid = signals.uuid_from_environ(environ) if tech == "nspawn" else None
    if tech == "openvz" and cid and signals.is_uuid(cid):
        uuid = cid.lower()
    name = cid if tech in ("lxc", "nspawn") else None
    return Attribution(snap.pid, tech, cid, name, uuid, False, cpid, nspid[-1] if nspid else None,
                       cmdline or None, _rootfs(snap, init_ns, proc), tuple(found))


# ------------------------------------------------------------------ names from runtime files

_NAME_LIMIT = 4 << 20


def _json_file(path: str) -> Any:
    import json  # not at start-up: the crash hook imports this module

    raw = _read(path, _NAME_LIMIT)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _docker_name(root: str, cid: str) -> str | None:
    data = _json_file(f"{root}/var/lib/docker/containers/{cid}/config.v2.json")
    name = data.get("Name") if isinstance(data, dict) else None
    return name.lstrip("/") or None if isinstance(name, str) else None


def _podman_name(root: str, cid: str) -> str | None:
    data = _json_file(f"{root}/var/lib/containers/storage/overlay-containers/containers.json")
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and entry.get("id") == cid:
            names = entry.get("names")
            if isinstance(names, list) and names and isinstance(names[0], str):
                return names[0]
    return None


def _openvz_name(root: str, cid: str) -> str | None:
    raw = _read(f"{root}/etc/vz/conf/{cid}.conf", 1 << 20)
    for line in (raw or b"").decode("utf-8", "replace").splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and key == "NAME":
            return value.strip().strip("\"'") or None
    return None


def resolve_name(att: Attribution, root: str = "") -> Attribution:
    """*att* with ``name`` filled from the runtime's own files under *root* where the
    signals gave only an id (docker ``config.v2.json``, podman ``containers.json``, OpenVZ
    ``NAME=``). Not for the crash hook: these files can be large."""
    if att.name or not att.id or "/" in att.id or att.id in (".", ".."):
        return att
    lookup = {"docker": _docker_name, "podman": _podman_name, "openvz": _openvz_name}.get(att.tech or "")
    name = lookup(root.rstrip("/"), att.id) if lookup else None
    return replace(att, name=name) if name else att
