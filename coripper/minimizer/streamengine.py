"""The minimizer's engine: one forward pass over a :class:`~coripper.minimizer.streamin.CoreSource`.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`). Both modes
run this same engine (the file mode's source merely seeks over the gaps), so they make the same
decisions; see docs/coripper.md.
"""

from __future__ import annotations

import bisect
import struct

from .. import __version__
from .elfcore import (AT_BASE, AT_PHDR, AT_PHNUM, AT_SYSINFO_EHDR, DT_DEBUG, EHDR_SIZE, ET_DYN, PF_R, PF_W,
                      PHDR_SIZE, PN_XNUM, PT_DYNAMIC, PT_LOAD, PT_NOTE, PT_PHDR, CoreNotes,
                      ElfHeader, ModuleSummary, Note, ProgramHeader, note_end, parse_core_notes,
                      parse_dynamic,
                      parse_elf_header, parse_module_summary, parse_notes,
                      parse_program_headers)
from ..errors import CoreFormatError
from .layout import Plan, Want, merge_ranges, page_down, page_up, plan_keep
from .linkmap import LinkEntry, build_link_map, build_r_debug
from .provenance import build_provenance, find_provenance
from .streambudget import AnalysisClock, BudgetExceeded
from .streamin import CoreSource, StreamSource
from .streamindex import Watch, WatchIndex, fit_loads, module_ends, reasons_of
from .streamtypes import MinimizeOptions, MinimizeReport, ModuleInfo, ThreadInfo
from .writer import MAX_OUT_SEGMENTS, CoreWriter, OutSegment

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import Any, BinaryIO

MAX_PHDRS = 1 << 17             # program headers beyond this are ignored (with a warning)
MAX_NOTES = 64 << 20            # total note bytes we read and copy (and read after the memory)
MAX_NOTE_COUNT = 1 << 18        # notes parsed (a real core has ~6 per thread)
MAX_DYNAMIC = 64 << 10          # bytes of the executable's PT_DYNAMIC we keep and parse
SUMMARY_CACHE = 64              # distinct module first pages remembered (<= 64 KiB each)
_UNSEEN: Any = object()
VDSO_NAME = "[vdso]"            # the vdso's path in the report (as /proc/PID/maps)


class Engine:
    """One minimization: read headers and notes, plan what to keep, copy it to ``sink`` in a
    single forward pass while watching the pages that tell more (module headers, the
    executable's program headers and dynamic section), then synthesize the link map.

    Linear in the headers (up to sorting): nothing is looked up by scanning every mapping,
    segment or want (see :mod:`coripper.minimizer.streamindex`). ``options.analysis_budget`` bounds the
    time spent analysing; past it the rest of the input is drained, not copied."""

    def __init__(self, source: CoreSource, sink: BinaryIO, options: MinimizeOptions, mode: str) -> None:
        self.src = source
        self.sink = sink
        self.clock = AnalysisClock(options.analysis_budget, source.waits)
        self.budget_exceeded = False
        self.opts = options
        self.mode = mode
        self.warnings: list[str] = []
        self.truncated = False
        self.late_notes: list[ProgramHeader] = []   # PT_NOTEs after the memory, read after it
        self.previous_source: Any = None            # the source of a core we minimized before
        self.wants: list[Want] = []
        self.ranges: list[tuple[int, int]] = []
        self.watches = WatchIndex()
        self.headers: dict[int, ModuleSummary | None] = {}
        self._summaries: dict[bytes, ModuleSummary | None] = {}   # by page: one file mapped
                                                                   # 65,530 times parses once
        self.exe_bias: int | None = None
        self._at = 0                                 # vaddr of the next byte _consume gets
        self._run: list[ProgramHeader] = []          # _copy_run: the segments, the next one,
        self._run_next = 0                           # and the bytes left of the current one
        self._run_left = 0
        self.exe_dynamic: int | None = None
        self.r_debug: int | None = None
        self.vdso: tuple[int, int] | None = None     # (start, end) when dumped
        # headers, notes and the plan (CoreFormatError when the headers are unusable)
        self.hdr, self.phdrs, self.core, self._notes_raw = self.read_headers()
        self.page = self.core.page_size
        self.plan = self._plan(self.phdrs)
        # Room for the phdr table in front: the notes, the provenance note, one load per piece
        # of a segment the planned ranges keep, plus what is planned while reading (the
        # executable's PT_DYNAMIC, over at most MAX_DYNAMIC / page + 1 segments) and the
        # synthesized link_map and r_debug; should it not suffice, the writer puts the table last.
        reserve = (len(self._notes_raw) + 1 + self._pieces(self.plan.loads)
                   + MAX_DYNAMIC // self.page + 1 + 8)
        self.writer = CoreWriter(self.sink, self.hdr.e_ident, self.hdr.e_machine,
                                 self.hdr.e_flags, self.page, reserve, self.src.waits)

    def read_headers(self) -> tuple[ElfHeader, list[ProgramHeader], CoreNotes, list[bytes]]:
        """ELF header, program headers, parsed notes and the raw note segments to copy."""
        raw = self.src.read(0, EHDR_SIZE)
        if len(raw) < EHDR_SIZE:
            raise CoreFormatError(f"input too short for an ELF header ({len(raw)} bytes)")
        hdr = parse_elf_header(raw)
        if hdr.e_phoff < EHDR_SIZE:
            raise CoreFormatError(f"program headers overlap the ELF header (e_phoff {hdr.e_phoff})")
        count = hdr.e_phnum
        if count == 0:
            raise CoreFormatError("core has no program headers")
        if count == PN_XNUM:
            # Extended numbering: the real count is in section header 0, which the kernel
            # writes at the very end. The first phdr (PT_NOTE) says where the table ends.
            head = self.src.read(hdr.e_phoff, PHDR_SIZE)
            first = parse_program_headers(head)
            if not first:
                raise CoreFormatError("program headers truncated")
            count = MAX_PHDRS
            if first[0].p_offset > hdr.e_phoff:
                count = max(1, (first[0].p_offset - hdr.e_phoff) // PHDR_SIZE)
            rest = self.src.read(hdr.e_phoff + PHDR_SIZE, (min(count, MAX_PHDRS) - 1) * PHDR_SIZE)
            table = head + rest
        else:
            if count > MAX_PHDRS:
                self.warnings.append(f"{count} program headers; only the first {MAX_PHDRS} used")
            table = self.src.read(hdr.e_phoff, min(count, MAX_PHDRS) * PHDR_SIZE)
        if len(table) < min(count, MAX_PHDRS) * PHDR_SIZE:
            raise CoreFormatError(f"program headers truncated ({len(table)} of "
                                  f"{min(count, MAX_PHDRS) * PHDR_SIZE} bytes)")
        phdrs = list(parse_program_headers(table))
        notes_raw: list[bytes] = []
        all_notes: list[Note] = []
        budget = MAX_NOTES
        # Notes after the first memory data (our own provenance note, last in a core we
        # minimized) are read when the stream gets there, after the memory; only when no note
        # comes before the memory (gdb's gcore) are they read first, here.
        note_phdrs = sorted((p for p in phdrs if p.p_type == PT_NOTE), key=lambda p: p.p_offset)
        data_start = min((p.p_offset for p in phdrs if p.p_type == PT_LOAD and p.p_filesz),
                         default=None)
        # sorted by offset: the early ones are a prefix (no list membership test: O(n^2))
        n_early = sum(1 for p in note_phdrs if data_start is None or p.p_offset < data_start)
        if n_early:
            self.late_notes = note_phdrs[n_early:]
            note_phdrs = note_phdrs[:n_early]
        for ph in note_phdrs:
            if len(all_notes) >= MAX_NOTE_COUNT:
                self.warnings.append(f"more than {MAX_NOTE_COUNT} notes: PT_NOTE at "
                                     f"{ph.p_offset:#x} and later ones are not read")
                break
            self.src.rewind(ph.p_offset)    # a file can go back (table after the notes)
            if ph.p_offset < self.src.pos:
                self.warnings.append(f"PT_NOTE at {ph.p_offset:#x} overlaps earlier data; skipped")
                continue
            size = min(ph.p_filesz, budget)
            if size < ph.p_filesz:
                self.warnings.append(f"notes larger than {MAX_NOTES} bytes; the rest is dropped")
            data = self.src.read(ph.p_offset, size)
            budget -= len(data)
            if len(data) < size:
                self.truncated = True
                self.warnings.append(f"input ends inside the notes ({len(data)} of {size} bytes)")
            # a hostile 64 MiB of 12-byte notes would be 5.6 million Note objects (> 1 GiB)
            notes, warns = parse_notes(data, MAX_NOTE_COUNT - len(all_notes))
            self.warnings += warns
            if notes:
                notes_raw.append(data[:min(note_end(data, notes[-1]), len(data))])
            all_notes += notes
        core = parse_core_notes(all_notes, hdr.e_machine)
        self.warnings += core.warnings
        # gdb's gcore (notes after the memory) and cores with the table last (ours when the
        # writer's reserve overflows, and earlier versions'): a file goes back to the first data
        self.src.rewind(min([hdr.e_phoff + len(table)]
                            + [p.p_offset for p in phdrs if p.p_type == PT_LOAD and p.p_filesz]))
        return hdr, phdrs, core, notes_raw

    def add_want(self, start: int, end: int, reason: str) -> None:
        """Keep ``[start, end)`` (page-rounded) too, for ``reason``."""
        page = self.page
        w = Want(page_down(start, page), page_up(end, page), reason)
        self.wants.append(w)
        self.ranges = merge_ranges(self.ranges + [(w.start, w.end)])

    def run(self) -> MinimizeReport:
        """Copy what the plan keeps, in one pass, and finish the output core."""
        phdrs = self.phdrs
        for raw in self._notes_raw:
            self.writer.add_note(raw, "notes")
        self._copy_all(phdrs)
        if not self.budget_exceeded:
            self._read_late_notes()
        self.src.drain()
        if not self.budget_exceeded:
            for watch in self.watches.all:  # partial data (input ended inside a watched range)
                if not watch.fired and watch.data:
                    self._fire(watch)
        if self.src.eof and self.src.pos < self._expected_end(phdrs):
            self.truncated = True
            # a file's pos may stand past its end (a gap skipped by seeking): report the size
            ended = min(self.src.pos, self.src.total())
            self.warnings.append(f"input ended at byte {ended}, before the end of the "
                                 f"last segment ({self._expected_end(phdrs)})")
        if not self.budget_exceeded:
            self._synthesize()
        return self._finish()

    def _plan(self, phdrs: list[ProgramHeader]) -> Plan:
        """Plan what to keep and which pages to watch while copying."""
        core, opts, page = self.core, self.opts, self.page
        plan = plan_keep(core, phdrs, max_stack=opts.max_stack, keep_heap=opts.keep_heap,
                         keep_ranges=opts.keep_ranges)
        self.warnings += plan.warnings
        mask = page - 1
        self.wants = [w if not (w.start | w.end) & mask
                      else Want(page_down(w.start, page), page_up(w.end, page), w.reason)
                      for w in plan.wants]
        self.ranges = merge_ranges((w.start, w.end) for w in self.wants)
        self.watches.add_many(Watch(m.start, m.start + page, self._on_module_page)
                              for m in plan.header_pages)
        vdso = core.auxv.get(AT_SYSINFO_EHDR)
        vdso_seg = next((p for p in phdrs if p.p_type == PT_LOAD and p.p_filesz
                         and p.p_vaddr <= (vdso or -1) < p.p_vaddr + p.p_memsz), None)
        if vdso and vdso_seg is not None:
            # only for the report's module list (eu-unstrip lists it too); kept by plan_keep
            self.vdso = (vdso, vdso_seg.p_vaddr + vdso_seg.p_memsz)
            self.watches.add(Watch(vdso, min(vdso + page, self.vdso[1]), self._on_module_page))
        at_phdr, at_phnum = core.auxv.get(AT_PHDR), core.auxv.get(AT_PHNUM)
        if at_phdr and at_phnum and plan.exe_start is not None:
            self.watches.add(Watch(at_phdr, at_phdr + min(at_phnum, 512) * PHDR_SIZE,
                                   self._on_exe_phdrs))
        return plan

    def _pieces(self, loads: list[ProgramHeader]) -> int:
        """How many loads copying ``loads`` with the planned ranges makes, at most."""
        ranges, count = self.ranges, 0
        for seg in loads:
            i = bisect.bisect_right(ranges, (seg.p_vaddr, 1 << 65)) - 1
            if i < 0 or ranges[i][1] <= seg.p_vaddr:
                i += 1
            count += max(0, bisect.bisect_left(ranges, (seg.end,)) - i)
        return count

    def _copy_all(self, phdrs: list[ProgramHeader]) -> None:
        """Copy the kept ranges of every segment, in file order, until EOF or the budget."""
        try:
            if self.clock.over():
                raise BudgetExceeded
            run: list[ProgramHeader] = []       # kept whole, each right after the previous
            for seg in sorted((p for p in phdrs if p.p_type == PT_LOAD and p.p_filesz > 0),
                              key=lambda p: (p.p_offset, p.p_vaddr)):
                if run and self._whole(seg) and seg.p_offset == run[-1].p_offset + run[-1].p_filesz:
                    run.append(seg)
                    continue
                self._copy_run(run)
                run = []
                if self.src.eof:
                    break
                if self._whole(seg) and seg.p_offset >= self.src.pos:
                    run = [seg]
                else:
                    self._copy_segment(seg)
            self._copy_run(run)
        except BudgetExceeded:
            self.budget_exceeded = self.truncated = True
            self.warnings.append(
                f"analysis budget of {self.clock.budget:g} s used up at input offset "
                f"{self.src.pos}: the data kept so far is kept, the rest was drained unread")

    def _whole(self, seg: ProgramHeader) -> bool:
        """True when one planned range holds all of ``seg`` (ranges only grow meanwhile)."""
        ranges = self.ranges
        i = bisect.bisect_right(ranges, (seg.p_vaddr, 1 << 65)) - 1
        return i >= 0 and ranges[i][0] <= seg.p_vaddr and seg.end <= ranges[i][1]

    def _copy_run(self, run: list[ProgramHeader]) -> None:
        """Copy segments kept whole and adjacent in the file with one read of them all: the
        ~65,530 one-page segments of a process that mapped one ELF file that often cost one
        pass over the file, not one read per page. One load per segment, as ``_copy_segment``."""
        if not run:
            return
        self._run, self._run_next = run, 1
        self._run_left = run[0].p_filesz
        self._at = run[0].p_vaddr
        self.writer.begin_load(run[0].p_vaddr, run[0].p_flags, "")
        total = run[-1].p_offset + run[-1].p_filesz - run[0].p_offset
        try:
            got = self.src.copy(run[0].p_offset, total, self._consume_run)
        finally:
            self.writer.end_load()
        if got < total:
            self.truncated = True
            k = self._run_next - 1       # the segment the input ended in
            seg = run[k]
            kept = seg.p_filesz - self._run_left
            self.warnings.append(f"input ended inside segment {seg.index} ({seg.p_vaddr:#x}); "
                                 f"kept {kept} of {seg.p_filesz} bytes there")

    def _consume_run(self, chunk: memoryview) -> None:
        """A chunk of a run of whole segments: split at the segments' ends."""
        while chunk:
            n = min(len(chunk), self._run_left)
            self._consume(chunk[:n])
            chunk = chunk[n:]
            self._run_left -= n
            if not self._run_left and self._run_next < len(self._run):
                self.writer.end_load()
                seg = self._run[self._run_next]
                self._run_next += 1
                self._run_left = seg.p_filesz
                self._at = seg.p_vaddr
                self.writer.begin_load(seg.p_vaddr, seg.p_flags, "")

    def _read_late_notes(self) -> None:
        """Notes after the memory: a previous coripper run's provenance note is remembered (its
        ``source`` goes into ours); any other is reported and not copied. At most
        :data:`MAX_NOTES` bytes in all: a file can go back, so 131,072 PT_NOTEs over the same
        64 MiB would otherwise read them 131,072 times."""
        budget = MAX_NOTES
        for ph in self.late_notes:
            self.src.rewind(ph.p_offset)
            if ph.p_offset < self.src.pos or self.src.eof:
                self.warnings.append(f"PT_NOTE at {ph.p_offset:#x} overlaps earlier data; skipped")
                continue
            if budget <= 0:
                self.warnings.append(f"notes after the memory larger than {MAX_NOTES} bytes; "
                                     f"the rest is not read")
                break
            data = self.src.read(ph.p_offset, min(ph.p_filesz, budget))
            budget -= len(data)
            previous = find_provenance(data)
            if isinstance(previous, dict) and self.previous_source is None:
                self.previous_source = previous.get("source")
            elif previous is None:
                self.warnings.append(f"PT_NOTE at {ph.p_offset:#x} lies after the memory; "
                                     "not copied")

    @staticmethod
    def _expected_end(phdrs: list[ProgramHeader]) -> int:
        return max((p.p_offset + p.p_filesz for p in phdrs if p.p_type in (PT_LOAD, PT_NOTE)),
                   default=0)

    def _copy_segment(self, seg: ProgramHeader) -> None:
        lo = seg.p_vaddr
        if seg.p_offset < self.src.pos:
            skip = self.src.pos - seg.p_offset
            if skip >= seg.p_filesz:
                self.warnings.append(f"segment {seg.index} overlaps earlier file data; skipped")
                return
            lo += skip
        hi = seg.p_vaddr + seg.p_filesz
        cur = lo
        while cur < hi and not self.src.eof:
            if self.clock.over():
                raise BudgetExceeded
            i = bisect.bisect_right(self.ranges, (cur, 1 << 65)) - 1
            if i < 0 or self.ranges[i][1] <= cur:
                i += 1
            if i >= len(self.ranges) or self.ranges[i][0] >= hi:
                return
            a = max(self.ranges[i][0], cur)
            b = min(self.ranges[i][1], hi)
            self.writer.begin_load(a, seg.p_flags, "")
            self._at = a
            try:
                got = self.src.copy(seg.p_offset + (a - seg.p_vaddr), b - a, self._consume)
            finally:
                self.writer.end_load()      # past the budget: what was written stays
            if got < b - a:
                self.truncated = True
                self.warnings.append(f"input ended inside segment {seg.index} "
                                     f"({seg.p_vaddr:#x}); kept {got} of {b - a} bytes there")
                return
            cur = b

    def _consume(self, chunk: memoryview) -> None:
        """One chunk of kept data at ``self._at``: written, shown to the watches."""
        self.writer.write(chunk)
        self._feed(self._at, chunk)
        self._at += len(chunk)
        if self.clock.over():
            raise BudgetExceeded

    def _feed(self, vaddr: int, chunk: memoryview) -> None:
        end = vaddr + len(chunk)
        added = len(self.watches.all)
        todo = self.watches.overlapping(vaddr, end)
        while todo:
            for w in todo:
                if w.fired:
                    continue
                lo, hi = max(w.start, vaddr), min(w.end, end)
                if lo != w.start + len(w.data):
                    continue        # a hole: the watched range is not contiguous in the core
                if hi == w.end and not w.data:      # all of it in this chunk: nothing to gather
                    self._fire(w, chunk[lo - vaddr:hi - vaddr])
                    continue
                w.data += chunk[lo - vaddr:hi - vaddr]
                if w.start + len(w.data) >= w.end:
                    self._fire(w)
            # a callback may have added a watch (the executable's PT_DYNAMIC) this chunk feeds
            new = self.watches.all[added:]
            added += len(new)
            todo = [w for w in new if w.end > vaddr and w.start < end]

    def _fire(self, w: Watch, data: memoryview | None = None) -> None:
        """Hand the watched bytes (``data``, else what was gathered) to the callback."""
        w.fired = True
        try:
            w.callback(w.start, bytes(w.data if data is None else data))
        except (struct.error, ValueError, IndexError, KeyError, OverflowError) as exc:
            self.warnings.append(f"could not parse memory at {w.start:#x}: {exc}")
        w.data = bytearray()

    def _on_module_page(self, start: int, data: bytes) -> None:
        summary = self._summaries.get(data, _UNSEEN)
        if summary is _UNSEEN:
            summary = parse_module_summary(data)
            if len(self._summaries) < SUMMARY_CACHE and len(data) <= 64 << 10:
                self._summaries[data] = summary
        self.headers[start] = summary

    def _on_exe_phdrs(self, at_phdr: int, data: bytes) -> None:
        phdrs = parse_program_headers(data)
        pt_phdr = next((p for p in phdrs if p.p_type == PT_PHDR), None)
        dyn = next((p for p in phdrs if p.p_type == PT_DYNAMIC), None)
        if pt_phdr is not None:
            bias = at_phdr - pt_phdr.p_vaddr
        else:   # no PT_PHDR: the first PT_LOAD maps file offset 0 at the executable's start
            first = min((p.p_vaddr - p.p_offset for p in phdrs if p.p_type == PT_LOAD), default=0)
            bias = (self.plan.exe_start or 0) - page_down(first, self.page)
        self.exe_bias = bias
        if dyn is None or dyn.p_memsz == 0:
            return          # static executable: no r_debug, not an error
        start = (bias + dyn.p_vaddr) & ((1 << 64) - 1)
        size = min(dyn.p_memsz, MAX_DYNAMIC)
        self.exe_dynamic = start
        self.add_want(start, start + size, "dynamic")
        self.watches.add(Watch(start, start + size, self._on_dynamic))

    def _on_dynamic(self, start: int, data: bytes) -> None:
        for tag, val in parse_dynamic(data):
            if tag == DT_DEBUG:
                self.r_debug = val or None
                return

    def _link_entries(self) -> list[LinkEntry]:
        plan = self.plan
        exe_entry = None
        if self.exe_bias is not None:
            ld = self.exe_dynamic or 0
            exe_entry = LinkEntry("", self.exe_bias, ld)
        libs: list[LinkEntry] = []
        interp: list[LinkEntry] = []
        for m in plan.modules:
            if m.start == plan.exe_start:
                continue
            mh = self.headers.get(m.start)
            if mh is None or mh.e_type != ET_DYN:
                continue
            bias = m.start - mh.min_vaddr
            ld = bias + mh.dynamic_vaddr if mh.dynamic_vaddr is not None else 0
            entry = LinkEntry(m.path, bias, ld)
            (interp if m.path == plan.interp_path else libs).append(entry)
        return ([exe_entry] if exe_entry else []) + libs + interp

    def _synthesize(self) -> None:
        if not self.r_debug:
            return
        rd = self.r_debug
        entries = self._link_entries()
        base = self.plan.synth_base
        chain = build_link_map(base, entries)
        if len(chain) > self.plan.synth_size:       # cannot happen: the plan bounds it
            self.warnings.append("synthesized link_map larger than planned; not written")
            return
        self.writer.add_load(base, chain, PF_R | PF_W, "synthetic link_map")
        self.wants.append(Want(base, base + len(chain), "synthetic link_map"))
        data = build_r_debug(base if chain else 0, self.core.auxv.get(AT_BASE, 0))
        seg = self.writer.find(rd, len(data))
        if seg is not None:
            self.writer.patch(seg.offset + rd - seg.vaddr, data)
            self.wants.append(Want(rd, rd + len(data), "synthetic r_debug"))
        elif not self.writer.overlaps(rd, len(data)):
            self.writer.add_load(rd, data, PF_R | PF_W, "synthetic r_debug")
            self.wants.append(Want(rd, rd + len(data), "synthetic r_debug"))
        else:
            self.warnings.append(f"r_debug at {rd:#x} straddles kept data; not synthesized")

    def _finish(self) -> MinimizeReport:
        core, writer = self.core, self.writer
        loads = writer.normalized_loads()
        spans = [(s.vaddr, s.vaddr + s.size) for s in loads]
        reasons = reasons_of(spans, self.wants)
        if len(loads) > writer.max_loads():
            loads, reasons = self._fit(loads, reasons, writer.max_loads())
        kept = [(s.vaddr, s.vaddr + s.size, r) for s, r in zip(loads, reasons, strict=True)]
        algorithm = digest = None
        if isinstance(self.src, StreamSource):
            algorithm, digest = self.src.algorithm, self.src.hexdigest()
        modules = self._modules()
        info = {
            "tool": "coripper", "version": __version__, "mode": self.mode,
            "source": {"size": self.src.total(), "hash": algorithm, "digest": digest,
                       "compression": self.opts.source_compression,
                       "minimized_from": self.previous_source,
                       "machine": core.machine},
            "options": {"keep_heap": self.opts.keep_heap, "max_stack": self.opts.max_stack,
                        "keep_ranges": [[hex(a), hex(b)] for a, b in self.opts.keep_ranges],
                        "analysis_budget": self.opts.analysis_budget},
            "kept": [{"start": hex(a), "end": hex(b), "reason": r} for a, b, r in kept],
            "truncated": self.truncated,
            "warnings": self.warnings[:100],
        }
        out = writer.finish(build_provenance(info), loads=loads)
        return MinimizeReport(
            machine=core.machine, bytes_in=self.src.total(), bytes_out=out,
            truncated=self.truncated,
            threads=[ThreadInfo(t.tid, t.signal, t.pc, t.sp) for t in core.threads],
            modules=modules, kept=kept, warnings=list(self.warnings),
            hash_algorithm=algorithm, digest=digest, budget_exceeded=self.budget_exceeded)

    def _fit(self, loads: list[OutSegment], reasons: list[str], limit: int
             ) -> tuple[list[OutSegment], list[str]]:
        """At most ``limit`` loads (an ELF table holds 65,534 entries), stacks kept."""
        keep, headers = fit_loads(reasons, limit)
        self.warnings.append(f"{len(loads) - len(keep)} of {len(loads)} segments left out "
                             f"(an ELF core holds {MAX_OUT_SEGMENTS}), {headers} of them "
                             "module header pages")
        return [loads[i] for i in keep], [reasons[i] for i in keep]

    def _modules(self) -> list[ModuleInfo]:
        out = []
        modules = self.plan.modules
        for m, end in zip(modules, module_ends(modules, self.core.mappings), strict=True):
            mh = self.headers.get(m.start)
            if m.start in self.headers and mh is None:
                continue            # dumped first page is not ELF: not a module
            out.append(ModuleInfo(m.path, m.start, end, mh.build_id if mh else None))
        if self.vdso is not None and self.headers.get(self.vdso[0]) is not None:
            vdso_header = self.headers[self.vdso[0]]
            out.append(ModuleInfo(VDSO_NAME, self.vdso[0], self.vdso[1],
                                  vdso_header.build_id if vdso_header else None))
        return sorted(out, key=lambda m: m.start)
