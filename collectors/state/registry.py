"""The state plugins, by technology (explicit: adding one is one file plus one line here)."""

from __future__ import annotations

from collectors.state.base import StatePlugin
from collectors.state.plugins.docker import Docker
from collectors.state.plugins.libvirt import Libvirt
from collectors.state.plugins.lxc import Lxc
from collectors.state.plugins.nspawn import Nspawn
from collectors.state.plugins.openvz import OpenVZ
from collectors.state.plugins.podman import Podman
from collectors.state.plugins.qemu import Qemu

PLUGINS: dict[str, type[StatePlugin]] = {p.name: p for p in (
    OpenVZ, Lxc, Docker, Podman, Libvirt, Nspawn, Qemu)}
