"""The hook's view of containers and chroots (docs/formats/libreport.md §6.1): a thin adapter over
:mod:`collectors.state.attribution`, the one attribution every collector shares.

:func:`detect` turns an :class:`~collectors.state.attribution.Attribution` into the
``container*`` elements (libreport's names: ``systemd-nspawn``, not ``nspawn``) and adds the
hook's own ``rootdir`` for a chroot. The pure helpers are re-exported for the hook's tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from collectors.corehook import procsnap
from collectors.state import attribution, signals
from collectors.state.signals import (  # noqa: F401 - re-exported
    CONTAINER_NAMESPACES,
    Mount,
    differs,
    host_rootfs,
    nspawn_machine_name,
    parse_mountinfo,
)

#: Technology keys of :mod:`collectors.state` as the hook's ``container`` element names them.
ELEMENT_KINDS = {"nspawn": "systemd-nspawn"}


@dataclass(frozen=True)
class ContainerInfo:
    """What the hook records about containers, VMs and chroots."""

    container: str | None = None        # docker | podman | lxc | systemd-nspawn | openvz |
    #                                     cri-o | containerd | libvirt | qemu | unknown
    container_id: str | None = None
    container_cmdline: bytes | None = None
    container_pid: int | None = None
    rootdir: str | None = None          # chroot directory (not saved for containers)
    # The container's / as a path on the host (libreport's container_rootfs): the lxc/nspawn
    # rootfs directory, podman's overlay "merged" directory (mounted only while the container
    # runs or is `podman mount`ed). Post-processing runs after the process is reaped, when
    # /proc/PID/root is gone: this is where the container's modules can still be found.
    container_rootfs: str | None = None
    # Virtuozzo 7 CT UUID, the QEMU -uuid of a VM's emulator, systemd-nspawn's machine UUID
    container_uuid: str | None = None


def element_kind(tech: str) -> str:
    """The ``container`` element value for a technology key."""
    return ELEMENT_KINDS.get(tech, tech)


def parse_cgroup_container(text: str) -> tuple[str, str] | None:
    """First container found in ``/proc/PID/cgroup`` text, as ``(container element, id)``
    (a VM's emulator is not in a container: ``None``)."""
    found = signals.parse_cgroup(text)
    if found is None or found.vm:
        return None
    return element_kind(found.tech), found.id


def kind_from_environ(raw: bytes) -> str | None:
    """The runtime named by ``container=`` in a NUL-separated environment (``None`` if absent)."""
    kind = signals.kind_from_environ(raw)
    return element_kind(kind) if kind else None


def find_container_init(pid: int, ppid_of: Callable[[int], int | None],
                        ns_of: Callable[[int], dict[str, str | None]]) -> int:
    """The topmost ancestor of *pid* with *pid*'s namespace set (libreport
    ``get_pid_of_container``)."""
    return signals.find_container_init(pid, ppid_of, ns_of, procsnap.NAMESPACES)


def detect(snap: procsnap.ProcSnapshot, init_ns: dict[str, str | None],
           proc: str = "/proc") -> ContainerInfo:
    """Container/VM/chroot facts for the snapshotted process (see
    :func:`collectors.state.attribution.attribute_snapshot`)."""
    att = attribution.attribute_snapshot(snap, init_ns, proc)
    in_ns = differs(snap.namespaces, init_ns)
    rootdir = snap.root if snap.root and snap.root != "/" and not in_ns else None
    if att.is_host or att.tech is None:
        return ContainerInfo(rootdir=rootdir)
    cmdline = procsnap.format_cmdline_element(att.cmdline) if att.cmdline else None
    return ContainerInfo(container=element_kind(att.tech), container_id=att.id,
                         container_cmdline=cmdline, container_pid=att.init_pid, rootdir=rootdir,
                         container_rootfs=att.rootfs, container_uuid=att.uuid)
