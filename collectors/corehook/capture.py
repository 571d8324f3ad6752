"""One crash, start to finish: decide, snapshot ``/proc``, write the CCpp problem directory,
read the core, deduplicate, enforce the spool limits, start post-processing.

The decision order follows the legacy ``abrt-hook-ccpp`` (formats/libreport.md §6.1):
snapshot first (the process is only guaranteed to exist until we drain the pipe), never dump
the hook's own crashes, ignore non-core signals and ``ignored_paths``, crash-loop limit,
free-space floor; then ``ccpp-<date>-<pid>.new`` is filled (:mod:`.elements`, then the core
via :mod:`.coredump`) and renamed. Any failure after the ``.new`` directory exists removes it
again. Standard library + :mod:`reporter.dumpdir` + :mod:`coripper.stream` only.
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
from collectors.corehook.coredump import (CoreResult, analyse_only, compress_element, drain_fd,
                                          release_stdin, save_core)
from collectors.corehook.elements import TYPE, basic_elements, read_small_file, unreadable_summary
from reporter import elements
from reporter.dumpdir import DumpDir
from reporter.errors import ProblemDirError

if TYPE_CHECKING:
    from collections.abc import Callable

    from collectors.corehook.args import HookArgs
    from collectors.corehook.config import HookConfig

#: Marks processes started by the hook (post-processing): their crashes are never captured.
MARKER_ENV = "CRASHKIT_HOOK_CHILD"
SELF_MARKERS = (b"crashkit-hook", b"collectors.corehook", b"collectors/corehook")
#: Who unwinds a core whose files or memory root does not control (a setuid program's core:
#: its memory holds what the invoking user fed it; a chroot's or container's files): nobody.
NOBODY = 65534


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


def is_own_process(snap: procsnap.ProcSnapshot) -> bool:
    """True when the crashed process is the hook itself or something it started.

    Both the hook and its post-processing run a Python interpreter: the environment marker
    alone (which anybody can put into any program's environment, a setuid one's too, to
    keep its crashes out of the spool) does not count for other executables."""
    exe = (snap.exe or "").encode("utf-8", "surrogateescape")
    if not (b"python" in os.path.basename(exe) or b"crashkit-hook" in exe):
        return False
    environ = snap.get("environ") or b""
    if (b"\0" + MARKER_ENV.encode() + b"=") in (b"\0" + environ):
        return True
    cmdline = snap.get("cmdline") or b""
    return any(m in cmdline for m in SELF_MARKERS)


def _suid_dumpable() -> int:
    data = read_small_file("/proc/sys/fs/suid_dumpable", 16)
    try:
        return int(data or b"0")
    except ValueError:
        return 0


# ------------------------------------------------------------------ the crash

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
        pp_uid, pp_gid = (NOBODY, NOBODY) if setuid_crash else (args.uid, args.gid)
        spawn_detached_postprocess(path, pp_uid, pp_gid, cfg.log_file)
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
    analyse_only(stdin_fd, core, cfg)
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


#: The post-processing child's bootstrap: it takes the hook's own import path verbatim (argv[1],
#: JSON) before it imports anything of ours, so it finds exactly what the launcher found.
_POSTPROCESS_BOOTSTRAP = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
                          "from collectors.corehook.postprocess import main; sys.exit(main(sys.argv[2:]))")


def import_path() -> list[str]:
    """The import path this process runs with (the launcher's), our package root first.

    Re-executing ``sys.executable`` alone would lose it: inside a venv that is the base
    interpreter behind the venv, whose own ``sys.path`` lacks the venv's site-packages (and with
    an editable install our package root as well). Passing the list on works the same for
    ``pip install .``, ``-e``, a venv, pipx and a system install."""
    import sys

    root = _package_root()
    return [root] + [p for p in sys.path if p and p != root]


def postprocess_argv(path: str, uid: int, gid: int, log_file: str | None = None) -> list[str]:
    """The command that computes core_backtrace/duphash for *path*: this interpreter with
    ``-I -S`` (no environment, no site: nothing from outside our install) and this process's
    import path (:func:`import_path`)."""
    import json
    import sys

    argv = [sys.executable, "-I", "-S", "-c", _POSTPROCESS_BOOTSTRAP, json.dumps(import_path()),
            path, "--uid", str(uid), "--gid", str(gid)]
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
