"""The ``coripper`` command: ``coripper CORE > OUT``, ``-o OUT``, ``coripper - < CORE``, ``--info``."""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import BinaryIO

from .errors import CoripperError
from .stream import MinimizeOptions, MinimizeReport, minimize_file, minimize_stream

_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``4096``, ``64K``, ``8M``, ``1G`` -> bytes."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in "kmg" else ""
    try:
        value = int(t[:len(t) - len(unit)], 0) * _SUFFIX[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad size {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return value


def parse_range(text: str) -> tuple[int, int]:
    """``START-END`` (hex with 0x or decimal) -> (start, end)."""
    try:
        a, b = text.split("-", 1)
        start, end = int(a, 0), int(b, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad range {text!r} (want START-END)") from None
    if end <= start:
        raise argparse.ArgumentTypeError(f"empty range {text!r}")
    return start, end


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="coripper",
        description="Minimize an ELF core dump, keeping every thread's backtrace, the modules' "
                    "build-ids and what gdb/libthread_db/eu-stack need. CORE '-' reads a stream "
                    "(pipe) in one pass.")
    p.add_argument("core", metavar="CORE", help="core file, or - for standard input")
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
    p.add_argument("--hash", choices=("sha256", "none"), default="sha256",
                   help="stream mode: hash the whole input for the provenance note (default "
                        "sha256; 'none' skips what is not kept without copying it, 2-3x faster "
                        "here); file mode never hashes")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _is_stream(path: str, f: BinaryIO) -> bool:
    if path == "-":
        return True
    try:
        return not stat.S_ISREG(os.fstat(f.fileno()).st_mode)
    except OSError:
        return True


def _minimize(args: argparse.Namespace, src: BinaryIO, dst: BinaryIO | None) -> MinimizeReport:
    opts = MinimizeOptions(keep_heap=args.keep_heap, max_stack=args.max_stack,
                           keep_ranges=tuple(args.keep),
                           hash_algorithm=None if args.hash == "none" else args.hash)
    fn = minimize_stream if _is_stream(args.core, src) else minimize_file
    if dst is not None and args.zstd:
        import zstandard  # lazily: the hook's import closure stays stdlib-only
        with zstandard.ZstdCompressor(level=19).stream_writer(dst, closefd=False) as zdst:
            return fn(src, zdst, opts)
    return fn(src, dst, opts)


def run(args: argparse.Namespace) -> int:
    """Run the command; return the exit status (0 ok, 1 best-effort output from a damaged core)."""
    from .info import format_json, format_text

    src_ctx = open(args.core, "rb") if args.core != "-" else None
    src = src_ctx if src_ctx is not None else sys.stdin.buffer
    try:
        if args.info:
            report = _minimize(args, src, None)
            sys.stdout.write(format_json(report) + "\n" if args.json else format_text(report))
            return 1 if report.truncated else 0
        if args.output:
            tmp = f"{args.output}.coripper-tmp"
            try:
                with open(tmp, "wb") as out:
                    report = _minimize(args, src, out)
                os.replace(tmp, args.output)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            if sys.stdout.isatty():
                raise CoripperError("refusing to write a core to a terminal (use -o OUT or > OUT)")
            sys.stdout.flush()
            report = _minimize(args, src, sys.stdout.buffer)
            sys.stdout.buffer.flush()
    finally:
        if src_ctx is not None:
            src_ctx.close()
    for w in report.warnings:
        print(f"coripper: warning: {w}", file=sys.stderr)
    return 1 if report.truncated else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``coripper`` console script."""
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
        if isinstance(exc, OSError) and exc.filename and exc.strerror:
            msg = f"{exc.filename}: {exc.strerror}"
        print(f"coripper: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
