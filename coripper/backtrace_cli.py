"""``crashkit backtrace CORE|DIR [--json] [--rootdir DIR]``: unwind a core in pure Python.

DIR is a problem directory: its ``coredump`` (or ``coredump.zst``), ``executable`` and ``rootdir``
elements are read (never written: saving the elements is
the collectors' job, through :func:`coripper.backtrace.backtrace_elements`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from coripper.errors import CoreFormatError


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
        fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        text = f.read(1 << 20).decode("utf-8", "replace").strip()
    return text or None


def _core_element(directory: str) -> str:
    """Path of a problem directory's core: ``coredump``, else ``coredump.zst``."""
    plain = os.path.join(directory, "coredump")
    if os.path.isfile(plain) and os.path.getsize(plain) > 0:
        return plain
    packed = os.path.join(directory, "coredump.zst")
    if not os.path.isfile(packed):
        raise CoreFormatError(f"{directory}: no coredump or coredump.zst element")
    from coripper.compressed import HEAD_SIZE, detect_compression
    with open(packed, "rb") as f:
        if detect_compression(f.read(HEAD_SIZE)) != "zstd":
            raise CoreFormatError(f"{packed}: not zstd data (bad magic)")
    return packed


def run(args: argparse.Namespace) -> int:
    """Handler of ``crashkit backtrace``."""
    from coripper.backtrace import core_backtrace
    from coripper.compressed import seekable_core

    target = args.core
    executable = args.executable
    rootdir = args.rootdir
    if os.path.isdir(target):
        executable = executable or _read_element(target, "executable")
        if rootdir is None:
            container_rootfs = _read_element(target, "container_rootfs")
            rootdir = _read_element(target, "rootdir") or (
                container_rootfs if container_rootfs and os.path.isdir(container_rootfs) else None)
        path = _core_element(target)
    elif os.path.exists(target):
        path = target
    else:
        raise OSError(2, "No such file or directory", target)
    if args.executable is not None and not os.path.isfile(args.executable):
        # only the explicit option: a problem directory's executable may be gone from disk
        raise ValueError(f"--executable {args.executable}: not a file")
    rootdir = rootdir or "/"
    if not os.path.isdir(rootdir):
        raise ValueError(f"rootdir {rootdir} is not a directory")
    with seekable_core(path) as (core, warnings):
        bt = core_backtrace(core, rootdir=rootdir, executable=executable)
    bt.warnings[:0] = warnings
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

