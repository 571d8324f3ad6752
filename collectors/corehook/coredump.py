"""The core on stdin into the problem directory: minimized, full (optionally zstd) or none.

The kernel pipes the core once; every path here reads it to EOF (``drain_fd``) so the kernel
can reap the process. The core is capped at RLIMIT_CORE (``%c``) and ``max_core_size``.
coripper and zstandard are imported lazily, inside the functions that need them, so the hook's
start-up import closure stays the standard library + :mod:`reporter.dumpdir`.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import BinaryIO

    from collectors.corehook.args import HookArgs
    from collectors.corehook.config import HookConfig
    from coripper.minimizer.stream import MinimizeOptions, MinimizeReport
    from reporter.dumpdir import DumpDir

CHUNK = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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
    """What :func:`save_core` saved and what the core said about the crash site."""

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
        analyse_only(stdin_fd, result, cfg)
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
    if report.budget_exceeded:
        result.error = ("core analysis stopped at the analysis_budget; the rest of the core "
                        f"({report.bytes_in} bytes in all) was drained unread (truncated)")
    elif report.truncated:
        result.error = f"core ended early after {report.bytes_in} bytes (truncated)"


def _minimize_options(cfg: HookConfig) -> MinimizeOptions:
    """coripper options for the hook: hash the input only when ``hash_core`` is set; analyse
    for at most ``analysis_budget`` seconds (0: no budget)."""
    from coripper.minimizer.stream import MinimizeOptions

    return MinimizeOptions(hash_algorithm="sha256" if cfg.hash_core else None,
                           analysis_budget=cfg.analysis_budget or None)


def analyse_only(stdin_fd: int, result: CoreResult, cfg: HookConfig) -> None:
    """Crash site of the core on *stdin_fd* into *result* without saving it; drains stdin."""
    from coripper.errors import CoripperError
    from coripper.minimizer.stream import minimize_stream

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
    from coripper.minimizer.stream import minimize_stream

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
        _analyse_saved(dd, name, result, cfg)


def _analyse_saved(dd: DumpDir, name: str, result: CoreResult, cfg: HookConfig) -> None:
    """Crash site of a saved full core (reads headers and notes only)."""
    from coripper.errors import CoripperError
    from coripper.minimizer.stream import minimize_file

    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dd._fd_checked())
    with open(fd, "rb") as f:
        try:
            report = minimize_file(f, None, _minimize_options(cfg))
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
