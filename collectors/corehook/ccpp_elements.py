"""The CCpp problem directory's elements from the hook's argv and ``/proc`` snapshot.

Names and formats are the legacy ``abrt-hook-ccpp``'s (docs/formats/libreport.md §6.1), so
libreport tools read our directories; everything here is written before the core is read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from collectors.corehook import hooklog, procsnap
from reporter import elements

if TYPE_CHECKING:
    from collectors.corehook.args import HookArgs
    from collectors.corehook.container import ContainerInfo

ANALYZER = "abrt-ccpp"          # libreport tools key on analyzer/type: stay compatible
TYPE = "CCpp"
VERSION = "0.1.0"
NOT_REPORTABLE_VMLCK = ("The process had locked memory which usually indicates efforts to protect "
                        "sensitive data (passwords) from being written to disk. In order to avoid "
                        "sensitive information leakages, this problem must not be reported.")


def read_small_file(path: str, limit: int = 64 << 10) -> bytes | None:
    """At most *limit* bytes of *path* (``None``: unreadable)."""
    try:
        return procsnap.read_bounded(path, limit)
    except OSError:
        return None


def os_release_line(os_info: bytes | None) -> bytes | None:
    """``os_release``: first line of /etc/system-release (libreport), else PRETTY_NAME of os-release."""
    for path in ("/etc/system-release", "/etc/redhat-release", "/etc/SuSE-release"):
        data = read_small_file(path, 4096)
        if data:
            return data.split(b"\n", 1)[0]
    for line in (os_info or b"").splitlines():
        if line.startswith(b"PRETTY_NAME="):
            return line[len(b"PRETTY_NAME="):].strip().strip(b'"')
    return None


def basic_elements(args: HookArgs, snap: procsnap.ProcSnapshot, exe: str | None, uid: int,
                   init_ns: dict[str, str | None], info: ContainerInfo,
                   status: dict[str, str]) -> dict[str, bytes]:
    """Every element the legacy hook wrote, from argv and the snapshot (no core yet)."""
    uname = os.uname()
    out: dict[str, bytes] = {}
    out["time"] = elements.format_number(args.time)
    out["last_occurrence"] = elements.format_number(args.time)
    out["uid"] = elements.format_number(uid)
    out["kernel"] = uname.release.encode()
    out["architecture"] = uname.machine.encode()
    out["hostname"] = uname.nodename.encode()
    if args.hostname and args.hostname != uname.nodename:
        out["container_hostname"] = args.hostname.encode("utf-8", "surrogateescape")
    os_info = read_small_file("/etc/os-release") or read_small_file("/usr/lib/os-release")
    if os_info:
        out["os_info"] = os_info
    release = os_release_line(os_info)
    if release:
        out["os_release"] = release
    for element, name in (("maps", "maps"), ("limits", "limits"), ("cgroup", "cgroup"),
                          ("mountinfo", "mountinfo"), ("proc_pid_status", "status")):
        data = snap.get(name)
        if data is not None:
            out[element] = data
    if snap.fds:
        out["open_fds"] = procsnap.format_open_fds(snap.fds)
    if snap.namespaces:
        out["namespaces"] = procsnap.format_namespaces(snap.namespaces, init_ns)
    if info.container:
        out["container"] = info.container.encode()
        if info.container_id:
            out["container_id"] = info.container_id.encode("utf-8", "surrogateescape")
        if info.container_cmdline:
            out["container_cmdline"] = info.container_cmdline
        if info.container_rootfs:
            out["container_rootfs"] = info.container_rootfs.encode("utf-8", "surrogateescape")
        if info.container_uuid:
            out["container_uuid"] = info.container_uuid.encode()
    out["analyzer"] = ANALYZER.encode()
    out["type"] = TYPE.encode()
    if exe:
        out["executable"] = exe.encode("utf-8", "surrogateescape")
    out["pid"] = elements.format_number(args.pid)
    out["global_pid"] = elements.format_number(args.global_pid)
    out["tid"] = elements.format_number(args.tid)
    if snap.cwd is not None:
        out["pwd"] = snap.cwd.encode("utf-8", "surrogateescape")
    if info.rootdir:
        out["rootdir"] = info.rootdir.encode("utf-8", "surrogateescape")
    name = os.path.basename(exe) if exe else args.comm
    # reason is one line (libreport tools list it as the problem's title); a comm or file
    # name may hold newlines and terminal escapes.
    name = "".join(c if c.isprintable() or c == " " or 0xDC80 <= ord(c) <= 0xDCFF else "?"
                   for c in name)
    out["reason"] = f"{name} killed by {hooklog.signal_name(args.signal)}".encode("utf-8", "surrogateescape")
    out["signal"] = elements.format_number(args.signal)
    cmdline = snap.get("cmdline")
    if cmdline:
        out["cmdline"] = procsnap.format_cmdline_element(cmdline)
    environ = snap.get("environ")
    if environ is not None:
        out["environ"] = procsnap.format_environ(environ)
    fips = read_small_file("/proc/sys/crypto/fips_enabled", 16)
    if fips is not None:
        out["fips_enabled"] = fips.strip()
    out["abrt_version"] = VERSION.encode()
    out["crashkit_version"] = VERSION.encode()
    if procsnap.vmlck_kb(status):
        out["not-reportable"] = NOT_REPORTABLE_VMLCK.encode()
    if snap.gone:
        out["proc_error"] = f"/proc/{args.global_pid}: {snap.errors.get('.', 'gone')}".encode()
    elif snap.errors:
        out["proc_error"] = "".join(f"/proc/{args.global_pid}/{name}: {why}\n"
                                    for name, why in sorted(snap.errors.items())).encode()
    return out


def unreadable_summary(snap: procsnap.ProcSnapshot) -> str | None:
    """One log line's worth of what could not be read from ``/proc/PID`` (``None``: all read)."""
    if not snap.errors or snap.gone:
        return None
    by_reason: dict[str, list[str]] = {}
    for name, why in sorted(snap.errors.items()):
        by_reason.setdefault(why, []).append(name)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())
