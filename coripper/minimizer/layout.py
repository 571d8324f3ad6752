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

from .elfcore import (AT_BASE, AT_ENTRY, AT_PHDR, AT_SYSINFO_EHDR, PF_W, PT_LOAD, CoreNotes,
                      FileMapping, ProgramHeader)

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from .lighttyping import NamedTuple

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


class Plan:
    """What to keep, decided from the notes and program headers (a plain class, not a dataclass:
    see :mod:`coripper.minimizer.streamtypes`).

    ``loads``: the PT_LOAD segments with data, sorted by ``p_vaddr``. ``modules``: the NT_FILE
    mappings at file offset 0 (first pages). ``exe_start``: the mapping of the executable at file
    offset 0. ``synth_base``/``synth_size``: where the synthesized link_map chain goes.
    ``header_pages``: the modules whose first page was dumped.
    """

    __slots__ = ("page", "loads", "wants", "modules", "exe_path", "exe_start", "interp_path",
                 "synth_base", "synth_size", "warnings", "header_pages")

    def __init__(self, page: int, loads: list[ProgramHeader], wants: list[Want],
                 modules: list[FileMapping], exe_path: str | None, exe_start: int | None,
                 interp_path: str | None, synth_base: int, synth_size: int,
                 warnings: list[str] | None = None, header_pages: list[FileMapping] | None = None
                 ) -> None:
        self.page = page
        self.loads = loads
        self.wants = wants
        self.modules = modules
        self.exe_path = exe_path
        self.exe_start = exe_start
        self.interp_path = interp_path
        self.synth_base = synth_base
        self.synth_size = synth_size
        self.warnings: list[str] = [] if warnings is None else warnings
        self.header_pages: list[FileMapping] = [] if header_pages is None else header_pages


def page_down(x: int, page: int) -> int:
    """``x`` rounded down to a multiple of ``page`` (a power of two)."""
    return x & ~(page - 1)


def page_up(x: int, page: int) -> int:
    """``x`` rounded up to a multiple of ``page`` (a power of two)."""
    return (x + page - 1) & ~(page - 1)


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


class _Wants:
    """The ranges a plan keeps, in the order they were decided (``--info`` lists them so), and
    the warnings met on the way."""

    __slots__ = ("wants", "warnings")

    def __init__(self) -> None:
        self.wants: list[Want] = []
        self.warnings: list[str] = []

    def __call__(self, start: int, end: int, reason: str) -> None:
        """Keep ``[start, end)`` (an empty or inverted range is dropped)."""
        if end > start:
            self.wants.append(Want(start, end, reason))


class _Loads:
    """The dumped ``PT_LOAD`` segments (``p_filesz > 0``) sorted by ``p_vaddr``, searched by
    bisection."""

    __slots__ = ("segs", "starts")

    def __init__(self, phdrs: Sequence[ProgramHeader]) -> None:
        self.segs = sorted((p for p in phdrs if p.p_type == PT_LOAD and p.p_filesz > 0),
                           key=lambda p: p.p_vaddr)
        self.starts = [p.p_vaddr for p in self.segs]

    def at(self, addr: int) -> ProgramHeader | None:
        """The segment holding ``addr``."""
        i = bisect.bisect_right(self.starts, addr) - 1
        if i >= 0 and self.segs[i].contains(addr):
            return self.segs[i]
        return None

    def above(self, addr: int) -> ProgramHeader | None:
        """The first segment starting above ``addr``."""
        i = bisect.bisect_right(self.starts, addr)
        return self.segs[i] if i < len(self.segs) else None


def plan_keep(notes: CoreNotes, phdrs: Sequence[ProgramHeader], *, max_stack: int | None = None,
              keep_heap: bool = False, keep_ranges: Sequence[tuple[int, int]] = ()) -> Plan:
    """Decide the ranges to keep (see docs/coripper.md, "What is kept"), in this order:
    stacks and thread control blocks, first pages of mapped files, the vDSO, the data that
    libthread_db reads, a static executable's .bss, the heap (``keep_heap``), the small
    segments of a core without NT_FILE, and ``keep_ranges``."""
    page = notes.page_size
    loads = _Loads(phdrs)
    want = _Wants()
    _want_stacks(notes, loads, page, max_stack, want)
    modules, header_pages = _want_header_pages(notes, loads, page, want)
    vdso = notes.auxv.get(AT_SYSINFO_EHDR)
    seg = loads.at(vdso) if vdso else None
    if seg is not None:
        want(seg.p_vaddr, seg.end, "vdso")
    exe_path = notes.executable
    interp_path = _interp_path(notes)
    _want_thread_data(notes, loads, exe_path, interp_path, want)
    if exe_path is not None and interp_path is None:
        _want_static_bss(notes, loads, exe_path, want)
    if keep_heap and exe_path is not None:
        _want_heap(notes, loads, exe_path, want)
    if not notes.mappings:
        _want_without_nt_file(notes, phdrs, loads, want)
    for start, end in keep_ranges:
        want(page_down(start, page), page_up(end, page), f"--keep {start:#x}-{end:#x}")
    synth_base, synth_size = _synth_area(notes, phdrs, modules, page)
    return Plan(page, loads.segs, want.wants, modules, exe_path, _exe_start(notes), interp_path,
                synth_base, synth_size, want.warnings, header_pages)


def _want_stacks(notes: CoreNotes, loads: _Loads, page: int, max_stack: int | None,
                 want: _Wants) -> None:
    """Every thread's stack, from SP (minus the red zone, page-aligned) to the end of the
    dumped segment (at most ``max_stack`` bytes), and the memory around its thread pointer."""
    for t in notes.threads:
        lo = page_down(max(t.sp - RED_ZONE, 0), page)
        seg = loads.at(t.sp) or loads.at(lo)
        if seg is not None:
            start = max(lo, seg.p_vaddr)
        else:
            # SP in no dumped segment (overflow into the guard gap): the nearest memory above.
            seg = loads.above(t.sp)
            if seg is None:
                want.warnings.append(f"thread {t.tid}: no memory at or above SP {t.sp:#x}; "
                                     "registers only")
                continue
            want.warnings.append(f"thread {t.tid}: SP {t.sp:#x} outside every dumped segment; "
                                 f"keeping memory from {seg.p_vaddr:#x}")
            start = seg.p_vaddr
        end = seg.end if max_stack is None else min(seg.end, page_up(start + max_stack, page))
        want(start, end, f"stack tid {t.tid}")
        # libthread_db reads struct pthread around the thread pointer.
        if t.tls:
            want(page_down(max(t.tls - TLS_BELOW, 0), page), page_up(t.tls + TLS_ABOVE, page),
                 f"tcb tid {t.tid}")


def _want_header_pages(notes: CoreNotes, loads: _Loads, page: int,
                       want: _Wants) -> tuple[list[FileMapping], list[FileMapping]]:
    """The first page (ELF header, phdrs, build-id note) of every file mapped at offset 0.

    Returns the modules (one per start address) and those whose first page was dumped: only
    a dumped page can be kept or read, and the kernel dumps it for ELF files only
    (coredump_filter bit 4), so a file that is not ELF, mapped 65,530 times, adds no want."""
    modules: list[FileMapping] = []
    header_pages: list[FileMapping] = []
    seen: set[int] = set()
    dumped = _Overlaps(loads.segs)
    for m in notes.mappings:
        if m.file_offset == 0 and m.start not in seen:
            seen.add(m.start)
            modules.append(m)
            end = min(m.end, m.start + page)
            if dumped.meets(m.start, end):
                header_pages.append(m)
                want(m.start, end, f"elf header {m.path}")
    return modules, header_pages


def _exe_start(notes: CoreNotes) -> int | None:
    """Start of the executable's mapping at file offset 0 (the highest one at or below
    AT_PHDR), or None."""
    exe_path = notes.executable
    if exe_path is None:
        return None
    at_phdr = notes.auxv.get(AT_PHDR, 0)
    return max((m.start for m in notes.mappings
                if m.path == exe_path and m.file_offset == 0 and m.start <= at_phdr),
               default=None)


def _interp_path(notes: CoreNotes) -> str | None:
    """Path of the mapping holding AT_BASE (the dynamic loader), or None (static)."""
    base = notes.auxv.get(AT_BASE)
    if not base:
        return None
    return next((m.path for m in notes.mappings if m.start <= base < m.end), None)


def _want_thread_data(notes: CoreNotes, loads: _Loads, exe_path: str | None,
                      interp_path: str | None, want: _Wants) -> None:
    """The writable file-backed data that libthread_db (gdb's "Thread 0x... (LWP n)") reads the
    thread list heads and nptl state from: ld.so's (_rtld_global: _dl_stack_user/_dl_stack_used,
    also r_debug), libc's/libpthread's (__nptl_nthreads, ...), and a static executable's
    (<= STATIC_DATA_MAX per segment). A few pages each."""
    data_of = {interp_path: "ld.so data"}
    for path in {m.path for m in notes.mappings}:       # each path once, not each mapping
        if THREAD_LIB.match(os.path.basename(path)):
            data_of[path] = "thread library data"
    if exe_path is not None and interp_path is None:
        data_of[exe_path] = "static executable data"
    writable = _Overlaps([seg for seg in loads.segs if seg.p_flags & PF_W])
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


def _want_static_bss(notes: CoreNotes, loads: _Loads, exe_path: str, want: _Wants) -> None:
    """Static executable: nptl's list heads (_dl_stack_user, ...) live in its .bss, whose tail
    past the file's last page is the anonymous mapping right after it."""
    exe_end = max(m.end for m in notes.mappings if m.path == exe_path)
    seg = loads.at(exe_end)
    if seg is not None and seg.p_vaddr == exe_end and seg.p_flags & PF_W:
        want(seg.p_vaddr, min(seg.end, seg.p_vaddr + STATIC_DATA_MAX), "static executable bss")


def _want_heap(notes: CoreNotes, loads: _Loads, exe_path: str, want: _Wants) -> None:
    """``--keep-heap``: the writable anonymous segments within HEAP_WINDOW above the
    executable, up to the first one separated from it by a gap (the brk heap)."""
    exe_end = max(m.end for m in notes.mappings if m.path == exe_path)
    mapped = merge_ranges((m.start, m.end) for m in notes.mappings)
    for seg in loads.segs:
        if not (exe_end <= seg.p_vaddr < exe_end + HEAP_WINDOW) or not seg.p_flags & PF_W:
            continue
        i = bisect.bisect_right(mapped, (seg.p_vaddr, 1 << 64)) - 1
        if i >= 0 and mapped[i][0] <= seg.p_vaddr < mapped[i][1]:
            continue
        want(seg.p_vaddr, seg.end, "heap")
        if seg.p_vaddr > exe_end:      # the first gap-separated anonymous segment is brk
            break


def _want_without_nt_file(notes: CoreNotes, phdrs: Sequence[ProgramHeader], loads: _Loads,
                          want: _Wants) -> None:
    """No NT_FILE (qemu-user writes none): modules cannot be located, so keep the small dumped
    segments, where modules' ELF headers, .dynamic, r_debug and link_map live."""
    want.warnings.append("no NT_FILE note: keeping every dumped segment up to "
                         f"{NO_NT_FILE_SEGMENT_MAX} bytes")
    for seg in loads.segs:
        if seg.p_filesz <= NO_NT_FILE_SEGMENT_MAX:
            want(seg.p_vaddr, seg.end, "small segment (no NT_FILE)")
    if not notes.auxv.get(AT_BASE):
        _want_static_exe_data(phdrs, notes.auxv, want)


def _synth_area(notes: CoreNotes, phdrs: Sequence[ProgramHeader], modules: Sequence[FileMapping],
                page: int) -> tuple[int, int]:
    """Where the synthesized r_debug and link_map chain (one entry per module) go, and their
    page-rounded size: the lowest gap free of every segment and mapping."""
    size = page_up(R_DEBUG_SIZE + sum(LINK_MAP_SIZE + _module_name_len(m) for m in modules)
                   + LINK_MAP_SIZE + 1, page)
    occupied = [(p.p_vaddr, p.p_vaddr + max(p.p_memsz, p.p_filesz))
                for p in phdrs if p.p_type == PT_LOAD] + [(m.start, m.end) for m in notes.mappings]
    return find_gap(occupied, size, page), size


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
