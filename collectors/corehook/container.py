"""Is the crashed process in a container or a chroot? (formats/libreport.md §6.1)

Pure parts, tested with literal text: :func:`parse_cgroup_container` recognises the cgroup
paths of docker, podman/libpod, lxc, systemd-nspawn and OpenVZ/Virtuozzo;
:func:`find_container_init` walks the parent chain the way libreport's
``get_pid_of_container`` does (up to the topmost ancestor that still has the crashed
process's namespace set); :func:`kind_from_environ` reads the ``container=`` variable every
runtime following systemd's container interface sets for the container's init;
:func:`nspawn_machine_name` finds the machine name in a ``systemd-nspawn`` command line;
:func:`host_rootfs` maps the container's ``/`` mount to its path on the host through the two
mount tables. :func:`detect` is the thin edge that reads ``/proc``.
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
    # The container's / as a path on the host (libreport's container_rootfs): the lxc/nspawn
    # rootfs directory, podman's overlay "merged" directory (mounted only while the container
    # runs or is `podman mount`ed). Post-processing runs after the process is reaped, when
    # /proc/PID/root is gone: this is where the container's modules can still be found.
    container_rootfs: str | None = None


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
    """``(container kind, id)`` for one cgroup path, or ``None``.

    Formats as the runtimes write them (the recorded ones are in
    tests/collectors/corehook/data/cgroup-*.txt): podman with the cgroupfs manager
    ``/libpod_parent/libpod-<id>``, with systemd ``/machine.slice/libpod-<id>.scope[/container]``;
    docker ``/docker/<id>`` and ``/system.slice/docker-<id>.scope``; lxc 4+
    ``/lxc.payload.<name>`` (older ``/lxc/<name>``, ``/lxc.payload/<name>``); a registered
    systemd-nspawn machine ``/machine.slice/machine-<name>.scope[/payload]`` (unit-name escaped);
    OpenVZ 6 ``/<CTID>`` and Virtuozzo 7 ``/machine.slice/<CTID|UUID>`` (OpenVZ/Virtuozzo
    documentation and vzctl's cgroup layout; no runtime here to record them).
    """
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


#: ``container=`` values (systemd.io/CONTAINER_INTERFACE; podman, lxc and nspawn set it in
#: the init's environment) mapped to our ``container`` element.
ENV_KINDS = {"podman": "podman", "docker": "docker", "lxc": "lxc", "lxc-libvirt": "lxc",
             "systemd-nspawn": "systemd-nspawn", "openvz": "openvz"}


def kind_from_environ(raw: bytes) -> str | None:
    """The runtime named by ``container=`` in a NUL-separated environment (``None`` if absent)."""
    for var in raw.split(b"\0"):
        if var.startswith(b"container="):
            value = var[len(b"container="):].decode("utf-8", "replace")
            return ENV_KINDS.get(value, "unknown")
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


def nspawn_machine_name(argv: list[str]) -> str | None:
    """The machine name of a ``systemd-nspawn`` command line: ``-M``/``--machine``, else the
    basename of ``-D``/``--directory`` or of ``-i``/``--image`` without ``.raw`` (nspawn's
    default, systemd-nspawn(1)). ``None`` when neither is given."""
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
            j = 1
            while j < len(arg):
                letter = arg[j]
                if letter in _NSPAWN_SHORT_ARG:
                    value = arg[j + 1:]
                    if not value:
                        i += 1
                        value = argv[i] if i < len(argv) else ""
                    opts[{"M": "machine", "D": "directory", "i": "image"}.get(letter, letter)] = value
                    break
                j += 1
        i += 1
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


@dataclass(frozen=True)
class Mount:
    """One ``/proc/PID/mountinfo`` line (proc(5)): ids, device, root within the file system,
    mount point, file system type, source."""

    mount_id: int
    parent_id: int
    dev: str
    root: str
    mount_point: str
    fstype: str
    source: str


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
                            _unescape_octal(fields[4]), tail[0], _unescape_octal(tail[1])))
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


def _read(path: str, limit: int) -> bytes | None:
    try:
        return procsnap.read_bounded(path, limit)
    except OSError:
        return None


def _argv(raw: bytes | None) -> list[str]:
    """``/proc/PID/cmdline`` (NUL-terminated arguments) as a list."""
    args = (raw or b"").split(b"\0")
    if args and args[-1] == b"":
        args.pop()
    return [a.decode("utf-8", "surrogateescape") for a in args]


def _nspawn_name(cpid: int, proc: str) -> str | None:
    """Machine name from the supervising ``systemd-nspawn`` (the container init's parent)."""
    parent = _ppid(cpid, proc)
    if parent is None:
        return None
    try:
        exe = os.readlink(f"{proc}/{parent}/exe")
    except OSError:
        return None
    if os.path.basename(procsnap.clean_exe(exe)) != "systemd-nspawn":
        return None
    return nspawn_machine_name(_argv(_read(f"{proc}/{parent}/cmdline", procsnap.LIMITS["cmdline"])))


def detect(snap: procsnap.ProcSnapshot, init_ns: dict[str, str | None],
           proc: str = "/proc") -> ContainerInfo:
    """Container/chroot facts for the snapshotted process.

    Kind and id come from the cgroup path; where it names no runtime (nspawn with
    ``--keep-unit``/``--register=no`` runs in ``<own cgroup>/payload``), the container init's
    ``container=`` variable gives the kind and the nspawn command line the machine name. The
    host mount table (the hook's own: the kernel starts it in the initial mount namespace)
    gives ``container_rootfs``.
    """
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
        raw = snap.get("cmdline") if cpid == snap.pid else \
            _read(f"{proc}/{cpid}/cmdline", procsnap.LIMITS["cmdline"])
        if raw:
            cmdline = procsnap.format_cmdline_element(raw)
        if not found:
            environ = snap.get("environ") if cpid == snap.pid else \
                _read(f"{proc}/{cpid}/environ", procsnap.LIMITS["environ"])
            kind = kind_from_environ(environ or b"") or kind
            if kind == "systemd-nspawn":
                cid = _nspawn_name(cpid, proc)
    rootfs = None
    mountinfo = snap.get("mountinfo")
    if mountinfo and differs(snap.namespaces, init_ns, ("mnt",)):
        host = _read(f"{proc}/self/mountinfo", procsnap.LIMITS["mountinfo"])
        if host:
            rootfs = host_rootfs(mountinfo.decode("utf-8", "surrogateescape"),
                                 host.decode("utf-8", "surrogateescape"))
    return ContainerInfo(container=kind, container_id=cid, container_cmdline=cmdline,
                         container_pid=cpid, rootdir=rootdir, container_rootfs=rootfs)
