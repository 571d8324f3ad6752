"""ELF core writer over a seekable sink: placeholder header and phdr table, data, then the
table and header patched last.

Output layout (offsets relative to where the sink stood when we started)::

    Elf64_Ehdr (patched at the end) | Elf64_Phdr table (PT_NOTEs first, then PT_LOADs sorted by
    vaddr; patched at the end into room reserved here) | PT_NOTE data (original notes, verbatim)
    | PT_LOAD data, each at an offset congruent to its vaddr modulo the page size
    | our PT_NOTE (provenance)

The table comes first, as in the kernel's cores, so that a minimized core can itself be read as
a stream (``zstdcat small.core.zst | coripper --info -``). How many segments the output has is
known only at the end: the engine reserves room for a bound; should more be needed, the table
goes after the data instead (still valid ELF; file mode reads it, a stream keeps only notes).

Every segment has ``p_memsz == p_filesz``; overlapping loads are clipped so the table is sorted
and non-overlapping (``readelf``/``eu-readelf`` clean).
"""

from __future__ import annotations

import struct
import time

from .elfcore import EHDR_SIZE, ET_CORE, PHDR_SIZE, PT_LOAD, PT_NOTE
from .streambudget import Waits

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import BinaryIO

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")          # Elf64_Phdr, as elfcore.pack_program_header
MAX_OUT_SEGMENTS = 0xFFFE   # stay below PN_XNUM
_ZEROS = bytes(65536)
_SMALL_WRITE = 64 << 10     # writes shorter than this are gathered ...
_WRITE_BUFFER = 1 << 20     # ... up to this much


class OutSegment:
    """One segment of the output core (``offset`` is relative to the start of the output).

    A plain class with ``__slots__``: no dataclass in the minimizer (see streamtypes)."""

    __slots__ = ("p_type", "vaddr", "offset", "size", "flags", "reason")

    def __init__(self, p_type: int, vaddr: int, offset: int, size: int, flags: int,
                 reason: str) -> None:
        self.p_type = p_type
        self.vaddr = vaddr
        self.offset = offset
        self.size = size
        self.flags = flags
        self.reason = reason

    def __repr__(self) -> str:
        return (f"OutSegment(p_type={self.p_type}, vaddr={self.vaddr:#x}, offset={self.offset}, "
                f"size={self.size}, flags={self.flags}, reason={self.reason!r})")


class CoreWriter:
    """Writes an ELF core to ``sink`` (must be seekable); call :meth:`finish` once at the end."""

    def __init__(self, sink: BinaryIO, e_ident: bytes, e_machine: int, e_flags: int,
                 page: int, reserve_phdrs: int = 0, waits: Waits | None = None) -> None:
        self.sink = sink
        self.waits = waits if waits is not None else Waits()    # seconds spent in sink calls
        self.base = sink.tell()
        self.e_ident = e_ident
        self.e_machine = e_machine
        self.e_flags = e_flags
        self.page = page
        self.pos = 0
        self.segments: list[OutSegment] = []
        self._normalized: tuple[int, list[OutSegment]] | None = None   # (len(segments), loads)
        self._open: OutSegment | None = None
        self._buffer = bytearray()      # small writes not yet passed to the sink
        self.reserved = max(0, min(reserve_phdrs, MAX_OUT_SEGMENTS))
        self._raw(bytes(EHDR_SIZE))
        self._pad_to(EHDR_SIZE + self.reserved * PHDR_SIZE)

    def _raw(self, data: bytes | memoryview) -> None:
        self.pos += len(data)
        if len(data) < _SMALL_WRITE:
            # gathered: ~65,530 one-page loads make 256 writes, not 65,530
            self._buffer += data
            if len(self._buffer) < _WRITE_BUFFER:
                return
            data = b""
        t = time.perf_counter()
        self._flush()
        if data:
            self.sink.write(data)
        self.waits.seconds += time.perf_counter() - t

    def _flush(self) -> None:
        if self._buffer:
            self.sink.write(self._buffer)
            self._buffer = bytearray()      # a new one: the sink may still hold a view of it

    def _pad_to(self, offset: int) -> None:
        while self.pos < offset:
            self._raw(_ZEROS[:min(len(_ZEROS), offset - self.pos)])

    def add_note(self, data: bytes, reason: str) -> None:
        """Append a ``PT_NOTE`` segment holding ``data`` (4-byte aligned)."""
        self._pad_to((self.pos + 3) & ~3)
        self.segments.append(OutSegment(PT_NOTE, 0, self.pos, len(data), 0, reason))
        self._raw(data)

    def begin_load(self, vaddr: int, flags: int, reason: str) -> None:
        """Start a ``PT_LOAD`` at ``vaddr``; follow with :meth:`write` calls and :meth:`end_load`."""
        page = self.page
        self._pad_to(self.pos + ((vaddr - self.pos) % page))
        self._open = OutSegment(PT_LOAD, vaddr, self.pos, 0, flags, reason)

    def write(self, data: bytes | memoryview) -> None:
        assert self._open is not None
        self._raw(data)
        self._open.size += len(data)

    def end_load(self) -> OutSegment | None:
        seg, self._open = self._open, None
        if seg is not None and seg.size:
            self.segments.append(seg)
            return seg
        return None

    def add_load(self, vaddr: int, data: bytes, flags: int, reason: str) -> None:
        self.begin_load(vaddr, flags, reason)
        self.write(data)
        self.end_load()

    def find(self, vaddr: int, size: int) -> OutSegment | None:
        """The load segment holding all of ``[vaddr, vaddr+size)``, if any."""
        for s in self.segments:
            if s.p_type == PT_LOAD and s.vaddr <= vaddr and vaddr + size <= s.vaddr + s.size:
                return s
        return None

    def overlaps(self, vaddr: int, size: int) -> bool:
        return any(s.p_type == PT_LOAD and s.vaddr < vaddr + size and vaddr < s.vaddr + s.size
                   for s in self.segments)

    def patch(self, offset: int, data: bytes) -> None:
        """Overwrite already-written bytes at output ``offset``."""
        t = time.perf_counter()
        self._flush()
        self.sink.seek(self.base + offset)
        self.sink.write(data)
        self.sink.seek(self.base + self.pos)
        self.waits.seconds += time.perf_counter() - t

    def normalized_loads(self) -> list[OutSegment]:
        """Loads sorted by vaddr, clipped so none overlaps its predecessor (computed once per
        set of segments: the engine and :meth:`finish` both ask)."""
        if self._normalized is not None and self._normalized[0] == len(self.segments):
            return self._normalized[1]
        out: list[OutSegment] = []
        for s in sorted((s for s in self.segments if s.p_type == PT_LOAD),
                        key=lambda s: (s.vaddr, -s.size)):
            if out and s.vaddr < out[-1].vaddr + out[-1].size:
                cut = out[-1].vaddr + out[-1].size - s.vaddr
                if cut >= s.size:
                    continue
                s = OutSegment(PT_LOAD, s.vaddr + cut, s.offset + cut, s.size - cut, s.flags, s.reason)
            out.append(s)
        self._normalized = (len(self.segments), out[:MAX_OUT_SEGMENTS])
        return self._normalized[1]

    def max_loads(self) -> int:
        """How many loads the table can hold besides the notes and a last note."""
        return MAX_OUT_SEGMENTS - sum(1 for s in self.segments if s.p_type == PT_NOTE) - 1

    def finish(self, last_note: bytes = b"", reason: str = "provenance",
               loads: list[OutSegment] | None = None) -> int:
        """Write the phdr table, then ``last_note`` as a final PT_NOTE, and patch the ELF header.

        ``loads`` (default :meth:`normalized_loads`) are the loads to list, at most
        :meth:`max_loads` of them (the rest is cut). The provenance note goes last so that its
        size (which differs between file and stream mode) moves nothing else. Returns the
        output size in bytes.
        """
        notes = [s for s in self.segments if s.p_type == PT_NOTE]
        if loads is None:
            loads = self.normalized_loads()
        loads = loads[:MAX_OUT_SEGMENTS - len(notes) - 1]
        count = len(notes) + len(loads) + (1 if last_note else 0)
        in_front = count <= self.reserved
        if in_front:
            phoff = EHDR_SIZE
            self._pad_to((self.pos + 3) & ~3)
            note_at = self.pos
        else:
            self._pad_to((self.pos + 7) & ~7)
            phoff = self.pos
            note_at = phoff + count * PHDR_SIZE
        if last_note:
            notes.append(OutSegment(PT_NOTE, 0, note_at, len(last_note), 0, reason))
        phdrs = bytearray(len(notes + loads) * PHDR_SIZE)
        for i, s in enumerate(notes + loads):
            align = 4 if s.p_type == PT_NOTE else self.page
            _PHDR.pack_into(phdrs, i * PHDR_SIZE, s.p_type, s.flags, s.offset, s.vaddr, 0, s.size,
                            s.size, align)
        if in_front:
            self.patch(phoff, bytes(phdrs))
        else:
            self._raw(bytes(phdrs))
        self._raw(last_note)
        end = self.pos
        ehdr = _EHDR.pack(self.e_ident, ET_CORE, self.e_machine, 1, 0, phoff, 0, self.e_flags,
                          EHDR_SIZE, PHDR_SIZE, count, 0, 0, 0)
        self.patch(0, ehdr)
        return end
