"""Pure readers of the signals that place a process in a container or VM (no I/O).

:func:`classify_cgroup_path` knows the cgroup paths every runtime creates, in cgroup v1 and v2
layouts; :func:`kind_from_environ` reads systemd's container interface (``container=``);
:func:`nspawn_machine_name` finds the machine in a ``systemd-nspawn`` command line;
:func:`qemu_identity` the VM in a ``qemu-system-*`` command line; :func:`host_rootfs` maps a
container's ``/`` mount to its path on the host through the two mount tables. Standard
library only: the crash hook imports this.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

_HEX = frozenset("0123456789abcdef")
# Namespaces whose difference from PID 1 means "containerised" (a new user or net
# namespace alone is a sandbox, e.g. a browser renderer, not a container).
CONTAINER_NAMESPACES = ("pid", "mnt")
MAX_PARENT_WALK = 64


@dataclass(frozen=True)
class CgroupMatch:
    """What one cgroup path names: the technology (``collectors.state`` keys), its id, and
    whether the process is a VM's emulator on the host rather than a container's task."""

    tech: str
    id: str
    vm: bool = False


def is_hex_id(text: str) -> bool:
    """A container id as docker/podman/cri-o write it (at least 12 lowercase hex digits)."""
    return len(text) >= 12 and set(text) <= _HEX


def is_uuid(text: str) -> bool:
    """``8-4-4-4-12`` hex digits (either case)."""
    parts = text.split("-")
    return [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(set(p.lower()) <= _HEX for p in parts)


def unescape_unit(name: str) -> str:
    """systemd unit name escaping (systemd.unit(5)): ``\\x2d`` → ``-``."""
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


# systemd scope prefixes of container runtimes ("<prefix><64 hex>.scope")
_SCOPE_PREFIXES = (("docker-", "docker"), ("libpod-", "podman"), ("crio-", "cri-o"),
                   ("cri-containerd-", "containerd"))


def _classify_scope(unit: str) -> CgroupMatch | None:
    for prefix, tech in _SCOPE_PREFIXES:
        if unit.startswith(prefix) and is_hex_id(unit[len(prefix):]):
            return CgroupMatch(tech, unit[len(prefix):])
    if not unit.startswith("machine-"):
        return None
    name = unescape_unit(unit[len("machine-"):])
    # libvirt names its machines "<driver>-<domain id>-<domain name>" (src/util/virsystemd.c)
    driver, _, rest = name.partition("-")
    domid, _, domname = rest.partition("-")
    if driver == "qemu" and domid.isdigit() and domname:
        return CgroupMatch("libvirt", domname, vm=True)  # the emulator runs on the host
    if driver == "lxc" and domid.isdigit() and domname:
        return CgroupMatch("lxc", domname)  # libvirt-lxc
    return CgroupMatch("nspawn", name)


def classify_cgroup_path(path: str) -> CgroupMatch | None:
    """The container or VM one cgroup path names, or ``None``.

    Formats as the runtimes write them (recorded ones in tests/collectors/corehook/data/):
    podman with cgroupfs ``/libpod_parent/libpod-<id>``, with systemd
    ``/machine.slice/libpod-<id>.scope[/container]``; docker ``/docker/<id>`` and
    ``/system.slice/docker-<id>.scope``; cri-o ``crio-<id>.scope``; containerd
    ``cri-containerd-<id>.scope``; lxc 4+ ``/lxc.payload.<name>`` (older ``/lxc/<name>``,
    ``/lxc.payload/<name>``); systemd-nspawn ``/machine.slice/machine-<name>.scope[/payload]``
    (unit-name escaped); libvirt ``machine-qemu\\x2d<N>\\x2d<name>.scope`` (the emulator) and
    ``machine-lxc\\x2d<N>\\x2d<name>.scope``; OpenVZ 6 ``/<CTID>`` and Virtuozzo 7
    ``/machine.slice/<CTID|UUID>`` (vzctl/libvzctl cgroup layout as documented by OpenVZ).
    """
    parts = [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        if part.endswith(".scope"):
            found = _classify_scope(part[: -len(".scope")])
            if found:
                return found
        nxt = parts[i + 1] if i + 1 < len(parts) else None
        if part == "docker" and nxt and is_hex_id(nxt):
            return CgroupMatch("docker", nxt)
        if part.startswith("libpod-") and is_hex_id(part[len("libpod-"):]):
            return CgroupMatch("podman", part[len("libpod-"):])
        if part == "lxc" and nxt:
            return CgroupMatch("lxc", nxt)
        if part.startswith("lxc.payload."):
            return CgroupMatch("lxc", part[len("lxc.payload."):])
        if part == "lxc.payload" and nxt:
            return CgroupMatch("lxc", nxt)
        if part == "machine.slice" and nxt and (nxt.isdigit() or is_uuid(nxt)):
            return CgroupMatch("openvz", nxt)  # Virtuozzo 7: /machine.slice/<CTID or UUID>
    if parts and (parts[0].isdigit() or is_uuid(parts[0])) and parts[0] != "0":
        return CgroupMatch("openvz", parts[0])  # OpenVZ 6 / legacy: /<CTID>
    return None


def parse_cgroup(text: str) -> CgroupMatch | None:
    """First container or VM named in ``/proc/PID/cgroup`` text (v1 ``N:ctrl:/path``, v2
    ``0::/path``; the file lists v1 hierarchies first)."""
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        found = classify_cgroup_path(fields[2])
        if found:
            return found
    return None


#: ``container=`` values (systemd.io/CONTAINER_INTERFACE; podman, lxc and nspawn set it in the
#: init's environment) mapped to technology keys.
ENV_KINDS = {"podman": "podman", "docker": "docker", "lxc": "lxc", "lxc-libvirt": "lxc",
             "systemd-nspawn": "nspawn", "openvz": "openvz"}


def environ_vars(raw: bytes) -> dict[bytes, bytes]:
    """A NUL-separated environment as ``{name: value}`` (later duplicates win)."""
    out = {}
    for var in raw.split(b"\0"):
        name, eq, value = var.partition(b"=")
        if eq and name:
            out[name] = value
    return out


def kind_from_environ(raw: bytes) -> str | None:
    """The technology named by ``container=`` (``unknown`` for one we do not know, ``None``
    when the variable is absent)."""
    value = environ_vars(raw).get(b"container")
    if value is None:
        return None
    return ENV_KINDS.get(value.decode("utf-8", "replace"), "unknown")


def uuid_from_environ(raw: bytes) -> str | None:
    """``container_uuid=`` (systemd-nspawn sets it to the machine UUID), when it is a UUID."""
    value = environ_vars(raw).get(b"container_uuid", b"").decode("ascii", "replace")
    if is_uuid(value):
        return value.lower()
    if len(value) == 32 and set(value.lower()) <= _HEX:  # sd_id128 without dashes
        v = value.lower()
        return f"{v[:8]}-{v[8:12]}-{v[12:16]}-{v[16:20]}-{v[20:]}"
    return None


# systemd-nspawn 252 options that take a separate argument (getopt "+hD:u:abL:M:jS:Z:qi:xp:nUE:P"
# and the long options declared with required_argument); optional-argument ones only take "=".
_NSPAWN_SHORT_ARG = frozenset("DuLMSZipE")
_NSPAWN_LONG_ARG = frozenset("""directory template image oci-bundle root-hash root-hash-sig
    verity-data pivot-root chdir kill-signal notify-ready suppress-sync hostname uuid property
    register machine user network-interface network-macvlan network-ipvlan network-veth-extra
    network-bridge network-zone network-namespace-path capability drop-capability
    ambient-capability system-call-filter rlimit oom-score-adjust cpu-affinity personality
    resolv-conf timezone link-journal bind bind-ro inaccessible tmpfs overlay overlay-ro
    bind-user console set-credential load-credential selinux-context selinux-apifs-context
    slice setenv settings""".split())


def _nspawn_options(argv: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break  # getopt "+": the first non-option starts the command
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if not eq and name in _NSPAWN_LONG_ARG:
                i += 1
                value = argv[i] if i < len(argv) else ""
            opts[name] = value
        else:
            for j in range(1, len(arg)):
                letter = arg[j]
                if letter in _NSPAWN_SHORT_ARG:
                    value = arg[j + 1:]
                    if not value:
                        i += 1
                        value = argv[i] if i < len(argv) else ""
                    opts[{"M": "machine", "D": "directory", "i": "image"}.get(letter, letter)] = value
                    break
        i += 1
    return opts


def nspawn_machine_name(argv: list[str]) -> str | None:
    """The machine name of a ``systemd-nspawn`` command line: ``-M``/``--machine``, else the
    basename of ``-D``/``--directory`` or of ``-i``/``--image`` without ``.raw`` (nspawn's
    default, systemd-nspawn(1)). ``None`` when neither is given."""
    opts = _nspawn_options(argv)
    if opts.get("machine"):
        return opts["machine"]
    for key, suffix in (("directory", ""), ("image", ".raw")):
        path = opts.get(key, "").rstrip("/")
        if path:
            base = os.path.basename(path)
            if suffix and base.endswith(suffix):
                base = base[: -len(suffix)]
            return base or None
    return None


def nspawn_directory(argv: list[str]) -> str | None:
    """The ``-D``/``--directory`` (or ``-i`` image) of a ``systemd-nspawn`` command line."""
    opts = _nspawn_options(argv)
    return opts.get("directory") or opts.get("image") or None


@dataclass(frozen=True)
class QemuIdentity:
    """What a QEMU command line says about its VM (qemu-options(7) ``-name``, ``-uuid``)."""

    name: str | None
    uuid: str | None
    libvirt: bool          # libvirt writes ``-name guest=NAME,...``


def is_qemu(argv: list[str], exe: str | None = None) -> bool:
    """Is this process a QEMU system emulator (``qemu-system-*``, ``qemu-kvm``)?"""
    names = [os.path.basename(p) for p in (exe or "", argv[0] if argv else "") if p]
    return any(n.startswith("qemu-system-") or n in ("qemu-kvm", "qemu-system") for n in names)


def qemu_opt_fields(value: str) -> list[str]:
    """A QEMU option value split at single commas (``,,`` is a literal comma)."""
    fields, cur, i = [], [], 0
    while i < len(value):
        if value[i] == ",":
            if value.startswith(",,", i):
                cur.append(",")
                i += 2
                continue
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(value[i])
        i += 1
    fields.append("".join(cur))
    return fields


def qemu_args(argv: list[str]) -> dict[str, list[str]]:
    """``-opt value`` pairs of a QEMU command line (``--opt`` accepted), values in order."""
    out: dict[str, list[str]] = {}
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and len(arg) > 1:
            key = arg.lstrip("-")
            key, eq, inline = key.partition("=")
            if eq:
                out.setdefault(key, []).append(inline)
            elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                out.setdefault(key, []).append(argv[i + 1])
                i += 1
            else:
                out.setdefault(key, []).append("")
        i += 1
    return out


def qemu_identity(argv: list[str]) -> QemuIdentity:
    """The VM's name and UUID from ``-name NAME`` / ``-name guest=NAME,...`` and ``-uuid``,
    as Virtuozzo's crash reporter reads them."""
    opts = qemu_args(argv)
    name, libvirt = None, False
    for value in opts.get("name", [])[-1:]:
        fields = qemu_opt_fields(value)
        first = fields[0]
        if first.startswith("guest="):
            name, libvirt = first[len("guest="):], True
        else:
            name = first
        for f in fields[1:]:
            if f.startswith("guest="):
                name = f[len("guest="):]
    uuid = next((u.lower() for u in opts.get("uuid", [])[-1:] if is_uuid(u)), None)
    return QemuIdentity(name or None, uuid, libvirt)


def openvz_envid(status: dict[str, str]) -> str | None:
    """The container id an OpenVZ/Virtuozzo kernel writes as ``envID:`` in
    ``/proc/PID/status`` (``0`` is the host)."""
    value = status.get("envID", "").strip()
    return value if value and value != "0" else None


@dataclass(frozen=True)
class Mount:
    """One ``/proc/PID/mountinfo`` line (proc(5)): ids, device, root within the file system,
    mount point, file system type, source, super options."""

    mount_id: int
    parent_id: int
    dev: str
    root: str
    mount_point: str
    fstype: str
    source: str
    super_options: str = ""


def _unescape_octal(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c)
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        chunk = text[i + 1:i + 4]
        if text[i] == "\\" and len(chunk) == 3 and all(c in "01234567" for c in chunk):
            out.append(chr(int(chunk, 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """The well-formed lines of ``/proc/PID/mountinfo``; malformed lines are skipped."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        try:
            mount_id, parent_id = int(fields[0]), int(fields[1])
        except ValueError:
            continue
        mounts.append(Mount(mount_id, parent_id, fields[2], _unescape_octal(fields[3]),
                            _unescape_octal(fields[4]), tail[0], _unescape_octal(tail[1]),
                            tail[2] if len(tail) > 2 else ""))
    return mounts


def _within(path: str, prefix: str) -> str | None:
    """*path* relative to *prefix* ("" when equal), or ``None`` when outside it."""
    if prefix == "/":
        return path.lstrip("/")
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) + 1:]
    return None


def host_rootfs(container_mountinfo: str, host_mountinfo: str) -> str | None:
    """Where the container's ``/`` is on the host, or ``None`` if not visible there.

    The container's ``/`` mount names a device and the directory of that file system it shows
    (mountinfo fields 3 and 4). A host mount of the same device whose root contains that
    directory shows it at ``mount point + rest``: a bind-mounted rootfs directory (lxc ``dir:``,
    ``systemd-nspawn -D``) or podman's overlay, whose anonymous device is mounted on the host at
    ``.../overlay/<layer>/merged``. Of several, the one whose root is the longest (most
    specific) wins, then the first listed (the original mount, not a later bind of it)."""
    roots = [m for m in parse_mountinfo(container_mountinfo) if m.mount_point == "/"]
    if not roots:
        return None
    root = roots[-1]  # the last mount on / hides the ones below it
    best: tuple[int, str] | None = None
    for m in parse_mountinfo(host_mountinfo):
        if m.dev != root.dev:
            continue
        rest = _within(root.root, m.root)
        if rest is None or (best is not None and len(m.root) <= best[0]):
            continue
        path = m.mount_point.rstrip("/") + "/" + rest if rest else m.mount_point
        best = (len(m.root), path.rstrip("/") or "/")
    return None if best is None or best[1] == "/" else best[1]


def differs(own: dict[str, str | None], ref: dict[str, str | None],
            names: tuple[str, ...] = CONTAINER_NAMESPACES) -> bool:
    """True when any of *names* is known in both sets and different."""
    return any(own.get(n) is not None and ref.get(n) is not None and own[n] != ref[n]
               for n in names)


def find_container_init(pid: int, ppid_of: Callable[[int], int | None],
                        ns_of: Callable[[int], dict[str, str | None]],
                        names: tuple[str, ...]) -> int:
    """The topmost ancestor of *pid* with *pid*'s namespace set (*names*; libreport
    ``get_pid_of_container``): walk up while the parent is not PID 1 and has the same
    namespaces."""
    mine = ns_of(pid)
    current = pid
    for _ in range(MAX_PARENT_WALK):
        parent = ppid_of(current)
        if parent is None or parent <= 1:
            break
        theirs = ns_of(parent)
        if any(mine.get(n) != theirs.get(n) for n in names):
            break
        current = parent
    return current


def argv_of(raw: bytes | None) -> list[str]:
    """``/proc/PID/cmdline`` (NUL-terminated arguments) as a list."""
    args = (raw or b"").split(b"\0")
    if args and args[-1] == b"":
        args.pop()
    return [a.decode("utf-8", "surrogateescape") for a in args]
