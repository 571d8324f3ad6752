"""Post-processing of a freshly saved CCpp directory (the hook starts it detached).

``python -m collectors.corehook.postprocess DIR [--uid U --gid G]``:

1. a child process drops to the crashing user's uid/gid (never unwinding a hostile core as
   root unless the crash was root's) and computes ``core_backtrace``, ``duphash`` and
   ``crash_function`` with :mod:`coripper.backtrace` from the core, handed over as an open
   file descriptor; the result comes back as JSON over a pipe, with a time limit;
2. the parent (root) writes those elements into the directory;
3. duplicates are re-checked by duphash (uid, type, executable, container_id, duphash), as
   abrtd does after post-create: the newer directory is merged into the older one
   (``count`` added, ``last_occurrence`` raised) and deleted.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import select
import signal
import sys
import time

from collectors.corehook import dedup, hooklog, limits
from collectors.corehook.capture import NOBODY
from reporter.dumpdir import DumpDir

UNWIND_TIME_LIMIT = 120
MAX_RESULT = 32 << 20
#: Address-space cap of the unwinder child: a hostile core (giant notes, 100k threads) or
#: a hostile module file must fail there, not exhaust the host.
UNWIND_MEMORY_LIMIT = 2 << 30
#: Extra seconds the parent grants past the child's own limits before SIGKILL (a child the
#: crashing user SIGSTOPs never acts on its SIGALRM).
KILL_GRACE = 5


def _open_core(dd: DumpDir) -> tuple[int, bool] | None:
    """An fd of the core (for ``coredump.zst``: its minimized core in an anonymous temp file)."""
    dfd = dd._fd_checked()
    for name, compressed in (("coredump", False), ("coredump.zst", True)):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            continue
        if not compressed:
            return fd, False
        from coripper.compressed import minimize_compressed
        from coripper.stream import MinimizeOptions

        # Decompressed and minimized in one pass: the temp file holds only what a backtrace
        # reads (a 4 GiB core's ~150 KB), never the whole decompressed core.
        tmp = os.open("/var/tmp", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        with open(fd, "rb") as src, open(tmp, "wb", closefd=False) as dst:
            minimize_compressed(src, "zstd", dst, MinimizeOptions(hash_algorithm=None))
        os.lseek(tmp, 0, os.SEEK_SET)
        return tmp, True
    return None


def _preload() -> None:
    """Import what the unwinder imports lazily while we can still read every path (the
    interpreter's site-packages may not be readable by the crashing user)."""
    import importlib

    for name in ("elftools.common.exceptions", "elftools.elf.elffile", "elftools.elf.sections",
                 "elftools.elf.dynamic", "elftools.dwarf.callframe", "elftools.dwarf.dwarfinfo",
                 "coripper.unwind", "coripper.symbols", "coripper.modules", "coripper.cfi"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _drop_privileges(uid: int, gid: int) -> None:
    """Become *uid*:*gid* for good: no supplementary groups, real = effective = saved ids
    (setresuid to a non-zero uid clears every capability: no SECBIT_KEEP_CAPS here), and
    no new privileges through exec."""
    if os.geteuid() != 0 or uid == 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise PermissionError("could not drop privileges")


def _limit_resources(time_limit: int) -> None:
    """Hard caps for the unwinder child: address space and CPU seconds (SIGXCPU, then
    SIGKILL from the kernel). RLIMIT_CORE stays at the hook's 1 (no recursion)."""
    import resource

    for which, value in ((resource.RLIMIT_AS, UNWIND_MEMORY_LIMIT),
                         (resource.RLIMIT_CPU, max(1, time_limit))):
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def _close_other_fds(keep: tuple[int, ...]) -> None:
    """Close every descriptor but *keep* and 0-2 (the root parent's problem directory, lock
    and log descriptors must not reach the unprivileged child)."""
    if "syslog" in sys.modules:
        sys.modules["syslog"].closelog()  # its socket is among them: reconnect when needed
    low = 3
    for fd in sorted(keep):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 65536)


# <linux/sched.h>, <linux/mount.h>
_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18


def _enter_root(rootdir: str, executable: str | None) -> str | None:
    """Confine this (root) child to *rootdir*: a private mount namespace, *rootdir* bound
    read-only, ``nodev``, ``nosuid``, ``noexec`` (non-recursively: the tree's own submounts are
    not taken along), then chroot into it. The tree belongs to a chroot or container whose
    root may have planted absolute symlinks (which would resolve on the host), device nodes
    (opened by a host process, the device cgroup does not apply) or FIFOs. Returns
    *executable* as a path inside the new root (``None`` if it is outside)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    real = os.path.realpath(rootdir)
    check(libc.unshare(_CLONE_NEWNS), "unshare")
    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    path = os.fsencode(real)
    check(libc.mount(path, path, None, _MS_BIND, None), "bind mount")
    check(libc.mount(b"none", path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID
                     | _MS_NODEV | _MS_NOEXEC, None), "remount read-only,nodev,nosuid,noexec")
    os.chroot(real)
    os.chdir("/")
    if executable and executable.startswith(real.rstrip("/") + "/"):
        return executable[len(real.rstrip("/")):]
    return None


def unwind_ids(uid: int, gid: int, rootdir: str) -> tuple[int, int]:
    """The uid:gid to unwind as: root's own crashes (files under ``/``) stay root; a root
    crash whose files come from a chroot or a container rootfs (controlled by whoever
    controls that tree) is unwound as nobody, confined to that tree (:func:`_enter_root`)."""
    if uid == 0 and rootdir not in ("", "/"):
        return NOBODY, NOBODY
    return uid, gid


def _unwind_child(core_fd: int, executable: str | None, rootdir: str, uid: int, gid: int,
                  out_fd: int) -> None:
    """Body of the unprivileged child: write the elements as JSON to *out_fd*."""
    from coripper.backtrace import core_backtrace

    _preload()
    if rootdir not in ("", "/") and os.geteuid() == 0:
        try:
            executable = _enter_root(rootdir, executable)
            rootdir = "/"
        except OSError as exc:
            # Unconfined, the tree's symlinks resolve on the host: only as nobody (unwind_ids).
            hooklog.log(f"postprocess: could not confine the unwinder to {rootdir}: {exc}",
                        error=True)
    _drop_privileges(uid, gid)
    with open(core_fd, "rb", closefd=False) as core:
        bt = core_backtrace(core, rootdir=rootdir, executable=executable)
    result = {"core_backtrace": bt.to_json() + "\n", "duphash": bt.duphash("")}
    func = bt.crash_function()
    if func:
        result["crash_function"] = func
    data = json.dumps(result).encode()
    view = memoryview(data)
    while view:
        view = view[os.write(out_fd, view):]


def compute_elements(core_fd: int, executable: str | None, rootdir: str, uid: int, gid: int,
                     time_limit: int = UNWIND_TIME_LIMIT) -> dict[str, str]:
    """Run the unwinder in a privilege-dropped child; returns the elements (empty on failure).

    The child is capped in memory and CPU time; the parent kills it after *time_limit* +
    :data:`KILL_GRACE` seconds of wall time whatever state it is in (stopped, blocked)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(rfd)
            _close_other_fds((core_fd, wfd))
            signal.alarm(time_limit)
            _limit_resources(time_limit)
            _unwind_child(core_fd, executable, rootdir, uid, gid, wfd)
            status = 0
        except BaseException as exc:  # noqa: BLE001
            hooklog.log(f"postprocess: unwinding failed: {type(exc).__name__}: {exc}", error=True)
        finally:
            os._exit(status)
    os.close(wfd)
    chunks, size = [], 0
    deadline = time.monotonic() + time_limit + KILL_GRACE
    killed = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([rfd], [], [], left)[0]:
                killed = True
                break
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESULT:
                killed = True
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        if killed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _, status = os.waitpid(pid, 0)
    if status != 0 or killed:
        hooklog.log(f"postprocess: unwinder child failed (wait status {status}, {size} bytes"
                    f"{', killed' if killed else ''})", error=True)
        return {}
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in ("core_backtrace", "duphash", "crash_function")
            and isinstance(v, str)}


#: Post-processing runs unwinding at the same time, and runs waiting for a turn; beyond
#: that a run is skipped (logged): a user crashing thousands of processes a minute must not
#: get thousands of root interpreters and unwinders at once.
MAX_RUNNING = max(2, min(8, os.cpu_count() or 2))
MAX_WAITING = 64
#: Seconds a run waits for its turn before giving up.
SLOT_WAIT = 600
SLOT_POLL = 0.2


def _try_slot(dir_fd: int, prefix: str, count: int) -> int | None:
    """A held ``flock`` on one of ``<prefix>.0`` .. ``<prefix>.<count-1>`` in the state
    directory (its fd), or ``None`` when all are taken."""
    for n in range(count):
        fd = os.open(f"{prefix}.{n}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, 0o600, dir_fd=dir_fd)
        try:
            import stat

            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PermissionError(errno.EPERM, "slot file is not a plain file", f"{prefix}.{n}")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            os.close(fd)
        except BaseException:
            os.close(fd)
            raise
    return None


def acquire_turn(spool: str, *, running: int = MAX_RUNNING, waiting: int = MAX_WAITING,
                 wait: float = SLOT_WAIT) -> int | None:
    """Wait for one of *running* post-processing slots of *spool* (``flock``-ed files in
    ``.crashkit-hook``); returns its fd (close it to give the turn back), or ``None`` when
    *waiting* others already queue or no slot freed up within *wait* seconds."""
    dfd = limits.open_state_dir(spool)
    try:
        slot = _try_slot(dfd, "postprocess-run", running)
        if slot is not None:
            return slot
        queued = _try_slot(dfd, "postprocess-wait", waiting)
        if queued is None:
            return None
        try:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                time.sleep(SLOT_POLL)
                slot = _try_slot(dfd, "postprocess-run", running)
                if slot is not None:
                    return slot
            return None
        finally:
            os.close(queued)
    finally:
        os.close(dfd)


def postprocess(path: str, uid: int = 0, gid: int = 0) -> str:
    """Add backtrace elements to *path* and merge it into an older duplicate; returns the
    directory that holds the crash afterwards."""
    with DumpDir.open(path) as dd:
        executable = dd.load_text("executable") or None
        # A container's files are reachable through its rootfs on the host while it runs.
        container_rootfs = dd.load_text("container_rootfs")
        rootdir = (dd.load_text("rootdir")
                   or (container_rootfs if container_rootfs and os.path.isdir(container_rootfs) else "")
                   or "/")
        opened = _open_core(dd)
        if opened is None:
            return path
        core_fd, _ = opened
        try:
            run_uid, run_gid = unwind_ids(uid, gid, rootdir)
            elems = compute_elements(core_fd, executable, rootdir, run_uid, run_gid)
        finally:
            os.close(core_fd)
        for name, value in elems.items():
            dd.save_text(name, value)
        duphash = elems.get("duphash")
        if not duphash:
            return path
        key = dedup.duplicate_key(dd.load_text("uid"), dd.load_text("type"), executable or "",
                                  dd.load_text("container_id") or None,
                                  dedup.duphash_signature(duphash))
        dd.save_text(dedup.DUPHASH_SIGNATURE_ELEMENT, key)
        my_time = dd.time() or int(time.time())
        my_count = dd.count() or 1
    spool = os.path.dirname(path)
    other = dedup.find_duplicate(spool, key, element=dedup.DUPHASH_SIGNATURE_ELEMENT, exclude=path)
    if other is None:
        return path
    with DumpDir.open(other, readonly=True) as odd:
        other_time, other_count = odd.time() or 0, odd.count() or 1
    if other_time <= my_time:
        keep, drop, when, by = other, path, my_time, my_count
    else:
        keep, drop, when, by = path, other, other_time, other_count
    count = dedup.bump(keep, when, by=by)
    with DumpDir.open(drop) as ddrop:
        ddrop.delete()
    hooklog.log(f"postprocess: {drop} is a duplicate of {keep} (duphash {duphash}); count {count}")
    try:
        limits.retarget_dir(spool, os.path.basename(drop), os.path.basename(keep))
    except OSError as exc:
        hooklog.log(f"postprocess: crash-loop state not updated: {exc}", error=True)
    return keep


def main(argv: list[str] | None = None) -> int:
    """Entry point (also run by the hook through ``python -I -c``)."""
    parser = argparse.ArgumentParser(prog="crashkit-hook-postprocess",
                                     description="core_backtrace + duphash for a problem directory")
    parser.add_argument("directory")
    parser.add_argument("--uid", type=int, default=0)
    parser.add_argument("--gid", type=int, default=0)
    parser.add_argument("--log-file")
    args = parser.parse_args(argv)
    hooklog.setup(args.log_file)
    # Backstop for the whole run (lock waits, spool scans): SIGALRM's default action ends
    # the process; a .lock naming a dead pid is stale for every other opener.
    signal.alarm(SLOT_WAIT + UNWIND_TIME_LIMIT + KILL_GRACE + 120)
    try:
        try:
            turn: int | None = acquire_turn(os.path.dirname(os.path.abspath(args.directory)))
        except OSError as exc:  # like SpoolLock: an unusable state directory costs no crash
            hooklog.log(f"postprocess: run limit unusable, not applied: {exc}", error=True)
            turn = -1
        if turn is None:
            hooklog.log(f"postprocess {args.directory}: too many post-processing runs; skipped",
                        error=True)
            return 1
        try:
            postprocess(args.directory, args.uid, args.gid)
        finally:
            if turn >= 0:
                os.close(turn)
    except Exception as exc:  # noqa: BLE001 - detached: log, don't crash
        hooklog.log(f"postprocess {args.directory}: {type(exc).__name__}: {exc}", error=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
