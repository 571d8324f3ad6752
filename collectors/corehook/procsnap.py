"""Snapshot of ``/proc/PID`` taken before the core is read (the process is still there
because ``core_pipe_limit`` > 0 makes the kernel wait for us).

Two layers: :func:`read_snapshot` does the bounded, ``O_NOFOLLOW`` reads relative to one
``/proc/PID`` directory descriptor and records failures instead of raising; the pure
``format_*``/``parse_*`` functions turn raw bytes into libreport elements
(docs/formats/libreport.md §1.5) and are tested with literal text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from collectors.corehook import gate
from reporter.elements import format_cmdline, quote_arg

# Upper bounds of what we copy from /proc (a hostile process controls most of it).
LIMITS = {
    "cmdline": 256 << 10,
    "environ": 1 << 20,
    "status": 64 << 10,
    "maps": 8 << 20,
    "limits": 16 << 10,
    "cgroup": 64 << 10,
    "mountinfo": 4 << 20,
}
MAX_FDS = 4096
MAX_FDINFO = 4096
MAX_LINK = 4096

#: Namespaces compared with PID 1's, in the order abrt writes them.
NAMESPACES = gate.NAMESPACES

#: Environment variable names containing one of these (case-insensitive) have their
#: value replaced by ``<redacted>``.
SECRET_WORDS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "KEY", "CREDENTIAL",
                "AUTH", "COOKIE", "SESSION", "PRIVATE", "SIGNATURE", "CERT", "DSN")
REDACTED = b"<redacted>"



@dataclass
class ProcSnapshot:
    """Raw contents of ``/proc/PID`` (``None`` where unreadable; see ``errors``)."""

    pid: int
    exe: str | None = None                     # readlink target, unmodified
    cwd: str | None = None
    root: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)        # cmdline, environ, status, ...
    fds: list[tuple[int, str, bytes]] = field(default_factory=list)  # (fd, target, fdinfo)
    fds_truncated: bool = False
    namespaces: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    gone: bool = False                          # /proc/PID could not be opened at all

    def get(self, name: str) -> bytes | None:
        return self.files.get(name)


# ------------------------------------------------------------------ reading (I/O edge)

#: Bounded, symlink-refusing reads: the light path's (:func:`gate.read_bounded`), shared.
read_bounded = gate.read_bounded


def _readlink(name: str, dir_fd: int) -> str:
    target = os.readlink(name, dir_fd=dir_fd)
    return target[:MAX_LINK]


def read_namespaces(proc_dir_fd: int) -> tuple[dict[str, str | None], dict[str, str]]:
    """Namespace link targets (``mnt:[4026531841]``) of one ``/proc/PID``."""
    result: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for ns in NAMESPACES:
        try:
            result[ns] = _readlink(f"ns/{ns}", proc_dir_fd)
        except OSError as exc:
            result[ns] = None
            errors[f"ns/{ns}"] = exc.strerror or str(exc)
    return result, errors


def read_snapshot(pid: int, proc: str = "/proc") -> ProcSnapshot:
    """Read everything the problem directory needs from ``<proc>/<pid>``; never raises OSError."""
    snap = ProcSnapshot(pid)
    try:
        dfd = os.open(f"{proc}/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        snap.gone = True
        snap.errors["."] = exc.strerror or str(exc)
        return snap
    try:
        for attr in ("exe", "cwd", "root"):
            try:
                setattr(snap, attr, _readlink(attr, dfd))
            except OSError as exc:
                snap.errors[attr] = exc.strerror or str(exc)
        for name, limit in LIMITS.items():
            try:
                snap.files[name] = read_bounded(name, limit, dfd)
            except OSError as exc:
                snap.errors[name] = exc.strerror or str(exc)
        _read_fds(snap, dfd)
        snap.namespaces, errors = read_namespaces(dfd)
        snap.errors.update(errors)
    finally:
        os.close(dfd)
    return snap


def _read_fds(snap: ProcSnapshot, dfd: int) -> None:
    try:
        fd_dir = os.open("fd", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    except OSError as exc:
        snap.errors["fd"] = exc.strerror or str(exc)
        return
    try:
        names = sorted(int(n) for n in os.listdir(fd_dir) if n.isdigit())
    except OSError as exc:
        snap.errors["fd"] = exc.strerror or str(exc)
        return
    finally:
        os.close(fd_dir)
    if len(names) > MAX_FDS:
        names = names[:MAX_FDS]
        snap.fds_truncated = True
    for n in names:
        try:
            target = _readlink(f"fd/{n}", dfd)
        except OSError:
            continue  # closed meanwhile
        try:
            info = read_bounded(f"fdinfo/{n}", MAX_FDINFO, dfd)
        except OSError:
            info = b""
        snap.fds.append((n, target, info))


def read_init_namespaces(proc: str = "/proc") -> dict[str, str | None]:
    """PID 1's namespaces (the host's reference set, as abrt compares).

    Where PID 1's links are unreadable (e.g. PID 1 belongs to a sandbox above us), the hook's
    own namespaces stand in: the kernel starts core_pattern helpers in the initial namespaces.
    """
    result: dict[str, str | None] = {ns: None for ns in NAMESPACES}
    for who in ("1", "self"):
        try:
            dfd = os.open(f"{proc}/{who}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            found = read_namespaces(dfd)[0]
        finally:
            os.close(dfd)
        for ns, value in found.items():
            if result[ns] is None:
                result[ns] = value
        if all(v is not None for v in result.values()):
            break
    return result


# ------------------------------------------------------------------ formatting (pure)

clean_exe = gate.clean_exe


def is_secret_name(name: bytes) -> bool:
    """True when an environment variable name looks like it holds a secret."""
    upper = name.upper().decode("ascii", "replace")
    return any(word in upper for word in SECRET_WORDS)


def redact_environ(raw: bytes) -> bytes:
    """Return ``/proc/PID/environ`` (NUL-separated) with secret values replaced."""
    out = []
    for var in raw.split(b"\0"):
        if not var:
            continue
        name, eq, _value = var.partition(b"=")
        if eq and is_secret_name(name):
            var = name + b"=" + REDACTED
        out.append(var)
    return b"".join(v + b"\0" for v in out)


def format_environ(raw: bytes) -> bytes:
    """The ``environ`` element: redacted, one libreport-quoted ``VAR=value`` per line."""
    return b"".join(quote_arg(v) + b"\n" for v in redact_environ(raw).split(b"\0") if v)


def format_cmdline_element(raw: bytes) -> bytes:
    """The ``cmdline`` element from ``/proc/PID/cmdline``."""
    return format_cmdline(raw)


def format_open_fds(fds: list[tuple[int, str, bytes]]) -> bytes:
    """The ``open_fds`` element: ``<fd>:<target>`` then its fdinfo lines, blank line between."""
    parts = []
    for fd, target, info in fds:
        text = f"{fd}:{target}\n".encode("utf-8", "surrogateescape") + info
        if info and not info.endswith(b"\n"):
            text += b"\n"
        parts.append(text)
    return b"\n".join(parts)


def format_namespaces(own: dict[str, str | None], init: dict[str, str | None]) -> bytes:
    """The ``namespaces`` element: ``<ns> : default|own|unknown`` (compared with PID 1)."""
    lines = []
    for ns in NAMESPACES:
        mine, ref = own.get(ns), init.get(ns)
        if mine is None and ref is None and ns.startswith("time"):
            continue  # kernel without time namespaces
        if mine is None or ref is None:
            state = "unknown"
        else:
            state = "default" if mine == ref else "own"
        lines.append(f"{ns} : {state}\n")
    return "".join(lines).encode()


def parse_status(data: bytes) -> dict[str, str]:
    """``/proc/PID/status`` as ``{field: value}`` (values stripped)."""
    result = {}
    for line in data.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            result[key] = value.strip()
    return result


def status_ids(status: dict[str, str], key: str) -> tuple[int, ...]:
    """The numeric columns of ``Uid:``/``Gid:``/``NSpid:`` (real, effective, saved, fs)."""
    try:
        return tuple(int(v) for v in status.get(key, "").split())
    except ValueError:
        return ()


def vmlck_kb(status: dict[str, str]) -> int:
    """``VmLck`` in kB (0 when absent)."""
    value = status.get("VmLck", "0 kB").split()
    try:
        return int(value[0]) if value else 0
    except ValueError:
        return 0
