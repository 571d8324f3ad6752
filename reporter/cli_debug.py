"""``crashkit gdb MATCH [-- GDB-ARGS]`` (alias ``debug``) and ``crashkit dump MATCH -o FILE|-``.

Both take the newest crash the matches name (:func:`reporter.cli.resolve`). The stored core
is ``coredump`` (an ELF core, minimized or full) or ``coredump.zst``; a compressed one is
decompressed (zstd, xz, lz4, gzip, bzip2, by magic number), for gdb into a private temporary
file that is removed when gdb exits. gdb gets the executable resolved where the crash saw it
(inside ``container_rootfs``, or the chroot of ``rootdir``, with ``set sysroot`` so that the
shared libraries come from there too) and the debug-file directories of that root and the
host. A missing gdb, executable or core is a one-line error and exit 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from reporter.cli import add_match_arguments, resolve
from reporter.display import escape
from reporter.dumpdir import DumpDir
from reporter.errors import ReporterError
from reporter.listing import LOCK_TIMEOUT, read_text, stored_core

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, BinaryIO

CHUNK = 1 << 20
DEBUG_DIR = "/usr/lib/debug"
ELF_MAGIC = b"\x7fELF"


class DebugError(ReporterError):
    """The crash cannot be opened in the debugger or exported (exit 1)."""

    exit_code = 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gdb`` (alias ``debug``) and ``dump``."""
    p = subparsers.add_parser(
        "gdb", aliases=["debug"], help="open the newest matching crash in gdb",
        usage="%(prog)s [-h] [--spool DIR] [--debugger PATH] [--rootdir DIR] [MATCH ...] [-- GDB-ARGS ...]",
        description="Start gdb on the newest crash MATCH names, with its executable (resolved "
                    "in the container's or chroot's root, which becomes gdb's sysroot), its core "
                    "(decompressed to a private temporary file when stored compressed) and the "
                    "debug-file directories set. Arguments after -- go to gdb, e.g. "
                    "crashkit gdb 1234 -- -batch -ex bt.")
    add_match_arguments(p)
    p.add_argument("--debugger", metavar="PATH", help="the debugger to run (default $CRASHKIT_DEBUGGER, "
                                                      "$SYSTEMD_DEBUGGER, else gdb)")
    p.add_argument("--rootdir", metavar="DIR", help="the root the crashed process saw (default: the "
                                                    "crash's rootdir or container_rootfs, else /)")
    p.set_defaults(func=cmd_gdb, passthrough=[])

    p = subparsers.add_parser(
        "dump", help="write the newest matching crash's core, decompressed",
        description="Write the stored core of the newest crash MATCH names, decompressed, to FILE "
                    "or standard output. A core is binary: it is not written to a terminal.")
    add_match_arguments(p)
    p.add_argument("-o", "--output", metavar="FILE|-", default="-",
                   help="where to write the core (default - : standard output, not a terminal)")
    p.set_defaults(func=cmd_dump)


# ------------------------------------------------------------------------ the stored core


def _open_core(directory: str) -> tuple[BinaryIO, str, dict[str, Any]]:
    """The stored core of *directory* opened for reading (no symlink followed), its element
    name, and the elements gdb needs (executable, rootdir, container_rootfs)."""
    problems: dict[str, str] = {}
    with DumpDir.open(directory, readonly=True, timeout=LOCK_TIMEOUT) as dd:
        found = stored_core(dd)
        extra = {name: read_text(dd, name, problems) for name in
                 ("executable", "rootdir", "container_rootfs", "coredump_error")}
        if found is None:
            why = f" ({escape(extra['coredump_error'])})" if extra["coredump_error"] else ""
            raise DebugError(f"{escape(directory)} has no stored core (no coredump or "
                             f"coredump.zst element){why}")
        name, _ = found
        fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return os.fdopen(fd, "rb"), name, extra


def _decompressed(src: BinaryIO, name: str) -> Iterator[bytes]:
    """The core's bytes, decompressed if its magic number says so (:class:`DebugError` for
    data that is neither an ELF core nor compressed, or corrupt)."""
    from coripper.minimizer.compressed import HEAD_SIZE, detect_compression

    head = src.read(HEAD_SIZE)
    kind = detect_compression(head)
    if kind is None:
        if not head.startswith(ELF_MAGIC):
            raise DebugError(f"{name}: not an ELF core and not compressed (bad magic)")
        yield head
        while chunk := src.read(CHUNK):
            yield chunk
        return
    from coripper.minimizer.compressed import DecompressingReader

    src.seek(0)
    reader = DecompressingReader(src, kind)
    first = True
    while chunk := reader.read(CHUNK):
        if first and not chunk.startswith(ELF_MAGIC):
            raise DebugError(f"{name}: {kind} data that is not an ELF core")
        first = False
        yield chunk
    if reader.error:
        raise DebugError(f"{name}: {reader.error}")
    if first:
        raise DebugError(f"{name}: empty {kind} stream")


def copy_core(src: BinaryIO, name: str, dst: BinaryIO, label: str) -> int:
    """Write the decompressed core to *dst* with progress on a terminal; returns its size."""
    from coripper.progress import Progress

    total = os.fstat(src.fileno()).st_size
    done = 0
    with Progress(label, total if name == "coredump" else None) as progress:
        for chunk in _decompressed(src, name):
            dst.write(chunk)
            done += len(chunk)
            progress.update(done)
    return done


# ------------------------------------------------------------------------ dump


def cmd_dump(args: argparse.Namespace) -> int:
    """``crashkit dump``: the core, decompressed, to ``-o FILE`` or stdout (never a terminal)."""
    to_stdout = args.output == "-"
    if to_stdout and sys.stdout.isatty():
        raise DebugError("refusing to write a binary core to a terminal: use -o FILE or redirect "
                         "standard output")
    row, count = resolve(args)
    _note_count(row, count)
    src, name, _ = _open_core(row["directory"])
    with src:
        if to_stdout:
            sys.stdout.flush()
            copy_core(src, name, sys.stdout.buffer, "writing core")
            sys.stdout.buffer.flush()
            return 0
        fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as dst:
            try:
                copy_core(src, name, dst, f"writing {args.output}")
            except BaseException:
                dst.close()
                os.unlink(args.output)  # no half-written core left behind
                raise
    return 0


def _note_count(row: dict[str, Any], count: int) -> None:
    if count > 1:
        print(f"crashkit: {count} problems match, using the newest: {escape(row['name'])}",
              file=sys.stderr)


# ------------------------------------------------------------------------ gdb


def find_debugger(option: str | None) -> str:
    """The debugger to run: *option*, ``$CRASHKIT_DEBUGGER``, ``$SYSTEMD_DEBUGGER``, ``gdb``."""
    name = option or os.environ.get("CRASHKIT_DEBUGGER") or os.environ.get("SYSTEMD_DEBUGGER") or "gdb"
    found = shutil.which(name)
    if found is None:
        hint = "" if option else " (install gdb, or name one with --debugger=PATH)"
        raise DebugError(f"debugger '{name}' not found{hint}")
    return found


def crash_root(extra: dict[str, Any], rootdir: str | None) -> tuple[str | None, str | None]:
    """``(sysroot, executable path inside it)`` of a crash: ``--rootdir`` or the ``rootdir``
    element (a chroot: its ``executable`` names the host path, the root in front) or a
    ``container_rootfs`` (its ``executable`` is the path inside the container); ``None``
    for a crash on the host."""
    exe = extra["executable"]
    root = rootdir or extra["rootdir"]
    if root is None and extra["container_rootfs"]:
        root = extra["container_rootfs"]
        if not os.path.isdir(root):
            raise DebugError(f"container_rootfs {escape(root)} is gone (the container stopped?): "
                             "name the container's files with --rootdir DIR")
    if root is None or os.path.realpath(root) == "/":
        return None, exe
    root = root.rstrip("/")
    if exe is not None and exe.startswith(root + "/"):
        exe = exe[len(root):]  # a chroot's crash names the host path
    return root, exe


def executable_path(root: str | None, exe: str | None) -> str:
    """The host path of the crashed executable, resolved below *root* without leaving it
    (:class:`coripper.unwinder.rootfs.RootFS`); :class:`DebugError` when there is none."""
    if exe is None:
        raise DebugError("the crash names no executable (no executable element)")
    if root is None:
        if not os.path.isfile(exe):
            raise DebugError(f"executable {escape(exe)} not found (deleted or upgraded since the crash?)")
        return exe
    from coripper.unwinder.rootfs import RootFS

    try:
        with RootFS.open(root) as fs:
            if not fs.is_file(exe):
                raise DebugError(f"executable {escape(exe)} not found below {escape(root)}")
            inside = fs.realpath(exe)
    except OSError as exc:
        raise DebugError(f"root {escape(root)}: {exc.strerror}") from None
    return root + inside


def gdb_argv(debugger: str, exe: str, core: str, root: str | None, extra_args: list[str]) -> list[str]:
    """The debugger's command line (pure): settings with ``-iex`` (before the files load),
    the user's GDB-ARGS, then the executable and the core."""
    dirs = [f"{root}{DEBUG_DIR}", DEBUG_DIR] if root else [DEBUG_DIR]
    argv = [debugger]
    if root:
        argv += ["-iex", f"set sysroot {root}"]
    argv += ["-iex", "set debug-file-directory " + ":".join(dirs)]
    return argv + list(extra_args) + [exe, core]


def _private_copy(src: BinaryIO, name: str) -> tuple[str, str]:
    """Decompress the core into a new 0700 directory (``$TMPDIR``, else /var/tmp: a core may
    not fit a memory-backed /tmp); returns ``(directory, core path)``."""
    base = os.environ.get("TMPDIR") or ("/var/tmp" if os.path.isdir("/var/tmp") else None)
    tmpdir = tempfile.mkdtemp(prefix="crashkit-gdb-", dir=base)
    path = os.path.join(tmpdir, "core")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as dst:
            copy_core(src, name, dst, "decompressing core")
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return tmpdir, path


def _run(argv: list[str]) -> int:
    """Run the debugger in the foreground: ^C belongs to it; SIGTERM/SIGHUP end us cleanly
    (the temporary core is removed on the way out)."""
    def _leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, _leave) for s in (signal.SIGTERM, signal.SIGHUP)}
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        proc = subprocess.Popen(argv, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            return proc.wait()
        except BaseException:
            proc.terminate()
            proc.wait()
            raise
    finally:
        signal.signal(signal.SIGINT, old_int)
        for s, handler in old.items():
            signal.signal(s, handler)


def cmd_gdb(args: argparse.Namespace) -> int:
    """``crashkit gdb``: gdb's exit status."""
    debugger = find_debugger(args.debugger)
    row, count = resolve(args)
    _note_count(row, count)
    src, name, extra = _open_core(row["directory"])
    tmpdir = None
    with src:
        root, exe = crash_root(extra, args.rootdir)
        exe_path = executable_path(root, exe)
        head = src.read(len(ELF_MAGIC))
        src.seek(0)
        if head == ELF_MAGIC:
            core = os.path.join(row["directory"], name)
        else:
            tmpdir, core = _private_copy(src, name)
    try:
        return _run(gdb_argv(debugger, exe_path, core, root, args.passthrough))
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
