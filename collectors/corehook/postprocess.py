"""Post-processing of a freshly saved CCpp directory (the hook starts it detached).

``python -m collectors.corehook.postprocess DIR [--uid U --gid G]``:

1. a confined child (:mod:`collectors.corehook.sandbox`: no imports after start-up, own
   process group, private network, no forks) runs as the crashing user's uid/gid (never
   unwinding a hostile core as root unless the crash was root's) and computes
   ``core_backtrace``, ``duphash`` and ``crash_function`` with :mod:`coripper.unwinder.backtrace` from
   the core, handed over as an open file descriptor (a ``coredump.zst`` is decompressed
   there, not here); the files the core names are opened below the crash's root directory
   through a descriptor (:class:`coripper.unwinder.rootfs.RootFS`), never by chroot; the result comes
   back as JSON over a pipe, with a time limit;
2. the parent (root) writes those elements into the directory;
3. duplicates are re-checked by duphash (uid, type, executable, container_id, duphash), as
   abrtd does after post-create: the newer directory is merged into the older one
   (``count`` added, ``last_occurrence`` raised) and deleted.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time

from collectors.corehook import dedup, hooklog, limits, sandbox
from collectors.corehook.capture import NOBODY
from reporter.dumpdir import DumpDir

UNWIND_TIME_LIMIT = 120
UNWIND_MEMORY_LIMIT = sandbox.MEMORY_LIMIT
KILL_GRACE = sandbox.KILL_GRACE
#: The elements the unwinder child may hand back.
RESULT_ELEMENTS = ("core_backtrace", "duphash", "crash_function")


def _open_core(dd: DumpDir) -> tuple[int, bool] | None:
    """An fd of the saved core and whether it is ``coredump.zst`` (the confined child
    decompresses it: the root parent never parses a byte of it)."""
    dfd = dd._fd_checked()
    for name, compressed in (("coredump", False), ("coredump.zst", True)):
        try:
            return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd), compressed
        except FileNotFoundError:
            continue
    return None


def _preload(compressed: bool) -> None:
    """Import everything the child will use, error paths included, while every path of the
    host is readable and before imports are forbidden (:func:`sandbox.forbid_imports`)."""
    from coripper.unwinder.backtrace import preload_unwinder

    preload_unwinder()
    names = ["coripper.minimizer.compressed", "coripper.minimizer.stream", "zstandard"] if compressed else []
    for name in names + ["json.encoder", "json.decoder"]:
        __import__(name)


def _minimized_copy(compressed_fd: int) -> int:
    """The minimized core of a zstd core in an anonymous memory file (a 4 GiB core's
    ~150 KB; the decompressed core is never stored)."""
    from coripper.minimizer.compressed import minimize_compressed
    from coripper.minimizer.stream import MinimizeOptions

    out = os.memfd_create("core", os.MFD_CLOEXEC)
    with open(compressed_fd, "rb", closefd=False) as src, open(out, "wb", closefd=False) as dst:
        minimize_compressed(src, "zstd", dst, MinimizeOptions(hash_algorithm=None))
    os.lseek(out, 0, os.SEEK_SET)
    return out


def _unwind(core_fd: int, compressed: bool, root_fd: int, executable: str | None) -> dict[str, object]:
    """The job of the confined child: the elements from the core, files read below the root."""
    from coripper.unwinder.backtrace import core_backtrace
    from coripper.unwinder.rootfs import RootFS

    fd = _minimized_copy(core_fd) if compressed else core_fd
    with open(fd, "rb", closefd=fd != core_fd) as core:
        bt = core_backtrace(core, rootdir=RootFS.from_fd(root_fd, take=True), executable=executable)
    result: dict[str, object] = {"core_backtrace": bt.to_json() + "\n", "duphash": bt.duphash("")}
    func = bt.crash_function()
    if func:
        result["crash_function"] = func
    return result


def in_root_path(path: str | None, rootdir: str) -> str | None:
    """*path* (a host path, as the ``executable`` element holds it) as seen inside *rootdir*;
    ``None`` when it lies outside (pure)."""
    if not path:
        return None
    if rootdir in ("", "/"):
        return path
    prefix = rootdir.rstrip("/") + "/"
    return path[len(prefix) - 1:] if path.startswith(prefix) else None


def compute_elements(core_fd: int, executable: str | None, rootdir: str, uid: int, gid: int,
                     time_limit: int = UNWIND_TIME_LIMIT, *, compressed: bool = False,
                     transient_root: bool = False) -> dict[str, str]:
    """Run the unwinder in a confined child (:mod:`sandbox`) as *uid*:*gid*; returns the
    elements (empty on failure, which is logged).

    Files are opened below *rootdir* through a directory descriptor opened here, without
    following any symlink on the way to it; inside, the tree's own symlinks resolve inside
    the tree (:class:`coripper.unwinder.rootfs.RootFS`). Nothing is chrooted: the child's imports stay
    the host's, and after start-up it cannot import at all. A *transient_root* (a container's
    rootfs, unmounted when the container stops) that has gone meanwhile is not an error: the
    core is unwound as where the rootfs is absent."""
    from coripper.unwinder.rootfs import RootFS

    try:
        root = RootFS.open(rootdir or "/")
    except OSError as exc:
        if not (transient_root and exc.errno in (errno.ENOENT, errno.ENOTDIR)):
            hooklog.log(f"postprocess: root directory {rootdir} unusable: {exc}", error=True)
            return {}
        hooklog.log(f"postprocess: container rootfs {rootdir} gone (the container stopped): "
                    "unwinding from the core alone")
        rootdir = "/"
        root = RootFS.open(rootdir)
    try:
        how = sandbox.Confinement(uid, gid, time_limit, keep_fds=(core_fd, root.fd))
        result = sandbox.run_confined(
            lambda: _unwind(core_fd, compressed, root.fd, in_root_path(executable, rootdir)),
            how, prepare=lambda: _preload(compressed))
    finally:
        root.close()
    for note in result.notes:
        hooklog.log(f"postprocess: {note}")
    if result.value is None:
        hooklog.log(f"postprocess: unwinding failed: {result.error}", error=True)
        return {}
    return {k: v for k, v in result.value.items() if k in RESULT_ELEMENTS and isinstance(v, str)}


def unwind_ids(uid: int, gid: int, rootdir: str, container: bool = False) -> tuple[int, int]:
    """The uid:gid to unwind as: root's own crashes (files under ``/``) stay root; a root
    crash in a container, or whose files come from a chroot or a container rootfs (controlled
    by whoever controls that tree), is unwound as nobody."""
    if uid == 0 and (container or rootdir not in ("", "/")):
        return NOBODY, NOBODY
    return uid, gid


#: Post-processing runs unwinding at the same time, and runs waiting for a turn; beyond
#: that a run is skipped (logged): a user crashing thousands of processes a minute must not
#: get thousands of root interpreters and unwinders at once.
MAX_RUNNING = max(2, min(8, os.cpu_count() or 2))
MAX_WAITING = 64
#: Seconds a run waits for its turn before giving up.
SLOT_WAIT = 600
SLOT_POLL = 0.2


def acquire_turn(spool: str, *, running: int = MAX_RUNNING, waiting: int = MAX_WAITING,
                 wait: float = SLOT_WAIT) -> int | None:
    """Wait for one of *running* post-processing slots of *spool* (``flock``-ed files in
    ``.crashkit-hook``); returns its fd (close it to give the turn back), or ``None`` when
    *waiting* others already queue or no slot freed up within *wait* seconds."""
    dfd = limits.open_state_dir(spool)
    try:
        slot = limits.try_slot(dfd, "postprocess-run", running)
        if slot is not None:
            return slot
        queued = limits.try_slot(dfd, "postprocess-wait", waiting)
        if queued is None:
            return None
        try:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                time.sleep(SLOT_POLL)
                slot = limits.try_slot(dfd, "postprocess-run", running)
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
        # A container's files are reachable through its rootfs on the host while it runs;
        # one that has stopped meanwhile is handled where the rootfs is opened.
        explicit_root = dd.load_text("rootdir")
        rootdir = explicit_root or dd.load_text("container_rootfs") or "/"
        opened = _open_core(dd)
        if opened is None:
            return path
        core_fd, compressed = opened
        try:
            run_uid, run_gid = unwind_ids(uid, gid, rootdir, bool(dd.load_text("container_id")))
            elems = compute_elements(core_fd, executable, rootdir, run_uid, run_gid,
                                     compressed=compressed,
                                     transient_root=not explicit_root and rootdir != "/")
        finally:
            os.close(core_fd)
        for name, value in elems.items():
            dd.save_text(name, value)
        duphash = elems.get("duphash")
        if not duphash:
            return path
        key = dedup.duplicate_key(dd.load_text("uid"), dd.load_text("type"), executable or "",
                                  dedup.container_key(dd.load_text("container") or None,
                                                      dd.load_text("container_id") or None),
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


def _post_create(path: str, config: str | None) -> None:
    """libreport's ``post-create`` event on a new problem (not on a crash merged into an older
    one), when ``[report] post_create`` is set in the hook's config: reporting a crash the
    moment it is analysed (docs/reporting.md)."""
    from reporter.events.postcreate import run_post_create

    # The hook's own config (hook.toml) may carry a [report] table; else the system file's.
    result = run_post_create(path, config=config) if config else None
    if result is None or result.skipped:
        result = run_post_create(path, config=None)
    if result.skipped:
        return
    if result.error:
        hooklog.log(f"postprocess: post-create on {path}: {result.error}", error=True)
    else:
        hooklog.log(f"postprocess: post-create on {path}: exit {result.rc}")


def main(argv: list[str] | None = None) -> int:
    """Entry point (also run by the hook through ``python -I -c``)."""
    parser = argparse.ArgumentParser(prog="crashkit-hook-postprocess",
                                     description="core_backtrace + duphash for a problem directory")
    parser.add_argument("directory")
    parser.add_argument("--uid", type=int, default=0)
    parser.add_argument("--gid", type=int, default=0)
    parser.add_argument("--log-file")
    parser.add_argument("--config", help="the hook's config file ([report] post_create)")
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
            held = postprocess(args.directory, args.uid, args.gid)
        finally:
            if turn >= 0:
                os.close(turn)
        if held == args.directory and os.path.isdir(held):
            _post_create(held, args.config)
    except Exception as exc:  # noqa: BLE001 - detached: log, don't crash
        hooklog.log(f"postprocess {args.directory}: {type(exc).__name__}: {exc}", error=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
