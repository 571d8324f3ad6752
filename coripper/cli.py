"""The ``coripper`` command: ``coripper CORE > OUT``, ``-o OUT``, ``coripper - < CORE``, ``--info``.

Start-up is most of the time of ``coripper CORE > OUT`` (bench/coripper_start.py): what only one
path needs is imported on that path (the decompressors when a magic number asks for one, the
``--info`` formatter, zstandard for ``--zstd``); ``-o OUT``'s temporary file is made here
rather than with :mod:`tempfile`, whose imports (shutil, random, and through them zlib, bz2,
lzma) cost more than the minimization.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator

from .minimizer.compressed import detect_compression, minimize_compressed, peek_head
from .minimizer.elfcore import ELFMAG
from .errors import CoreFormatError, CoripperError
from .minimizer.stream import MinimizeOptions, MinimizeReport, minimize_file, minimize_stream

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import Any, BinaryIO, cast
else:
    from .minimizer.lighttyping import cast

if TYPE_CHECKING:
    import argparse

_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _bad(message: str) -> Exception:
    """The error an option's type function raises (argparse prints it as the usage error)."""
    import argparse     # already loaded: only argparse calls the type functions

    return argparse.ArgumentTypeError(message)


def parse_size(text: str) -> int:
    """``4096``, ``64K``, ``8M``, ``1G`` -> bytes."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in "kmg" else ""
    try:
        value = int(t[:len(t) - len(unit)], 0) * _SUFFIX[unit]
    except ValueError:
        raise _bad(f"bad size {text!r}") from None
    if value <= 0:
        raise _bad(f"size must be positive: {text!r}")
    return value


def parse_range(text: str) -> tuple[int, int]:
    """``START-END`` (hex with 0x or decimal) -> (start, end)."""
    try:
        a, b = text.split("-", 1)
        start, end = int(a, 0), int(b, 0)
    except ValueError:
        raise _bad(f"bad range {text!r} (want START-END)") from None
    if end <= start:
        raise _bad(f"empty range {text!r}")
    if start < 0 or end > 1 << 64:
        raise _bad(f"range {text!r} outside the 64-bit address space")
    return start, end


def parse_seconds(text: str) -> float:
    """``5``, ``0.5`` -> seconds (positive, finite)."""
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"bad number of seconds {text!r}") from None
    if not 0 < value < float("inf"):
        raise _bad(f"seconds must be positive: {text!r}")
    return value


class _NamedSink:
    """A binary output that names itself in the errors it raises.

    The engine seeks in a seekable output to patch headers; with ``seekable=False`` it spools
    the kept data and writes sequentially instead.
    """

    def __init__(self, f: BinaryIO, name: str, seekable: bool) -> None:
        self.f, self.name, self._seekable = f, name, seekable

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as exc:
            if exc.filename is not None or exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, self.name) from None

    def write(self, data: Any) -> int:
        return int(self._call(self.f.write, data))

    def flush(self) -> None:
        self._call(self.f.flush)

    def seek(self, pos: int, whence: int = 0) -> int:
        return int(self._call(self.f.seek, pos, whence))

    def tell(self) -> int:
        return int(self._call(self.f.tell))

    def seekable(self) -> bool:
        return self._seekable


def _positional_writes(fd: int) -> bool:
    """True when seek + write lands where it should: a regular file not opened O_APPEND."""
    import fcntl
    try:
        return (stat.S_ISREG(os.fstat(fd).st_mode)
                and not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)
    except OSError:
        return False


def _create_temporary(directory: str, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file in *directory*, as :func:`tempfile.mkstemp` makes it (``O_EXCL``, mode 0600
    like the kernel's cores: a minimized core still holds stacks and registers, a random name
    retried on a clash); returns its descriptor and path."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        path = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", directory)


@contextlib.contextmanager
def _output_file(path: str) -> Iterator[_NamedSink]:
    """Open ``-o OUT``: a regular file (new or existing) is replaced atomically, so it appears
    only when complete and an error leaves any previous file untouched; a device or FIFO
    (``/dev/null``) is written in place, never replaced."""
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(path, "wb") as f:
            yield _NamedSink(f, path, _positional_writes(f.fileno()))
        return
    target = os.path.realpath(path)     # -o LINK replaces the link's target, not the link
    directory = os.path.dirname(target) or "."
    try:
        fd, tmp = _create_temporary(directory, f".{os.path.basename(target)}.", ".coripper-tmp")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, directory) from None
    try:
        with open(fd, "wb") as f:
            yield _NamedSink(f, path, True)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _refuse_non_elf_stream(src: BinaryIO) -> None:
    """Fail fast on a stream that does not even start with the ELF magic (``/dev/zero``, a
    typo'd pipe), instead of reading it to EOF as stream mode otherwise does: such input is
    not a kernel core pipe, and may be endless. Only looks at bytes already buffered."""
    peek = getattr(src, "peek", None)
    head = peek(len(ELFMAG)) if peek is not None else b""
    if len(head) >= len(ELFMAG) and head[:len(ELFMAG)] != ELFMAG:
        raise CoreFormatError("not an ELF file (bad magic)")


def build_parser() -> argparse.ArgumentParser:
    """coripper's argument parser (also the source of its man page and completion)."""
    import argparse     # not at start-up: quick_args parses the common forms without it

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:
            """Usage errors as one line (the project's CLI contract), not argparse's usage block."""
            self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    p = Parser(
        prog="coripper",
        description="Minimize an ELF core dump, keeping every thread's backtrace, the modules' "
                    "build-ids and what gdb/libthread_db/eu-stack need. CORE '-' reads a stream "
                    "(pipe) in one pass.")
    p.add_argument("core", metavar="CORE", help="core file, or - for standard input; zstd, xz, "
                                                "lz4, gzip and bzip2 cores (systemd-coredump's) "
                                                "are decompressed on the fly")
    p.add_argument("-o", "--output", metavar="OUT", help="write here instead of standard output")
    p.add_argument("--zstd", action="store_true", help="zstd-compress the output")
    p.add_argument("--info", action="store_true",
                   help="print threads, modules and what would be kept; write no core")
    p.add_argument("--json", action="store_true", help="with --info: print JSON")
    p.add_argument("--keep-heap", action="store_true", help="also keep the brk heap")
    p.add_argument("--max-stack", metavar="BYTES", type=parse_size,
                   help="keep at most BYTES of stack above each thread's SP (e.g. 256K)")
    p.add_argument("--keep", metavar="START-END", type=parse_range, action="append", default=[],
                   help="also keep this address range (repeatable)")
    p.add_argument("--hash", choices=("blake3", "sha256", "none"), default="blake3",
                   help="stream mode: hash the whole input for the provenance note (default "
                        "blake3, about 3.5x faster than sha256; 'none' skips what is not kept "
                        "without copying it); file mode never hashes")
    p.add_argument("--analysis-budget", metavar="SECONDS", type=parse_seconds,
                   help="stop analysing after SECONDS (time waiting on input and output not "
                        "counted): the rest of the input is drained unread and the output, "
                        "with what was kept so far, is marked truncated (exit 1); default: "
                        "no budget")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


#: What ``build_parser().parse_args([CORE])`` gives besides ``core`` (tests/test_cli_coripper.py
#: checks the two never drift apart).
QUICK_DEFAULTS: dict[str, object] = {
    "output": None, "zstd": False, "info": False, "json": False, "keep_heap": False,
    "max_stack": None, "hash": "blake3", "analysis_budget": None, "debug": False}


def _plain(word: str) -> bool:
    return word == "-" or not word.startswith("-")


def quick_args(argv: list[str]) -> argparse.Namespace | None:
    """``CORE``, ``CORE -o OUT`` and ``-o OUT CORE`` parsed without argparse (whose import and
    parser building cost more than minimizing a typical core), as argparse would; ``None`` for
    anything else, which argparse parses."""
    if len(argv) == 1 and _plain(argv[0]):
        core, output = argv[0], None
    elif len(argv) == 3 and argv[1] in ("-o", "--output") and _plain(argv[0]) and _plain(argv[2]):
        core, output = argv[0], argv[2]
    elif len(argv) == 3 and argv[0] in ("-o", "--output") and _plain(argv[1]) and _plain(argv[2]):
        core, output = argv[2], argv[1]
    else:
        return None
    if output == "-":
        return None     # argparse's business (an output named "-")
    from types import SimpleNamespace

    args = SimpleNamespace(core=core, keep=[], **QUICK_DEFAULTS)
    args.output = output
    return cast("argparse.Namespace", args)


def _is_stream(path: str, f: BinaryIO) -> bool:
    if path == "-":
        return True
    try:
        return not stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    except OSError:
        return True


def _minimize(args: argparse.Namespace, src: BinaryIO, dst: _NamedSink | None
              ) -> MinimizeReport:
    opts = MinimizeOptions(keep_heap=args.keep_heap, max_stack=args.max_stack,
                           keep_ranges=tuple(args.keep),
                           hash_algorithm=None if args.hash == "none" else args.hash,
                           analysis_budget=args.analysis_budget)
    fn: Callable[[BinaryIO, BinaryIO | None, MinimizeOptions], MinimizeReport]
    kind = detect_compression(peek_head(src))
    if kind is not None:    # systemd-coredump's .zst/.xz/.lz4 cores: decompressed as a stream
        def fn(s: BinaryIO, d: BinaryIO | None, o: MinimizeOptions) -> MinimizeReport:
            return minimize_compressed(s, kind, d, o)
    elif _is_stream(args.core, src):
        _refuse_non_elf_stream(src)
        fn = minimize_stream
    else:
        fn = minimize_file
    if dst is not None and args.zstd:
        import zstandard  # lazily: the hook's import closure stays stdlib-only
        with zstandard.ZstdCompressor(level=19).stream_writer(
                cast("BinaryIO", dst), closefd=False) as zdst:
            return fn(src, zdst, opts)
    return fn(src, dst, opts)  # type: ignore[arg-type]   # _NamedSink is file-like enough


def _quiet_stdout() -> None:
    """After EPIPE on stdout: point fd 1 at /dev/null so the exit-time flush stays silent."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status (0 ok, 1 best-effort output from a damaged core)."""
    if sys.stdout is None and (args.info or not args.output):
        raise CoripperError("standard output is closed")
    src_ctx = open(args.core, "rb") if args.core != "-" else None
    if src_ctx is None and sys.stdin is None:
        raise CoripperError("standard input is closed")
    src = src_ctx if src_ctx is not None else sys.stdin.buffer
    try:
        if args.info:
            from .minimizer.info import format_json, format_text

            report = _minimize(args, src, None)
            try:
                sys.stdout.write(format_json(report) + "\n" if args.json else format_text(report))
                sys.stdout.flush()
            except BrokenPipeError:     # `coripper --info CORE | head`: not an error
                _quiet_stdout()
                return 0
            return 1 if report.truncated else 0
        if args.output:
            with _output_file(args.output) as out:
                report = _minimize(args, src, out)
        else:
            if sys.stdout.isatty():
                raise CoripperError("refusing to write a core to a terminal (use -o OUT or > OUT)")
            sys.stdout.flush()
            out = _NamedSink(sys.stdout.buffer, "standard output",
                             _positional_writes(sys.stdout.fileno()))
            try:
                report = _minimize(args, src, out)
                out.flush()
            except BrokenPipeError:
                _quiet_stdout()     # the reader went away: the core it got is incomplete
                raise
    finally:
        if src_ctx is not None:
            src_ctx.close()
    for w in report.warnings:
        print(f"coripper: warning: {w}", file=sys.stderr)
    return 1 if report.truncated else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``coripper`` console script."""
    args = quick_args(sys.argv[1:] if argv is None else list(argv))
    if args is None:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.json and not args.info:
            parser.error("--json needs --info")
    try:
        return run(args)
    except (CoripperError, OSError, ValueError) as exc:
        if args.debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            msg = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
        print(f"coripper: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
