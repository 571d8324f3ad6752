"""One crash, start to finish: decide, snapshot ``/proc``, write the CCpp problem directory,
read the core, deduplicate, enforce the spool limits, start post-processing.

The decision order follows the legacy ``abrt-hook-ccpp`` (formats/libreport.md §6.1):
snapshot first (the process is only guaranteed to exist until we drain the pipe), never dump
the hook's own crashes, ignore non-core signals and ``ignored_paths``, crash-loop limit,
free-space floor; then ``ccpp-<date>-<pid>.new`` is filled and renamed. Any failure after
the ``.new`` directory exists removes it again. Standard library + :mod:`reporter.dumpdir`
+ :mod:`coripper.stream` only.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors.corehook import container as container_mod
from collectors.corehook import dedup, hooklog, limits, procsnap
from collectors.corehook.args import HookArgs
from collectors.corehook.config import HookConfig
from reporter import elements
from reporter.dumpdir import DumpDir
from reporter.errors import ProblemDirError

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    from coripper.stream import MinimizeOptions, MinimizeReport

ANALYZER = "abrt-ccpp"          # libreport tools key on analyzer/type: stay compatible
TYPE = "CCpp"
VERSION = "0.1.0"
#: Marks processes started by the hook (post-processing): their crashes are never captured.
MARKER_ENV = "CRASHKIT_HOOK_CHILD"
SELF_MARKERS = (b"crashkit-hook", b"collectors.corehook", b"collectors/corehook")
CHUNK = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
NOT_REPORTABLE_VMLCK = ("The process had locked memory which usually indicates efforts to protect "
                        "sensitive data (passwords) from being written to disk. In order to avoid "
                        "sensitive information leakages, this problem must not be reported.")


@dataclass
class Outcome:
    """What the hook did with a crash (logged as one line)."""

    action: str                 # saved | duplicate | crash-loop | ignored
    why: str = ""
    path: str | None = None


class SpoolError(OSError):
    """The spool is missing, a symlink, or not a root-owned private directory."""


# ------------------------------------------------------------------ small edges

def check_spool(spool: str) -> None:
    """Refuse a spool that is a symlink, not a directory, not ours or writable by others.

    A missing spool is created (mode 0751) when its parent exists.
    """
    try:
        st = os.lstat(spool)
    except FileNotFoundError:
        os.mkdir(spool, 0o751)
        os.chmod(spool, 0o751, follow_symlinks=False)
        st = os.lstat(spool)
    if stat.S_ISLNK(st.st_mode):
        raise SpoolError(errno.ELOOP, "spool is a symbolic link, refusing it", spool)
    if not stat.S_ISDIR(st.st_mode):
        raise SpoolError(errno.ENOTDIR, "spool is not a directory", spool)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise SpoolError(errno.EPERM, "spool is not owned by root or is writable by others", spool)


def _read_small_file(path: str, limit: int = 64 << 10) -> bytes | None:
    try:
        return procsnap.read_bounded(path, limit)
    except OSError:
        return None


def os_release_line(os_info: bytes | None) -> bytes | None:
    """``os_release``: first line of /etc/system-release (libreport), else PRETTY_NAME of os-release."""
    for path in ("/etc/system-release", "/etc/redhat-release", "/etc/SuSE-release"):
        data = _read_small_file(path, 4096)
        if data:
            return data.split(b"\n", 1)[0]
    for line in (os_info or b"").splitlines():
        if line.startswith(b"PRETTY_NAME="):
            return line[len(b"PRETTY_NAME="):].strip().strip(b'"')
    return None


def is_own_process(snap: procsnap.ProcSnapshot) -> bool:
    """True when the crashed process is the hook itself or something it started."""
    environ = snap.get("environ") or b""
    if (b"\0" + MARKER_ENV.encode() + b"=") in (b"\0" + environ):
        return True
    cmdline = snap.get("cmdline") or b""
    exe = (snap.exe or "").encode("utf-8", "surrogateescape")
    if b"python" in os.path.basename(exe) or b"crashkit-hook" in exe:
        return any(m in cmdline for m in SELF_MARKERS)
    return False


def _suid_dumpable() -> int:
    data = _read_small_file("/proc/sys/fs/suid_dumpable", 16)
    try:
        return int(data or b"0")
    except ValueError:
        return 0


# ------------------------------------------------------------------ core writing

def _splice_or_copy(src_fd: int, dst_fd: int | None, limit: int | None) -> tuple[int, bool]:
    """Move stdin to *dst_fd* (``None``: discard) up to *limit* bytes, then drain the rest.

    Returns (bytes saved, truncated by the limit). Uses splice(2) (pipe → file/devnull, no copy
    through user space) and falls back to read/write.
    """
    saved = 0
    cut = False
    null_fd = None
    if dst_fd is None:
        null_fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        target = dst_fd if dst_fd is not None else null_fd
        assert target is not None
        use_splice = hasattr(os, "splice")
        buf = bytearray(CHUNK)
        while True:
            if dst_fd is not None and limit is not None and saved >= limit:
                cut = True
                target = null_fd = null_fd if null_fd is not None else os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            want = CHUNK
            if target == dst_fd and limit is not None:
                want = min(CHUNK, limit - saved)
            n = 0
            if use_splice:
                try:
                    n = os.splice(src_fd, target, want)
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EBADF):
                        raise
                    use_splice = False
            if not use_splice:
                n = os.readv(src_fd, [memoryview(buf)[:want]])
                if n and target is not None:
                    view = memoryview(buf)[:n]
                    while view:
                        view = view[os.write(target, view):]
            if n == 0:
                break
            if target == dst_fd:
                saved += n
        return saved, cut
    finally:
        if null_fd is not None:
            os.close(null_fd)


def drain_fd(fd: int = 0) -> int:
    """Read and discard *fd* to EOF; returns the byte count. Never raises."""
    total = 0
    try:
        total, _ = _splice_or_copy(fd, None, None)
    except OSError:
        buf = bytearray(CHUNK)
        try:
            while True:
                n = os.readv(fd, [buf])
                if n <= 0:
                    break
                total += n
        except OSError:
            pass
    return total


def release_stdin() -> None:
    """Replace fd 0 with /dev/null: the kernel reaps the process once no reader holds the pipe."""
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except OSError:
        try:
            os.close(0)
        except OSError:
            pass


@dataclass
class CoreResult:
    element: str | None = None          # coredump | coredump.zst | None
    size: int = 0
    bytes_in: int = 0
    error: str | None = None
    crash_module: str | None = None
    crash_offset: int | None = None
    crash_tid: int | None = None


def _core_cap(args: HookArgs, cfg: HookConfig) -> int | None:
    caps = [c for c in (args.core_limit, cfg.max_core_size or None) if c is not None]
    return min(caps) if caps else None


def save_core(dd: DumpDir, args: HookArgs, cfg: HookConfig, stdin_fd: int = 0) -> CoreResult:
    """Read the core from *stdin_fd* once, to EOF, into the directory as configured."""
    result = CoreResult()
    cap = _core_cap(args, cfg)
    if cfg.keep == "none" or (cap is not None and cap < PAGE):
        # RLIMIT_CORE below one page: no core (systemd-coredump's rule). Still analyse it.
        result.error = None if cfg.keep == "none" else f"RLIMIT_CORE is {args.core_limit}: no coredump saved"
        _analyse_only(stdin_fd, result, cfg)
        return result
    if cfg.keep == "full":
        _save_full(dd, stdin_fd, cap, cfg, result)
    else:
        _save_minimized(dd, stdin_fd, cap, cfg, result)
    return result


def _report_into(result: CoreResult, report: MinimizeReport) -> None:
    result.bytes_in = report.bytes_in
    module, offset = report.crash_site()
    result.crash_module, result.crash_offset = module, offset
    if report.threads:
        result.crash_tid = report.threads[0].tid
    if report.truncated:
        result.error = f"core ended early after {report.bytes_in} bytes (truncated)"


def _minimize_options(cfg: HookConfig) -> MinimizeOptions:
    """coripper options for the hook: hash the input only when ``hash_core`` is set."""
    from coripper.stream import MinimizeOptions

    return MinimizeOptions(hash_algorithm="sha256" if cfg.hash_core else None)


def _analyse_only(stdin_fd: int, result: CoreResult, cfg: HookConfig) -> None:
    from coripper.errors import CoripperError
    from coripper.stream import minimize_stream

    src = open(stdin_fd, "rb", buffering=0, closefd=False)
    try:
        _report_into(result, minimize_stream(src, None, _minimize_options(cfg)))
    except CoripperError as exc:
        result.error = result.error or f"not a usable core: {exc}"
    finally:
        drain_fd(stdin_fd)


def _save_minimized(dd: DumpDir, stdin_fd: int, cap: int | None, cfg: HookConfig,
                    result: CoreResult) -> None:
    from coripper.errors import CoripperError
    from coripper.stream import minimize_stream

    src = open(stdin_fd, "rb", buffering=0, closefd=False)
    writer = dd.open_element_writer("coredump")
    ok = False
    try:
        try:
            report = minimize_stream(src, writer, _minimize_options(cfg))
            ok = True
        except CoripperError as exc:
            result.error = f"not a usable core: {exc}"
        finally:
            drain_fd(stdin_fd)
        writer.flush()
        size = os.fstat(writer.fileno()).st_size
        if ok:
            _report_into(result, report)
            if cap is not None and size > cap:
                os.ftruncate(writer.fileno(), cap)
                size = cap
                result.error = f"coredump cut at {cap} bytes (RLIMIT_CORE / max_core_size)"
    finally:
        writer.close()
    if not ok or size == 0:
        dd.delete_element("coredump")
        return
    result.element, result.size = "coredump", size


def _save_full(dd: DumpDir, stdin_fd: int, cap: int | None, cfg: HookConfig,
               result: CoreResult) -> None:
    name = "coredump.zst" if cfg.compress == "zstd" else "coredump"
    writer = dd.open_element_writer(name)
    try:
        if cfg.compress == "zstd":
            size, cut = _copy_zstd(stdin_fd, writer, cap)
        else:
            size, cut = _splice_or_copy(stdin_fd, writer.fileno(), cap)
        result.bytes_in = size
        if cut:
            result.error = f"coredump cut at {cap} bytes (RLIMIT_CORE / max_core_size)"
    finally:
        writer.close()
        drain_fd(stdin_fd)
    if size == 0:
        dd.delete_element(name)
        result.error = result.error or "no core data arrived on stdin"
        return
    result.element, result.size = name, dd.element_size(name) or 0
    if name == "coredump":
        _analyse_saved(dd, name, result)


def _analyse_saved(dd: DumpDir, name: str, result: CoreResult) -> None:
    """Crash site of a saved full core (reads headers and notes only)."""
    from coripper.errors import CoripperError
    from coripper.stream import minimize_file

    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dd._fd_checked())
    with open(fd, "rb") as f:
        try:
            report = minimize_file(f, None)
        except CoripperError as exc:
            result.error = result.error or f"not a usable core: {exc}"
            return
    bytes_in = result.bytes_in
    _report_into(result, report)
    result.bytes_in = bytes_in


def _copy_zstd(stdin_fd: int, writer: BinaryIO, cap: int | None) -> tuple[int, bool]:
    import zstandard  # only for compress = "zstd"

    saved = 0
    cut = False
    with zstandard.ZstdCompressor(level=3).stream_writer(writer, closefd=False) as z:
        while True:
            want = CHUNK if cap is None else min(CHUNK, cap - saved)
            if want <= 0:
                cut = True
                break
            data = os.read(stdin_fd, want)
            if not data:
                break
            z.write(data)
            saved += len(data)
    return saved, cut


def compress_element(dd: DumpDir, name: str) -> str:
    """Replace element *name* by ``name.zst`` (after the kernel has been released)."""
    import zstandard

    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dd._fd_checked())
    with open(fd, "rb") as src:
        out = dd.open_element_writer(name + ".zst")
        try:
            zstandard.ZstdCompressor(level=3).copy_stream(src, out, read_size=CHUNK)
        finally:
            out.close()
    dd.delete_element(name)
    return name + ".zst"


# ------------------------------------------------------------------ the directory

def basic_elements(args: HookArgs, snap: procsnap.ProcSnapshot, exe: str | None, uid: int,
                   init_ns: dict[str, str | None], info: container_mod.ContainerInfo,
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
    os_info = _read_small_file("/etc/os-release") or _read_small_file("/usr/lib/os-release")
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
    out["reason"] = f"{name} killed by {hooklog.signal_name(args.signal)}".encode("utf-8", "surrogateescape")
    out["signal"] = elements.format_number(args.signal)
    cmdline = snap.get("cmdline")
    if cmdline:
        out["cmdline"] = procsnap.format_cmdline_element(cmdline)
    environ = snap.get("environ")
    if environ is not None:
        out["environ"] = procsnap.format_environ(environ)
    fips = _read_small_file("/proc/sys/crypto/fips_enabled", 16)
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


def capture(args: HookArgs, cfg: HookConfig, *, stdin_fd: int = 0, proc: str = "/proc",
            spawn_postprocess: bool = True) -> Outcome:
    """Handle one crash. Reads *stdin_fd* to EOF on every path that returns normally."""
    snap = procsnap.read_snapshot(args.global_pid, proc)
    exe = procsnap.clean_exe(snap.exe) if snap.exe else None
    shown = exe or args.comm

    def line(outcome: str) -> str:
        return hooklog.crash_line(args.global_pid, shown, args.uid, args.signal, outcome)

    if is_own_process(snap):
        return _ignore(line, "crash of crashkit-hook itself", stdin_fd)
    if args.signal not in cfg.signals:
        return _ignore(line, f"signal {args.signal} is not a core-dumping signal we handle", stdin_fd)
    if exe and cfg.ignored_paths:
        from fnmatch import fnmatchcase

        if any(fnmatchcase(exe, pattern) for pattern in cfg.ignored_paths):
            return _ignore(line, "executable in ignored_paths", stdin_fd)
    check_spool(cfg.spool)

    status = procsnap.parse_status(snap.get("status") or b"")
    fsuid = (procsnap.status_ids(status, "Uid") + (args.uid,) * 4)[3]
    setuid_crash = args.dumpable == 2 or (fsuid != args.uid and _suid_dumpable() != 1)
    uid = 0 if setuid_crash else args.uid
    now = time.time()
    rate_key = limits.rate_key(uid, exe or args.comm)
    use_rate = bool(cfg.crash_loop_limit)
    if use_rate:
        try:
            target = limits.check_crash_loop(cfg.spool, rate_key, now, cfg.crash_loop_window,
                                             cfg.crash_loop_limit)
        except OSError as exc:  # a broken/planted rate file must not stop the capture
            hooklog.log(f"crash-loop state unusable, limit not applied: {exc}", error=True)
            use_rate, target = False, None
        if target is not None:
            drain_fd(stdin_fd)
            if target:
                count = dedup.bump(os.path.join(cfg.spool, target), args.time)
                hooklog.log(line(f"ignoring (crash loop: counted in {target}, count {count})"))
                return Outcome("crash-loop", "counted", os.path.join(cfg.spool, target))
            hooklog.log(line("ignoring (crash loop: counted, directory not written yet)"))
            return Outcome("crash-loop", "pending")

    init_ns = procsnap.read_init_namespaces(proc)
    info = container_mod.detect(snap, init_ns, proc)
    if not limits.has_free_space(cfg.spool, cfg.min_free_space):
        return _count_only(args, cfg, uid, exe, info.container_id, stdin_fd, line,
                           f"less than {cfg.min_free_space} bytes free in {cfg.spool}")
    elems = basic_elements(args, snap, exe, uid, init_ns, info, status)
    hooklog.log(line("dumping core"))
    unreadable = unreadable_summary(snap)
    if unreadable:
        hooklog.log(f"could not read from /proc/{args.global_pid}: {unreadable}", error=True)

    mode = 0o600 if setuid_crash else 0o640
    name = f"ccpp-{elements.iso_date(args.time)}-{args.global_pid}"
    try:
        dd = DumpDir.create(cfg.spool, name, owner_uid=uid, uid=0, gid=0, mode=mode)
        try:
            for key, value in elems.items():
                dd.save_bytes(key, value)
        except BaseException:
            try:
                dd.discard()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            raise
    except (OSError, ProblemDirError) as exc:
        # A full disk before the core was read: the core can still tell whether this is
        # a known crash, whose count costs a few bytes.
        if _errno_of(exc) not in (errno.ENOSPC, errno.EDQUOT):
            raise
        return _count_only(args, cfg, uid, exe, info.container_id, stdin_fd, line,
                           f"no space left in {cfg.spool}")
    try:
        core = save_core(dd, args, cfg, stdin_fd)
        if stdin_fd == 0:
            release_stdin()  # the core is read: let the kernel reap the process now
        if core.error:
            dd.save_text("coredump_error", core.error)
        if cfg.compress == "zstd" and core.element == "coredump" and cfg.keep == "minimized":
            core.element = compress_element(dd, "coredump")
        dd.save_int("count", 1)
        signature = dedup.site_signature(exe or args.comm, args.signal, core.crash_module,
                                         core.crash_offset)
        key = dedup.duplicate_key(uid, TYPE, exe or "", info.container_id, signature)
        # Look-up and commit under one spool-wide lock: two hooks of the same crash running
        # side by side (workers of one service hitting the same bug) must not both commit.
        with limits.SpoolLock(cfg.spool, on_error=lambda exc: hooklog.log(
                f"dedup lock unusable, duplicates may race: {exc}", error=True)):
            duplicate: str | None = None
            count = 0
            failed: list[str] = []
            for _attempt in range(3):
                duplicate = dedup.find_duplicate(cfg.spool, key, skip=failed)
                if duplicate is None:
                    break
                try:
                    count = dedup.bump(duplicate, args.time)
                    break
                except (ProblemDirError, OSError) as exc:
                    # Locked for too long (abrtd running an event on it), gone, or a broken
                    # element: try the next older copy, else keep ours.
                    hooklog.log(f"could not count in {duplicate}: {exc}", error=True)
                    failed.append(duplicate)
                    duplicate = None
            if duplicate is None and failed:
                hooklog.log(f"same crash as {failed[0]}, which cannot be updated: saving separately")
            if duplicate is not None:
                dd.discard()
                if use_rate:
                    pending = limits.record_dir(cfg.spool, rate_key, os.path.basename(duplicate), now)
                    if pending:
                        count = dedup.bump(duplicate, args.time, by=pending)
                hooklog.log(line(f"duplicate of {duplicate} (count {count})"))
                return Outcome("duplicate", "same crash signature", duplicate)
            dd.save_text(dedup.SIGNATURE_ELEMENT, key)
            path = dd.commit()
    except BaseException:
        try:
            dd.discard()
        except Exception:  # noqa: BLE001 - already gone / closed
            pass
        raise
    dd.close()
    if use_rate:
        pending = limits.record_dir(cfg.spool, rate_key, os.path.basename(path), now)
        if pending:
            dedup.bump(path, args.time, by=pending)
    for stale in limits.sweep_abandoned(cfg.spool):
        hooklog.log(f"removed abandoned {stale}")
    deleted = limits.trim_spool(cfg.spool, cfg.max_spool_size, protect={path})
    for victim in deleted:
        hooklog.log(f"spool over {cfg.max_spool_size} bytes: deleted {victim}")
    if spawn_postprocess and cfg.postprocess and core.element:
        spawn_detached_postprocess(path, args.uid if not setuid_crash else 0, args.gid, cfg.log_file)
    hooklog.log(f"saved {path}" + (f" ({core.error})" if core.error else ""))
    return Outcome("saved", core.error or "", path)


def _errno_of(exc: BaseException) -> int | None:
    """The errno behind *exc*, also when reporter wrapped the OSError in ProblemDirError."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc.errno
        if "No space left" in str(exc):
            return errno.ENOSPC
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def _count_only(args: HookArgs, cfg: HookConfig, uid: int, exe: str | None,
                container_id: str | None, stdin_fd: int, line: Callable[[str], str],
                why: str) -> Outcome:
    """No room for a new directory: analyse the core (nothing written) and, when it is a
    known crash, count it in that directory; otherwise drop it with one log line."""
    core = CoreResult()
    _analyse_only(stdin_fd, core, cfg)
    if stdin_fd == 0:
        release_stdin()
    signature = dedup.site_signature(exe or args.comm, args.signal, core.crash_module,
                                     core.crash_offset)
    key = dedup.duplicate_key(uid, TYPE, exe or "", container_id, signature)
    with limits.SpoolLock(cfg.spool):
        duplicate = dedup.find_duplicate(cfg.spool, key)
        if duplicate is not None:
            try:
                count = dedup.bump(duplicate, args.time)
            except (ProblemDirError, OSError) as exc:
                hooklog.log(line(f"ignoring ({why}; could not count in {duplicate}: {exc})"),
                            error=True)
                return Outcome("ignored", why)
            hooklog.log(line(f"duplicate of {duplicate} (count {count}; {why})"))
            return Outcome("duplicate", why, duplicate)
    hooklog.log(line(f"ignoring ({why})"), error=True)
    return Outcome("ignored", why)


def _ignore(line: Callable[[str], str], why: str, stdin_fd: int) -> Outcome:
    drain_fd(stdin_fd)
    hooklog.log(line(f"ignoring ({why})"))
    return Outcome("ignored", why)


# ------------------------------------------------------------------ post-processing

def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def postprocess_argv(path: str, uid: int, gid: int, log_file: str | None = None) -> list[str]:
    """The command that computes core_backtrace/duphash for *path* (a full interpreter:
    pyelftools lives in site-packages, so no ``-S`` here)."""
    import sys

    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from collectors.corehook.postprocess import main; sys.exit(main(sys.argv[2:]))")
    argv = [sys.executable, "-I", "-c", code, _package_root(), path, "--uid", str(uid), "--gid", str(gid)]
    return argv + (["--log-file", log_file] if log_file else [])


def spawn_detached_postprocess(path: str, uid: int, gid: int, log_file: str | None = None) -> None:
    """Double-fork a fully detached post-processing child (own session, stdio on /dev/null),
    so neither the kernel (which waits for every reader of the core pipe) nor we wait for it."""
    argv = postprocess_argv(path, uid, gid, log_file)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", MARKER_ENV: "1"}
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:  # first child
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, 65536)
        os.chdir("/")
        os.execve(argv[0], argv, env)
    finally:
        os._exit(127)
