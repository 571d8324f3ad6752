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
import json
import os
import signal
import sys
import time

from collectors.corehook import dedup, hooklog, limits
from reporter.dumpdir import DumpDir

UNWIND_TIME_LIMIT = 120
MAX_RESULT = 32 << 20


def _open_core(dd: DumpDir) -> tuple[int, bool] | None:
    """An fd of the core (decompressed into an anonymous temp file for ``coredump.zst``)."""
    dfd = dd._fd_checked()
    for name, compressed in (("coredump", False), ("coredump.zst", True)):
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            continue
        if not compressed:
            return fd, False
        import zstandard

        tmp = os.open("/var/tmp", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        with open(fd, "rb") as src, open(tmp, "wb", closefd=False) as dst:
            zstandard.ZstdDecompressor().copy_stream(src, dst)
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
    if os.geteuid() != 0 or uid == 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def _unwind_child(core_fd: int, executable: str | None, rootdir: str, uid: int, gid: int,
                  out_fd: int) -> None:
    """Body of the unprivileged child: write the elements as JSON to *out_fd*."""
    from coripper.backtrace import core_backtrace

    _preload()
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
    """Run the unwinder in a privilege-dropped child; returns the elements (empty on failure)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(rfd)
            signal.alarm(time_limit)
            _unwind_child(core_fd, executable, rootdir, uid, gid, wfd)
            status = 0
        except BaseException as exc:  # noqa: BLE001
            hooklog.log(f"postprocess: unwinding failed: {type(exc).__name__}: {exc}", error=True)
        finally:
            os._exit(status)
    os.close(wfd)
    chunks, size = [], 0
    try:
        while True:
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESULT:
                os.kill(pid, signal.SIGKILL)
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    if status != 0 or size > MAX_RESULT:
        hooklog.log(f"postprocess: unwinder child failed (wait status {status}, {size} bytes)",
                    error=True)
        return {}
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        return {}
    return {k: v for k, v in data.items() if k in ("core_backtrace", "duphash", "crash_function")
            and isinstance(v, str)}


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
            elems = compute_elements(core_fd, executable, rootdir, uid, gid)
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
    try:
        postprocess(args.directory, args.uid, args.gid)
    except Exception as exc:  # noqa: BLE001 - detached: log, don't crash
        hooklog.log(f"postprocess {args.directory}: {type(exc).__name__}: {exc}", error=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
