"""``crashkit backtrace CORE|DIR [--json] [--rootdir DIR]``: unwind a core in pure Python.

DIR is a problem directory: its ``coredump`` (or ``coredump.zst``), ``executable``, ``rootdir`` and
``container_rootfs`` elements are read (never written: saving the elements is
the collectors' job, through :func:`coripper.unwinder.backtrace.backtrace_elements`). The root the crash
saw (``--rootdir``, ``rootdir``, ``container_rootfs``) is opened as a :class:`RootFS`: no symlink
on the way to it is followed, and every file the core names is resolved below it.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import stat
import sys
from collections.abc import Iterator
from typing import BinaryIO

from coripper.errors import CoreFormatError
from coripper.unwinder.rootfs import RegularFile, RootFS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``backtrace`` subcommand."""
    p = subparsers.add_parser(
        "backtrace", help="unwind every thread of a core (satyr core_backtrace, duphash)",
        description="Unwind every thread of an ELF core in pure Python and print the frames, or "
                    "with --json satyr's core_backtrace plus duphash and crash_function.")
    p.add_argument("core", metavar="CORE|DIR", help="an ELF core file (also zstd/xz/lz4/gzip/bzip2 "
                                                    "compressed, as systemd-coredump stores them) "
                                                    "or a problem directory")
    p.add_argument("--json", action="store_true",
                   help='print {"core_backtrace": ..., "duphash": ..., "crash_function": ...}')
    p.add_argument("--rootdir", help="root directory the process saw (container); default: "
                                     "the problem directory's rootdir element, else its "
                                     "container_rootfs if it exists, else /")
    p.add_argument("--executable", help="the crashed program on disk (default: from the core's "
                                         "NT_FILE, or the problem directory's executable)")
    p.add_argument("--component", default="", help="duphash prefix (the component, as ABRT)")
    p.set_defaults(func=run)


def _read_element(directory: str, name: str) -> str | None:
    try:
        fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None                     # a FIFO or device is no element
        text = f.read(1 << 20).decode("utf-8", "replace").strip()
    return text or None


def _core_element(directory: RootFS, name: str) -> RegularFile:
    """A problem directory's core: ``coredump``, else ``coredump.zst`` (opened below the
    directory, regular files only)."""
    try:
        plain: RegularFile | None = directory.open_file("coredump")
    except OSError:
        plain = None
    if plain is not None and plain.size > 0:
        return plain
    if plain is not None:
        plain.close()
    packed = os.path.join(name, "coredump.zst")
    try:
        core = directory.open_file("coredump.zst")
    except OSError:
        raise CoreFormatError(f"{name}: no coredump or coredump.zst element") from None
    from coripper.minimizer.compressed import HEAD_SIZE, detect_compression
    if detect_compression(core.pread(0, HEAD_SIZE)) != "zstd":
        core.close()
        raise CoreFormatError(f"{packed}: not zstd data (bad magic)")
    return core


def _open_root(rootdir: str, what: str) -> RootFS:
    """``rootdir`` opened as the process's root, following no symlink (coripper.unwinder.rootfs)."""
    try:
        return RootFS.open(rootdir)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise ValueError(f"{what} {rootdir} is not a directory") from None
        raise ValueError(f"{what} {rootdir}: {exc.strerror} (opened without following "
                         "symlinks)") from None


def _problem_dir_root(target: str, warnings: list[str]) -> RootFS:
    """The root of a problem directory's crash: its ``rootdir`` element, else its
    ``container_rootfs`` (the host when that is gone), else the host."""
    rootdir = _read_element(target, "rootdir")
    if rootdir is not None:
        return _open_root(rootdir, "rootdir")
    rootfs = _read_element(target, "container_rootfs")
    if rootfs is None:
        return RootFS.host()
    try:
        return _open_root(rootfs, "container_rootfs")
    except ValueError as exc:
        if "is not a directory" not in str(exc):
            raise
        warnings.append(f"container_rootfs {rootfs} is gone: modules are looked up on the host")
        return RootFS.host()


def _executable_below(executable: str | None, root: RootFS) -> str | None:
    """The problem directory's ``executable`` as a path below ``root``: a chroot's crash names
    it with the chroot's host path in front."""
    if executable is None or root.is_host:
        return executable
    prefix = root.name.rstrip("/")
    if executable.startswith(prefix + "/"):
        return executable[len(prefix):]
    return executable


@contextlib.contextmanager
def _dir_fd(path: str) -> Iterator[int]:
    """A descriptor of the problem directory the user named (their path, symlinks and all)."""
    fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def run(args: argparse.Namespace) -> int:
    """Handler of ``crashkit backtrace``."""
    from coripper.unwinder.backtrace import core_backtrace
    from coripper.minimizer.compressed import seekable_core

    target = args.core
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        src: BinaryIO | None = None
        element_exe: str | None = None
        if os.path.isdir(target):
            directory = stack.enter_context(RootFS.from_fd(stack.enter_context(_dir_fd(target))))
            src = stack.enter_context(_core_element(directory, target)).stream()
            element_exe = _read_element(target, "executable")
        elif not os.path.exists(target):
            raise OSError(2, "No such file or directory", target)
        if args.rootdir is not None:
            root = stack.enter_context(_open_root(args.rootdir, "rootdir"))
        elif src is not None:
            root = stack.enter_context(_problem_dir_root(target, notes))
        else:
            root = stack.enter_context(RootFS.host())
        executable = _executable_below(element_exe, root)
        exe_root = None
        if args.executable is not None:
            # the option names a host file (the user's own choice), not one below the root
            exe_root = stack.enter_context(RootFS.host())
            executable = os.path.abspath(args.executable)
            if not exe_root.is_file(executable):
                raise ValueError(f"--executable {args.executable}: not a file")
        with seekable_core(target, src) as (core, warnings):
            bt = core_backtrace(core, rootdir=root, executable=executable,
                                executable_root=exe_root)
    bt.warnings[:0] = warnings + notes
    if args.json:
        doc = {"core_backtrace": json.loads(bt.to_json()), "duphash": bt.duphash(args.component),
               "crash_function": bt.crash_function()}
        print(json.dumps(doc, indent=2))
        return 0
    for i, thread in enumerate(bt.threads):
        if i:
            print()
        print(f"Thread {thread.tid}" + (" (crash thread)" if thread.crash_thread else ""))
        # Every frame as gdb numbers them: inline and tail-call frames are marked.
        for n, f in enumerate(thread.all_frames()):
            where = (f"{os.path.basename(f.file_name)}+0x{f.build_id_offset:x}" if f.file_name
                     else "??")
            mark = " [inline]" if f.inlined else " [tail call]" if f.tail_call else ""
            print(f"#{n:<3} 0x{f.address:016x} {f.function_name or '??'}{mark} ({where})")
    for w in bt.warnings:
        print(f"crashkit: warning: {w}", file=sys.stderr)
    return 0

