"""Compressed cores: systemd-coredump's ``.zst``/``.xz``/``.lz4`` files, our ``coredump.zst``.

A compressed core is read as a stream: it is decompressed on the fly and minimized in one pass
(:func:`coripper.minimizer.stream.minimize_stream`), so a 4 GiB core never lands on disk decompressed.
Where random access is needed (the unwinder), :func:`seekable_core` gives the *minimized* core
in an anonymous temporary file: it holds everything a backtrace reads (docs/coripper.md).

Decompression errors do not raise out of a read: the reader ends there (EOF) and keeps the
error in :attr:`DecompressingReader.error`, so the minimizer writes a best-effort core marked
truncated, exactly as for a core that was cut off.

Importing this module is cheap (``coripper CORE`` imports it for :func:`detect_compression`):
each decompressor is imported when a magic number asks for it, :mod:`tempfile` when
:func:`seekable_core` needs a temporary file.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator

from ..errors import CoreFormatError
from .stream import MinimizeOptions, MinimizeReport, minimize_stream

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import Any, BinaryIO, cast
else:
    from .lighttyping import cast

#: Magic numbers, as file(1) knows them; the longest is 6 bytes.
MAGIC = {
    "zstd": b"\x28\xb5\x2f\xfd",
    "xz": b"\xfd7zXZ\x00",
    "lz4": b"\x04\x22\x4d\x18",
    "gzip": b"\x1f\x8b",
    "bzip2": b"BZh",
}
HEAD_SIZE = 6


def detect_compression(head: bytes) -> str | None:
    """The compression whose magic ``head`` starts with ("zstd", "xz", "lz4", "gzip",
    "bzip2"), or None (an ELF core, or anything else)."""
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def _decompressor(src: BinaryIO, kind: str) -> io.BufferedIOBase:
    if kind == "zstd":
        import zstandard
        return cast(io.BufferedIOBase, zstandard.ZstdDecompressor().stream_reader(
            src, read_across_frames=True, closefd=False))
    if kind == "xz":
        import lzma
        return cast(io.BufferedIOBase, lzma.LZMAFile(src, "rb"))
    if kind == "lz4":
        import lz4.frame
        return cast(io.BufferedIOBase, lz4.frame.LZ4FrameFile(src, "rb"))
    if kind == "gzip":
        import gzip
        return cast(io.BufferedIOBase, gzip.GzipFile(fileobj=src, mode="rb"))
    if kind == "bzip2":
        import bz2
        return cast(io.BufferedIOBase, bz2.BZ2File(src, "rb"))
    raise ValueError(f"unknown compression {kind!r}")


class DecompressingReader(io.RawIOBase):
    """The decompressed bytes of ``src`` as a raw, forward-only stream; a decompression error
    ends the stream and is kept in :attr:`error` (one line naming the format and the offset)."""

    def __init__(self, src: BinaryIO, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.error: str | None = None
        self.produced = 0
        self._inner = _decompressor(src, kind)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.error is not None:
            return 0
        view = memoryview(buffer).cast("B")
        try:
            n = self._inner.readinto(view) or 0
        except EOFError:
            self.error = f"{self.kind} data ends early (after {self.produced:,} bytes)"
            return 0
        except Exception as exc:  # noqa: BLE001 - each library has its own error classes
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.error = f"corrupt {self.kind} data after {self.produced:,} bytes: {detail}"
            return 0
        self.produced += n
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._inner.close()
        super().close()


def peek_head(src: BinaryIO) -> bytes:
    """The first bytes of ``src`` without consuming them (seek back, or a buffered peek)."""
    try:
        if src.seekable():
            pos = src.tell()
            head = src.read(HEAD_SIZE)
            src.seek(pos)
            return head
    except (OSError, ValueError):
        pass
    peek = getattr(src, "peek", None)
    return bytes(peek(HEAD_SIZE)[:HEAD_SIZE]) if peek is not None else b""


def minimize_compressed(src: BinaryIO, kind: str, dst: BinaryIO | None,
                        options: MinimizeOptions | None = None) -> MinimizeReport:
    """Decompress ``src`` (``kind`` from :func:`detect_compression`) and minimize it in one pass.

    A decompression error mid-way gives a best-effort core (``truncated``, with the error as a
    warning); one before the ELF headers raises :class:`CoreFormatError` naming it.
    """
    reader = DecompressingReader(src, kind)
    buffered = io.BufferedReader(reader, 1 << 20)
    import copy

    opts = copy.copy(options) if options is not None else MinimizeOptions()
    opts.source_compression = kind
    try:
        report = minimize_stream(buffered, dst, opts)
    except CoreFormatError as exc:
        if reader.error is not None:
            raise CoreFormatError(reader.error) from None
        raise CoreFormatError(f"{exc} (after {kind} decompression)") from None
    finally:
        buffered.close()
    if reader.error is not None:
        report.truncated = True
        report.warnings.append(reader.error)
    return report


@contextlib.contextmanager
def seekable_core(path: str | os.PathLike[str], src: BinaryIO | None = None
                  ) -> Iterator[tuple[BinaryIO, list[str]]]:
    """The core at ``path`` (or the open ``src``) for random access, with warnings: the file
    itself when it is an ELF core, else its minimized core in an anonymous temporary file."""
    with contextlib.ExitStack() as stack:
        f = src if src is not None else stack.enter_context(open(path, "rb"))
        kind = detect_compression(peek_head(f))
        if kind is None:
            yield f, []
            return
        import tempfile

        tmp = stack.enter_context(tempfile.TemporaryFile(prefix="crashkit-core-"))
        report = minimize_compressed(f, kind, cast("BinaryIO", tmp),
                                     MinimizeOptions(hash_algorithm=None))
        tmp.seek(0)
        yield cast("BinaryIO", tmp), list(report.warnings)
