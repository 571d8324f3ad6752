"""Planning what a minimized core keeps (pure: core notes + program headers in, ranges out).

Everything here is decided right after the notes, before any memory segment is read, so the
single-pass stream mode and the file mode make the same decisions. The executable's
``PT_DYNAMIC`` (and through it ``DT_DEBUG``) is the only thing discovered later, while reading.
"""

from __future__ import annotations

import bisect
import heapq
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .elfcore import (AT_BASE, AT_ENTRY, AT_PHDR, AT_SYSINFO_EHDR, PF_W, PT_LOAD, CoreNotes,
                      FileMapping, ProgramHeader)

RED_ZONE = 128            # x86-64 SysV ABI red zone below SP (aarch64 has none; harmless)
TLS_BELOW = 8192          # struct pthread precedes tpidr on aarch64 (TLS_DTV_AT_TP) ...
TLS_ABOVE = 4096          # ... and follows fs_base on x86-64 (TLS_TCB_AT_TP)
HEAP_WINDOW = 1 << 30     # brk heap starts within this distance above the executable's end
SYNTH_FLOOR = 0x10000     # never place synthetic data below (vm.mmap_min_addr)
THREAD_LIB = re.compile(r"^lib(c|pthread)(\.so|-[0-9])")
STATIC_DATA_MAX = 1 << 20   # of a static executable's .data (holds nptl's state there)
NO_NT_FILE_SEGMENT_MAX = 64 << 10
LINK_MAP_SIZE = 40        # public struct link_map: l_addr, l_name, l_ld, l_next, l_prev
R_DEBUG_SIZE = 40         # struct r_debug (version 1)


class Want(NamedTuple):
    """A virtual address range to keep and why (a named tuple: one per mapped file)."""

    start: int
    end: int
    reason: str


@dataclass
class Plan:
    """What to keep, decided from the notes and program headers."""

    page: int
    loads: list[ProgramHeader]                  # PT_LOAD with data, sorted by p_vaddr
    wants: list[Want]
    modules: list[FileMapping]                  # NT_FILE mappings at file offset 0 (first pages)
    exe_path: str | None
    exe_start: int | None                       # mapping of the executable at file offset 0
    interp_path: str | None
    synth_base: int                             # where the synthesized link_map chain goes
    synth_size: int
    warnings: list[str] = field(default_factory=list)
    header_pages: list[FileMapping] = field(default_factory=list)   # modules whose first
                                                                    # page was dumped


def page_down(x: int, page: int) -> int:
    return x & ~(page - 1)


def page_up(x: int, page: int) -> int:
    return (x + page - 1) & ~(page - 1)


def _segment_at(loads: Sequence[ProgramHeader], starts: list[int], addr: int) -> ProgramHeader | None:
    i = bisect.bisect_right(starts, addr) - 1
    if i >= 0 and loads[i].contains(addr):
        return loads[i]
    return None


def _segment_above(loads: Sequence[ProgramHeader], starts: list[int], addr: int) -> ProgramHeader | None:
    i = bisect.bisect_right(starts, addr)
    return loads[i] if i < len(loads) else None


class _Overlaps:
    """Segments sorted by ``p_vaddr``; :meth:`overlapping` finds those meeting a range by
    bisection (a process may map libc or ld.so ~65,530 times: no scan of every segment each)."""

    def __init__(self, segs: Sequence[ProgramHeader]) -> None:
        self.segs = segs
        self.starts = [s.p_vaddr for s in segs]
        # running maximum of the ends: monotonic even where hostile segments overlap
        self.max_end: list[int] = []
        for s in segs:
            self.max_end.append(max(s.end, self.max_end[-1]) if self.max_end else s.end)

    def overlapping(self, start: int, end: int) -> Sequence[ProgramHeader]:
        """The segments that may overlap ``[start, end)``, in vaddr order (a superset only
        where segments overlap each other, which kernel cores never do)."""
        lo = bisect.bisect_right(self.max_end, start)
        hi = bisect.bisect_left(self.starts, end)
        return self.segs[lo:hi]

    def meets(self, start: int, end: int) -> bool:
        """True when some segment overlaps ``[start, end)``."""
        lo = bisect.bisect_right(self.max_end, start)
        hi = bisect.bisect_left(self.starts, end)
        for seg in self.segs[lo:hi]:
            if seg.p_vaddr < end and start < seg.end:
                return True
        return False


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-adjacent union of ``[start, end)`` ranges."""
    out: list[list[int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def _module_name_len(m: FileMapping) -> int:
    return len(m.path.encode("utf-8", "surrogateescape")) + 1


def plan_keep(notes: CoreNotes, phdrs: Sequence[ProgramHeader], *, max_stack: int | None = None,
              keep_heap: bool = False, keep_ranges: Sequence[tuple[int, int]] = ()) -> Plan:
    """Decide the ranges to keep (see docs/coripper.md, "What is kept")."""
    page = notes.page_size
    loads = sorted((p for p in phdrs if p.p_type == PT_LOAD and p.p_filesz > 0),
                   key=lambda p: p.p_vaddr)
    starts = [p.p_vaddr for p in loads]
    wants: list[Want] = []
    warnings: list[str] = []

    def want(start: int, end: int, reason: str) -> None:
        if end > start:
            wants.append(Want(start, end, reason))

    # Stacks: from SP (minus the red zone, page-aligned) to the end of the dumped segment.
    for t in notes.threads:
        lo = page_down(max(t.sp - RED_ZONE, 0), page)
        seg = _segment_at(loads, starts, t.sp) or _segment_at(loads, starts, lo)
        if seg is not None:
            start = max(lo, seg.p_vaddr)
        else:
            # SP in no dumped segment (overflow into the guard gap): the nearest memory above.
            seg = _segment_above(loads, starts, t.sp)
            if seg is None:
                warnings.append(f"thread {t.tid}: no memory at or above SP {t.sp:#x}; registers only")
                continue
            warnings.append(f"thread {t.tid}: SP {t.sp:#x} outside every dumped segment; "
                            f"keeping memory from {seg.p_vaddr:#x}")
            start = seg.p_vaddr
        end = seg.end if max_stack is None else min(seg.end, page_up(start + max_stack, page))
        want(start, end, f"stack tid {t.tid}")
        # libthread_db reads struct pthread around the thread pointer.
        if t.tls:
            want(page_down(max(t.tls - TLS_BELOW, 0), page), page_up(t.tls + TLS_ABOVE, page),
                 f"tcb tid {t.tid}")

    # First page (ELF header, phdrs, build-id note) of every file mapped at offset 0.
    modules: list[FileMapping] = []
    seen: set[int] = set()
    # Only a dumped first page can be kept or read: the kernel dumps it for ELF files only
    # (coredump_filter bit 4), so a file that is not ELF, mapped 65,530 times, adds no want.
    dumped = _Overlaps(loads)
    header_pages: list[FileMapping] = []
    for m in notes.mappings:
        if m.file_offset == 0 and m.start not in seen:
            seen.add(m.start)
            modules.append(m)
            end = min(m.end, m.start + page)
            if dumped.meets(m.start, end):
                header_pages.append(m)
                want(m.start, end, f"elf header {m.path}")

    auxv = notes.auxv
    vdso = auxv.get(AT_SYSINFO_EHDR)
    if vdso:
        seg = _segment_at(loads, starts, vdso)
        if seg is not None:
            want(seg.p_vaddr, seg.end, "vdso")

    exe_path = notes.executable
    exe_start = None
    if exe_path is not None:
        at_phdr = auxv.get(AT_PHDR, 0)
        exe_maps = [m for m in notes.mappings if m.path == exe_path]
        zero = [m for m in exe_maps if m.file_offset == 0 and m.start <= at_phdr]
        exe_start = max((m.start for m in zero), default=None)

    # libthread_db (gdb's "Thread 0x... (LWP n)") reads the thread list heads and nptl state from
    # the writable file-backed data of ld.so (_rtld_global: _dl_stack_user/_dl_stack_used, also
    # r_debug) and of libc/libpthread (__nptl_nthreads, ...). A few pages each.
    interp_path = None
    base = auxv.get(AT_BASE)
    if base:
        interp_path = next((m.path for m in notes.mappings if m.start <= base < m.end), None)
    data_of = {interp_path: "ld.so data"}
    for path in {m.path for m in notes.mappings}:       # each path once, not each mapping
        if THREAD_LIB.match(os.path.basename(path)):
            data_of[path] = "thread library data"
    if exe_path is not None and interp_path is None:
        data_of[exe_path] = "static executable data"
    writable = _Overlaps([seg for seg in loads if seg.p_flags & PF_W])
    for m in notes.mappings:
        reason = data_of.get(m.path)
        if reason is None:
            continue
        for seg in writable.overlapping(m.start, m.end):
            if seg.p_vaddr < m.end and m.start < seg.end:
                end = min(seg.end, m.end)
                if reason.startswith("static"):
                    end = min(end, max(seg.p_vaddr, m.start) + STATIC_DATA_MAX)
                want(max(seg.p_vaddr, m.start), end, reason)

    if exe_path is not None and interp_path is None:
        # static: nptl's list heads (_dl_stack_user, ...) live in the executable's .bss, whose
        # tail past the file's last page is the anonymous mapping right after it.
        exe_end = max(m.end for m in notes.mappings if m.path == exe_path)
        seg = _segment_at(loads, starts, exe_end)
        if seg is not None and seg.p_vaddr == exe_end and seg.p_flags & PF_W:
            want(seg.p_vaddr, min(seg.end, seg.p_vaddr + STATIC_DATA_MAX), "static executable bss")

    if keep_heap and exe_path is not None:
        exe_end = max(m.end for m in notes.mappings if m.path == exe_path)
        mapped = merge_ranges((m.start, m.end) for m in notes.mappings)
        for seg in loads:
            if not (exe_end <= seg.p_vaddr < exe_end + HEAP_WINDOW) or not seg.p_flags & PF_W:
                continue
            i = bisect.bisect_right(mapped, (seg.p_vaddr, 1 << 64)) - 1
            if i >= 0 and mapped[i][0] <= seg.p_vaddr < mapped[i][1]:
                continue
            want(seg.p_vaddr, seg.end, "heap")
            if seg.p_vaddr > exe_end:      # the first gap-separated anonymous segment is brk
                break

    if not notes.mappings:
        # No NT_FILE (qemu-user writes none): modules cannot be located, so keep the small
        # dumped segments, where modules' ELF headers, .dynamic, r_debug and link_map live.
        warnings.append("no NT_FILE note: keeping every dumped segment up to "
                        f"{NO_NT_FILE_SEGMENT_MAX} bytes")
        for seg in loads:
            if seg.p_filesz <= NO_NT_FILE_SEGMENT_MAX:
                want(seg.p_vaddr, seg.end, "small segment (no NT_FILE)")
        if not auxv.get(AT_BASE):
            _want_static_exe_data(phdrs, auxv, want)

    for start, end in keep_ranges:
        want(page_down(start, page), page_up(end, page), f"--keep {start:#x}-{end:#x}")

    synth_size = page_up(R_DEBUG_SIZE + sum(LINK_MAP_SIZE + _module_name_len(m) for m in modules)
                         + LINK_MAP_SIZE + 1, page)
    occupied = [(p.p_vaddr, p.p_vaddr + max(p.p_memsz, p.p_filesz))
                for p in phdrs if p.p_type == PT_LOAD] + [(m.start, m.end) for m in notes.mappings]
    synth_base = find_gap(occupied, synth_size, page)
    return Plan(page, loads, wants, modules, exe_path, exe_start, interp_path, synth_base,
                synth_size, warnings, header_pages)


def _want_static_exe_data(phdrs: Sequence[ProgramHeader], auxv: Mapping[int, int],
                          want: Callable[[int, int, str], None]) -> None:
    """Static program, no NT_FILE (qemu-user): keep the executable's writable segments.

    libthread_db walks nptl's thread list from its heads (``_dl_stack_user``/``_dl_stack_used``)
    in the executable's .bss, and the main thread's ``struct pthread`` is the first thing
    ``__libc_setup_tls`` takes from the brk heap, which qemu maps right after the .bss (one
    segment). Without NT_FILE the executable is the run of address-contiguous PT_LOADs (dumped
    or not) from the one holding AT_ENTRY; its writable ones are kept, <= 1 MiB each from
    their start (the heap part is cut there).
    """
    anchor = auxv.get(AT_ENTRY) or auxv.get(AT_PHDR)
    if not anchor:
        return
    segs = sorted((p for p in phdrs if p.p_type == PT_LOAD and p.p_memsz > 0),
                  key=lambda p: p.p_vaddr)
    i = next((k for k, p in enumerate(segs) if p.p_vaddr <= anchor < p.p_vaddr + p.p_memsz), None)
    if i is None:
        return
    end = segs[i].p_vaddr + segs[i].p_memsz
    for seg in segs[i + 1:]:
        if seg.p_vaddr != end:
            break
        end = seg.p_vaddr + seg.p_memsz
        if seg.p_flags & PF_W and seg.p_filesz > 0:
            want(seg.p_vaddr, min(seg.end, seg.p_vaddr + STATIC_DATA_MAX),
                 "static executable data (no NT_FILE)")


def find_gap(occupied: Iterable[tuple[int, int]], size: int, page: int) -> int:
    """Lowest page-aligned address >= SYNTH_FLOOR with ``size`` bytes free of ``occupied``
    (``[start, end)`` ranges in any order, overlapping or not).

    The ranges come off a heap in address order only as far as the gap: usually the first
    one, so ~131,000 ranges (mappings and segments) are not all sorted."""
    heap = [r for r in occupied if r[1] > r[0] and r[1] > SYNTH_FLOOR]
    heapq.heapify(heap)
    addr = SYNTH_FLOOR
    while heap:
        start, end = heapq.heappop(heap)
        if end <= addr:
            continue
        if start >= addr + size:
            break
        addr = page_up(end, page)
    return addr
