"""A bounded, counting decompressing reader for gzip, xz, bzip2 and zstd streams.

Output is produced in bounded steps and counted as it is produced, so a decompression bomb
is refused after at most a few MiB beyond the limit, never after it has been inflated. The
end of the compressed stream is checked: a stream that stops early is "truncated", and bytes
after it that are not another member of the same format are refused.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import Any, BinaryIO

from reporter.server.errors import RejectedInput, TooLarge

MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
)
FOREIGN_MAGIC = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x04\x22\x4d\x18", "an lz4 stream"),
    (b"{", "JSON (a uReport belongs on /faf/reports/new/)"),
)
STEP = 256 * 1024          # output bytes per decompression step
INPUT_CHUNK = 64 * 1024
ZSTD_INPUT_CHUNK = 1024    # zstd has no output bound per call: an RLE block inflates 1 byte to 128 KiB


def sniff(head: bytes) -> str:
    """The compression of a stream starting with *head*: gzip, xz, zstd, bzip2 or tar (none)."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    for magic, what in FOREIGN_MAGIC:
        if head.startswith(magic):
            raise RejectedInput(f"the body is {what}, not a .tar.gz/.tar.xz/.tar.zst problem-directory archive")
    raise RejectedInput("the body is not a gzip, xz, zstd or bzip2 compressed tar archive")


def _new_decompressor(fmt: str) -> Any:
    if fmt == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if fmt == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    if fmt == "bzip2":
        return bz2.BZ2Decompressor()
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj()


class DecompressingReader(io.RawIOBase):
    """Readable decompressed view of *raw* (compression *fmt*), with size and ratio limits."""

    def __init__(self, raw: BinaryIO, fmt: str, *, max_output: int, max_ratio: int,
                 ratio_floor: int) -> None:
        super().__init__()
        self._raw = raw
        self.fmt = fmt
        self.max_output = max_output
        self.max_ratio = max_ratio
        self.ratio_floor = ratio_floor
        self.consumed = 0      # compressed bytes read from raw
        self.produced = 0      # decompressed bytes handed out
        self._buf = bytearray()
        self._pending = b""    # compressed input not yet given to the decompressor
        self._done = False
        self._d: Any = None if fmt == "tar" else _new_decompressor(fmt)

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, b: Any) -> int:
        """Fill *b* with decompressed bytes (0 at the end of the stream)."""
        want = len(b)
        while not self._buf and not self._done:
            self._step(want)
        n = min(want, len(self._buf))
        b[:n] = self._buf[:n]
        del self._buf[:n]
        return n

    def _read_raw(self, size: int) -> bytes:
        data = self._raw.read(size)
        self.consumed += len(data)
        return data

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        self.produced += len(data)
        if self.produced > self.max_output:
            raise TooLarge(f"the archive decompresses to more than {self.max_output} bytes")
        if self.produced > self.ratio_floor and self.produced > self.max_ratio * max(self.consumed, 1):
            raise TooLarge(f"decompression bomb refused: {self.produced} bytes from {self.consumed} "
                           f"compressed bytes (over {self.max_ratio}:1)")
        self._buf += data

    def _input(self) -> bytes:
        """Compressed input for the next step; EOF here means the stream was cut short."""
        if not self._pending:
            self._pending = self._read_raw(ZSTD_INPUT_CHUNK if self.fmt == "zstd" else INPUT_CHUNK)
            if not self._pending:
                raise RejectedInput(f"truncated {self.fmt} stream: the archive ends early")
        data, self._pending = self._pending, b""
        return data

    def _step(self, want: int) -> None:
        if self.fmt == "tar":
            data = self._read_raw(max(want, INPUT_CHUNK))
            self._done = not data
            self._emit(data)
            return
        d = self._d
        try:
            if self.fmt == "zstd":
                data = d.decompress(self._input())
            elif self.fmt == "gzip":
                data = d.decompress(self._input(), STEP)
                self._pending = d.unconsumed_tail
            elif d.needs_input:  # xz, bzip2: they buffer input themselves
                data = d.decompress(self._input(), STEP)
            else:
                data = d.decompress(b"", STEP)
        except RejectedInput:
            raise
        except Exception as exc:  # zlib.error, LZMAError, OSError (bz2), ZstdError, EOFError
            raise RejectedInput(f"corrupt {self.fmt} stream: {exc}") from None
        self._emit(data)
        if d.eof:
            self._member_end()

    def _member_end(self) -> None:
        rest = self._d.unused_data + self._pending
        self._pending = b""
        magic = MAGIC_FOR[self.fmt]
        while len(rest) < len(magic):
            more = self._read_raw(INPUT_CHUNK)
            if not more:
                break
            rest += more
        if not rest:
            self._done = True
        elif rest.startswith(magic):
            self._d = _new_decompressor(self.fmt)  # concatenated members, as gzip allows
            self._pending = rest
        elif rest.strip(b"\0") == b"" and self._drain_zeros():
            self._done = True  # zero padding after the stream (tape-style blocking)
        else:
            raise RejectedInput(f"unexpected data after the end of the {self.fmt} stream")

    def _drain_zeros(self) -> bool:
        while chunk := self._read_raw(INPUT_CHUNK):
            if chunk.strip(b"\0"):
                return False
        return True


MAGIC_FOR = {name: magic for magic, name in MAGIC}
