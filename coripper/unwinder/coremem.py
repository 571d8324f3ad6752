"""A core's memory: the ``PT_LOAD`` segments of an ELF core, read by virtual address.

Reads go to the core file (seek + read, nothing mapped whole). Bytes a segment covers in
memory but not in the file (``p_memsz > p_filesz``) are supplied, like gdb does, from the file
backing that address (an ``NT_FILE`` mapping, when the segment is not writable) and otherwise
read as zeros. Addresses outside every segment are missing: :meth:`CoreMemory.read` returns None.
The backing files come open (:class:`coripper.unwinder.rootfs.RegularFile`, opened by the module
mapper below the process's root); this module never opens a path.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from coripper.minimizer import elfcore
from coripper.errors import CoreFormatError
from coripper.unwinder.rootfs import RegularFile

PF_W = 2


@dataclass(frozen=True)
class Segment:
    """One ``PT_LOAD`` of the core: ``[vaddr, vaddr + memsz)``, ``filesz`` bytes at ``offset``."""

    vaddr: int
    memsz: int
    offset: int
    filesz: int
    writable: bool

    @property
    def end(self) -> int:
        return self.vaddr + self.memsz


@dataclass(frozen=True)
class FileBacking:
    """An ``NT_FILE`` mapping resolved to an open file, for the fallback reads."""

    start: int
    end: int
    file_offset: int
    file: RegularFile


class CoreMemory:
    """Random access to a core's memory by virtual address."""

    def __init__(self, stream: BinaryIO, segments: Iterable[Segment],
                 backings: Iterable[FileBacking] = ()) -> None:
        self._stream = stream
        self._segments = sorted((s for s in segments if s.memsz > 0), key=lambda s: s.vaddr)
        self._starts = [s.vaddr for s in self._segments]
        self._backings = sorted(backings, key=lambda b: b.start)
        self._bstarts = [b.start for b in self._backings]
        try:
            self._size = os.fstat(stream.fileno()).st_size
        except (AttributeError, OSError, ValueError):
            pos = stream.tell()
            self._size = stream.seek(0, os.SEEK_END)
            stream.seek(pos)

    @classmethod
    def from_program_headers(cls, stream: BinaryIO,
                             phdrs: Sequence[elfcore.ProgramHeader]) -> "CoreMemory":
        """Build from a core's program headers (only ``PT_LOAD`` entries are used)."""
        segs = [Segment(p.p_vaddr, p.p_memsz, p.p_offset, min(p.p_filesz, p.p_memsz),
                        bool(p.p_flags & PF_W))
                for p in phdrs if p.p_type == elfcore.PT_LOAD]
        return cls(stream, segs)

    def set_file_backings(self, backings: Iterable[FileBacking]) -> None:
        """Install the on-disk files that back read-only mappings (see module docstring)."""
        self._backings = sorted(backings, key=lambda b: b.start)
        self._bstarts = [b.start for b in self._backings]

    @property
    def segments(self) -> list[Segment]:
        return list(self._segments)

    def close(self) -> None:
        """Forget the backing files (their owner, the unwind's FileCache, closes them; the core
        stream stays open)."""
        self.set_file_backings(())

    def _segment_at(self, addr: int) -> Segment | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self._segments[i].end:
            return self._segments[i]
        return None

    def _read_core(self, offset: int, size: int) -> bytes | None:
        if offset < 0 or offset + size > self._size:
            return None
        self._stream.seek(offset)
        data = self._stream.read(size)
        return data if len(data) == size else None

    def _read_backing(self, addr: int, size: int) -> bytes | None:
        i = bisect.bisect_right(self._bstarts, addr) - 1
        if i < 0 or addr + size > self._backings[i].end:
            return None
        b = self._backings[i]
        try:
            data = b.file.pread(b.file_offset + addr - b.start, size)
        except (OSError, ValueError):       # a read error, or the file was closed
            return None
        return data if len(data) == size else None

    def read(self, addr: int, size: int) -> bytes | None:
        """``size`` bytes at ``addr``, or None when any of them is not in the core."""
        if size < 0 or addr < 0:
            return None
        out = bytearray()
        while size > 0:
            seg = self._segment_at(addr)
            if seg is None:
                # Not in the core at all (e.g. a minimized core): gdb reads such addresses
                # from the file mapped there; so do we, else it is missing.
                nxt = bisect.bisect_right(self._starts, addr)
                k = size if nxt >= len(self._starts) else min(size, self._starts[nxt] - addr)
                chunk = self._read_backing(addr, k)
                if chunk is None:
                    return None
                out += chunk
                addr += k
                size -= k
                continue
            n = min(size, seg.end - addr)
            rel = addr - seg.vaddr
            if rel < seg.filesz:
                k = min(n, seg.filesz - rel)
                chunk = self._read_core(seg.offset + rel, k)
                if chunk is None:   # truncated core: the file ends inside the segment
                    return None
            else:
                k = n
                chunk = None if seg.writable else self._read_backing(addr, k)
                if chunk is None:
                    chunk = bytes(k)
            out += chunk
            addr += k
            size -= k
        return bytes(out)

    def read_u64(self, addr: int) -> int | None:
        """A little-endian 64-bit word at ``addr``, or None."""
        data = self.read(addr, 8)
        return None if data is None else struct.unpack("<Q", data)[0]

    def is_mapped(self, addr: int) -> bool:
        """True when ``addr`` lies in some ``PT_LOAD`` segment."""
        return self._segment_at(addr) is not None


def open_core_memory(stream: BinaryIO) -> tuple[elfcore.ElfHeader, tuple[elfcore.ProgramHeader, ...],
                                                  CoreMemory]:
    """Parse a core's ELF and program headers from ``stream`` and return its memory."""
    stream.seek(0)
    head = stream.read(64)
    header = elfcore.parse_elf_header(head)
    size = header.e_phnum * header.e_phentsize
    stream.seek(header.e_phoff)
    raw = stream.read(size)
    if len(raw) != size:
        raise CoreFormatError("core truncated inside its program headers")
    phdrs = elfcore.parse_program_headers(raw, header.e_phnum)
    return header, phdrs, CoreMemory.from_program_headers(stream, phdrs)
