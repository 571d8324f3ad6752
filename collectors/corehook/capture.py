"""One crash, start to finish: decide, snapshot ``/proc``, write the CCpp problem directory,
read the core, deduplicate, enforce the spool limits, start post-processing.

The decision order follows the legacy ``abrt-hook-ccpp`` (docs/formats/libreport.md §6.1):
snapshot first (the process is only guaranteed to exist until we drain the pipe), never dump
the hook's own crashes, ignore non-core signals and ``ignored_paths``, crash-loop limit,
free-space floor; then ``ccpp-<date>-<pid>.new`` is filled (:mod:`.elements`, then the core
via :mod:`.coredump`) and renamed. Any failure after the ``.new`` directory exists removes it
again. Standard library + :mod:`reporter.dumpdir` + :mod:`coripper.minimizer.stream` only.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collectors.corehook import container as container_mod
from collectors.corehook.container import ContainerInfo
from collectors.corehook import dedup, gate, hooklog, limits, procsnap, shedding
from collectors.corehook.coredump import (CoreResult, analyse_only, compress_element, drain_fd,
                                          release_stdin, save_core)
from collectors.corehook.ccpp_elements import TYPE, basic_elements, read_small_file, unreadable_summary
from reporter import elements
from reporter.dumpdir import DumpDir
from collectors.errors import SpoolError
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

    action: str                 # saved | duplicate | crash-loop | shed | ignored
    why: str = ""
    path: str | None = None


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

@dataclass
class Crash:
    """What the hook knows of one crash before the core is read."""

    args: HookArgs
    snap: procsnap.ProcSnapshot
    exe: str | None
    status: dict[str, str]
    uid: int                 # the problem directory's owner (root for a setuid crash)
    setuid_crash: bool
    now: float

    @property
    def shown(self) -> str:
        return self.exe or self.args.comm

    def line(self, outcome: str) -> str:
        """abrt's per-crash log line with *outcome*."""
        return hooklog.crash_line(self.args.global_pid, self.shown, self.args.uid, self.args.signal, outcome)

    def key(self, container: ContainerInfo, core: CoreResult) -> str:
        """The pre-backtrace duplicate key (:mod:`.dedup`)."""
        signature = dedup.site_signature(self.shown, self.args.signal, core.crash_module, core.crash_offset)
        return dedup.duplicate_key(self.uid, TYPE, self.exe or "",
                                   dedup.container_key(container.container, container.container_id),
                                   signature)


def crash_from_snapshot(args: HookArgs, snap: procsnap.ProcSnapshot) -> Crash:
    """The :class:`Crash` that *args* and the ``/proc`` snapshot *snap* describe."""
    exe = procsnap.clean_exe(snap.exe) if snap.exe else None
    status = procsnap.parse_status(snap.get("status") or b"")
    fsuid = (procsnap.status_ids(status, "Uid") + (args.uid,) * 4)[3]
    setuid_crash = args.dumpable == 2 or (fsuid != args.uid and _suid_dumpable() != 1)
    return Crash(args, snap, exe, status, 0 if setuid_crash else args.uid, setuid_crash, time.time())


def why_not_ours(crash: Crash, cfg: HookConfig) -> str | None:
    """Why this is one of the crashes we never capture (the hook's own, other signals,
    ``ignored_paths``), or ``None``."""
    if is_own_process(crash.snap):
        return "crash of crashkit-hook itself"
    if crash.args.signal not in cfg.signals:
        return f"signal {crash.args.signal} is not a core-dumping signal we handle"
    if crash.exe and cfg.ignored_paths:
        from fnmatch import fnmatchcase

        if any(fnmatchcase(crash.exe, pattern) for pattern in cfg.ignored_paths):
            return "executable in ignored_paths"
    return None


def _not_ours_to_keep(crash: Crash, cfg: HookConfig, stdin_fd: int) -> Outcome | None:
    why = why_not_ours(crash, cfg)
    return None if why is None else _ignore(crash.line, why, stdin_fd)


@dataclass
class RateLimit:
    """The crash-loop limit for this crash: its key, and whether the state is usable."""

    key: str
    used: bool

    def record(self, spool: str, path: str, crash: Crash) -> None:
        """Tie the loop's state to *path*, adding the occurrences counted while pending."""
        if not self.used:
            return
        pending = limits.record_dir(spool, self.key, os.path.basename(path), crash.now)
        if pending:
            dedup.bump(path, crash.args.time, by=pending)


def _crash_loop(crash: Crash, cfg: HookConfig, stdin_fd: int) -> tuple[RateLimit, Outcome | None]:
    """Apply the crash-loop limit: an outcome when this crash is only counted."""
    rate = RateLimit(limits.rate_key(crash.uid, crash.shown), bool(cfg.crash_loop_limit))
    if not rate.used:
        return rate, None
    try:
        target = limits.check_crash_loop(cfg.spool, rate.key, crash.now, cfg.crash_loop_window,
                                         cfg.crash_loop_limit)
    except OSError as exc:  # a broken/planted rate file must not stop the capture
        hooklog.log(f"crash-loop state unusable, limit not applied: {exc}", error=True)
        return RateLimit(rate.key, False), None
    if target is None:
        return rate, None
    drain_fd(stdin_fd)
    if target:
        count = dedup.bump(os.path.join(cfg.spool, target), crash.args.time)
        hooklog.log(crash.line(f"ignoring (crash loop: counted in {target}, count {count})"))
        return rate, Outcome("crash-loop", "counted", os.path.join(cfg.spool, target))
    hooklog.log(crash.line("ignoring (crash loop: counted, directory not written yet)"))
    return rate, Outcome("crash-loop", "pending")


def _new_directory(crash: Crash, cfg: HookConfig, elems: dict[str, bytes]) -> DumpDir | None:
    """``ccpp-<date>-<pid>.new`` with the /proc elements; ``None`` when the disk is full."""
    mode = 0o600 if crash.setuid_crash else 0o640
    name = f"ccpp-{elements.iso_date(crash.args.time)}-{crash.args.global_pid}"
    try:
        dd = DumpDir.create(cfg.spool, name, owner_uid=crash.uid, uid=0, gid=0, mode=mode)
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
        if errno_of(exc) not in (errno.ENOSPC, errno.EDQUOT):
            raise
        return None
    return dd


def capture(args: HookArgs, cfg: HookConfig, *, stdin_fd: int = 0, proc: str = "/proc",
            spawn_postprocess: bool = True, slot: int | None = None) -> Outcome:
    """Handle one crash. Reads *stdin_fd* to EOF on every path that returns normally.
    *slot*: the full-capture slot the light path (:mod:`.gate`) already holds for it, else
    one is taken here (or the crash is shed)."""
    crash = crash_from_snapshot(args, procsnap.read_snapshot(args.global_pid, proc))
    outcome = _not_ours_to_keep(crash, cfg, stdin_fd)
    if outcome is not None:
        return outcome
    check_spool(cfg.spool)
    init_ns = procsnap.read_init_namespaces(proc)
    info = container_mod.detect(crash.snap, init_ns, proc)
    if slot is None:
        slot = shedding.acquire_full_slot(cfg.spool, cfg.max_full_hooks)
    if slot is None:
        slot = shedding.slot_for_first_crash(cfg.spool, cfg.max_full_hooks, shedding.proc_key(crash, info))
    def make_elements() -> dict[str, bytes]:
        return basic_elements(args, crash.snap, crash.exe, crash.uid, init_ns, info, crash.status)

    if slot is None:
        return shedding.shed(crash, cfg, info, make_elements, stdin_fd)
    elems = make_elements()
    try:
        return _capture_full(crash, cfg, info, elems, stdin_fd, spawn_postprocess)
    finally:
        if slot >= 0:
            os.close(slot)


def _capture_full(crash: Crash, cfg: HookConfig, info: ContainerInfo, elems: dict[str, bytes],
                  stdin_fd: int, spawn_postprocess: bool) -> Outcome:
    """Capture with a full-capture slot held: crash-loop limit, free space, the directory,
    the core, dedup, commit."""
    args = crash.args
    rate, outcome = _crash_loop(crash, cfg, stdin_fd)
    if outcome is not None:
        return outcome
    if not limits.has_free_space(cfg.spool, cfg.min_free_space):
        return _count_only(crash, cfg, info, stdin_fd,
                           f"less than {cfg.min_free_space} bytes free in {cfg.spool}")
    hooklog.log(crash.line("dumping core"))
    unreadable = unreadable_summary(crash.snap)
    if unreadable:
        hooklog.log(f"could not read from /proc/{args.global_pid}: {unreadable}", error=True)
    elems[shedding.PROC_SIGNATURE_ELEMENT] = shedding.proc_key(crash, info).encode()
    dd = _new_directory(crash, cfg, elems)
    if dd is None:
        # A full disk before the core was read: the core can still tell whether this is
        # a known crash, whose count costs a few bytes.
        return _count_only(crash, cfg, info, stdin_fd, f"no space left in {cfg.spool}")
    try:
        core = _read_core(dd, crash, cfg, stdin_fd)
        outcome = _commit_or_count(dd, crash, cfg, crash.key(info, core), rate)
    except BaseException:
        try:
            dd.discard()
        except Exception:  # noqa: BLE001 - already gone / closed
            pass
        raise
    dd.close()
    if outcome.action == "saved" and outcome.path:
        _after_commit(outcome.path, crash, cfg, rate, core, spawn_postprocess)
        outcome.why = core.error or ""
    return outcome


def _read_core(dd: DumpDir, crash: Crash, cfg: HookConfig, stdin_fd: int) -> CoreResult:
    """Save the core into *dd* (minimized or whole, compressed when configured), releasing
    the kernel as soon as the pipe is drained."""
    core = save_core(dd, crash.args, cfg, stdin_fd)
    if stdin_fd == 0:
        release_stdin()  # the core is read: let the kernel reap the process now
    if core.error:
        dd.save_text("coredump_error", core.error)
    if cfg.compress == "zstd" and core.element == "coredump" and cfg.keep == "minimized":
        core.element = compress_element(dd, "coredump")
    dd.save_int("count", 1)
    return core


def _count_in_duplicate(spool: str, key: str, when: float) -> tuple[str | None, int]:
    """Count the crash in the oldest directory with *key*: (that directory, its new count),
    trying the next older copy when one cannot be updated; (None, 0) when none takes it."""
    failed: list[str] = []
    for _attempt in range(3):
        duplicate = dedup.find_duplicate(spool, key, skip=failed)
        if duplicate is None:
            break
        try:
            return duplicate, dedup.bump(duplicate, when)
        except (ProblemDirError, OSError) as exc:
            # Locked for too long (abrtd running an event on it), gone, or a broken
            # element: try the next older copy, else keep ours.
            hooklog.log(f"could not count in {duplicate}: {exc}", error=True)
            failed.append(duplicate)
    if failed:
        hooklog.log(f"same crash as {failed[0]}, which cannot be updated: saving separately")
    return None, 0


def _commit_or_count(dd: DumpDir, crash: Crash, cfg: HookConfig, key: str, rate: RateLimit) -> Outcome:
    """Look-up and commit under one spool-wide lock: two hooks of the same crash running side
    by side (workers of one service hitting the same bug) must not both commit."""
    with limits.SpoolLock(cfg.spool, on_error=lambda exc: hooklog.log(
            f"dedup lock unusable, duplicates may race: {exc}", error=True)):
        duplicate, count = _count_in_duplicate(cfg.spool, key, crash.args.time)
        if duplicate is not None:
            dd.discard()
            if rate.used:
                pending = limits.record_dir(cfg.spool, rate.key, os.path.basename(duplicate), crash.now)
                if pending:
                    count = dedup.bump(duplicate, crash.args.time, by=pending)
            hooklog.log(crash.line(f"duplicate of {duplicate} (count {count})"))
            return Outcome("duplicate", "same crash signature", duplicate)
        dd.save_text(dedup.SIGNATURE_ELEMENT, key)
        proc_key = dd.load_text(shedding.PROC_SIGNATURE_ELEMENT)
        if proc_key:
            absorbed = shedding.absorb_coreless(cfg.spool, proc_key, dd)
            if absorbed:
                hooklog.log(crash.line(f"took over {absorbed} occurrences counted without core"))
        return Outcome("saved", "", dd.commit())


def _after_commit(path: str, crash: Crash, cfg: HookConfig, rate: RateLimit, core: CoreResult,
                  spawn_postprocess: bool) -> None:
    """Crash-loop bookkeeping, spool limits and post-processing for a new directory."""
    rate.record(cfg.spool, path, crash)
    if core.element and crash.exe:
        try:
            gate.mark_seen(cfg.spool, gate.program_key(crash.args.uid, crash.exe, crash.args.signal), path)
        except OSError as exc:
            hooklog.log(f"could not mark {path} as the program's kept core: {exc}", error=True)
    for stale in limits.sweep_abandoned(cfg.spool):
        hooklog.log(f"removed abandoned {stale}")
    deleted = limits.trim_spool(cfg.spool, cfg.max_spool_size, protect={path})
    for victim in deleted:
        hooklog.log(f"spool over {cfg.max_spool_size} bytes: deleted {victim}")
    if spawn_postprocess and cfg.postprocess and core.element:
        pp_uid, pp_gid = (NOBODY, NOBODY) if crash.setuid_crash else (crash.args.uid, crash.args.gid)
        spawn_detached_postprocess(path, pp_uid, pp_gid, cfg.log_file, cfg.source)
    hooklog.log(f"saved {path}" + (f" ({core.error})" if core.error else ""))


def errno_of(exc: BaseException) -> int | None:
    """The errno behind *exc*: its own, or that of the OSError it was raised from (reporter
    chains the OSError behind its ProblemDirError with ``raise ... from``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.errno
        seen = seen.__cause__
    return None


def _count_only(crash: Crash, cfg: HookConfig, info: ContainerInfo, stdin_fd: int, why: str) -> Outcome:
    """No room for a new directory: analyse the core (nothing written) and, when it is a
    known crash, count it in that directory; otherwise drop it with one log line."""
    core = CoreResult()
    analyse_only(stdin_fd, core, cfg)
    if stdin_fd == 0:
        release_stdin()
    key = crash.key(info, core)
    with limits.SpoolLock(cfg.spool):
        duplicate = dedup.find_duplicate(cfg.spool, key)
        if duplicate is not None:
            try:
                count = dedup.bump(duplicate, crash.args.time)
            except (ProblemDirError, OSError) as exc:
                hooklog.log(crash.line(f"ignoring ({why}; could not count in {duplicate}: {exc})"),
                            error=True)
                return Outcome("ignored", why)
            hooklog.log(crash.line(f"duplicate of {duplicate} (count {count}; {why})"))
            return Outcome("duplicate", why, duplicate)
    hooklog.log(crash.line(f"ignoring ({why})"), error=True)
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


def postprocess_argv(path: str, uid: int, gid: int, log_file: str | None = None,
                     config: str | None = None) -> list[str]:
    """The command that computes core_backtrace/duphash for *path*: this interpreter with
    ``-I -S`` (no environment, no site: nothing from outside our install) and this process's
    import path (:func:`import_path`)."""
    import json
    import sys

    argv = [sys.executable, "-I", "-S", "-c", _POSTPROCESS_BOOTSTRAP, json.dumps(import_path()),
            path, "--uid", str(uid), "--gid", str(gid)]
    return argv + (["--log-file", log_file] if log_file else []) + (["--config", config] if config else [])


def spawn_detached_postprocess(path: str, uid: int, gid: int, log_file: str | None = None,
                               config: str | None = None) -> None:
    """Double-fork a fully detached post-processing child (own session, stdio on /dev/null),
    so neither the kernel (which waits for every reader of the core pipe) nor we wait for it."""
    argv = postprocess_argv(path, uid, gid, log_file, config)
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
