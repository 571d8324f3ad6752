"""Core minimizer: single-pass stream mode and seek-only-what-is-kept file mode.

Standard library only: the crash hook imports this module. Both modes run the same engine over
a *forward-only* source (the file mode merely seeks instead of reading the gaps), so they make
the same decisions and write byte-identical cores apart from the provenance note's ``mode``
and ``sha256`` (see docs/coripper.md).
"""

from __future__ import annotations

import bisect
import errno
import functools
import hashlib
import io
import os
import queue
import shutil
import stat
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, cast

from . import __version__
from .elfcore import (AT_BASE, AT_PHDR, AT_PHNUM, AT_SYSINFO_EHDR, DT_DEBUG, EHDR_SIZE, ET_DYN, PF_R, PF_W,
                      PHDR_SIZE, PN_XNUM, PT_DYNAMIC, PT_LOAD, PT_NOTE, PT_PHDR, CoreNotes,
                      ModuleHeader, Note, ProgramHeader, parse_core_notes, parse_dynamic,
                      parse_elf_header, parse_module_header, parse_notes, parse_program_headers)
from .errors import CoreFormatError
from .layout import Plan, Want, merge_ranges, page_down, page_up, plan_keep
from .linkmap import LinkEntry, build_link_map, build_r_debug
from .provenance import build_provenance
from .writer import CoreWriter

CHUNK = 1 << 20                 # read size; also the only large buffer we hold
MAX_PHDRS = 1 << 17             # program headers beyond this are ignored (with a warning)
MAX_NOTES = 64 << 20            # total note bytes we read and copy
MAX_DYNAMIC = 64 << 10          # bytes of the executable's PT_DYNAMIC we keep and parse
SPOOL_IN_MEMORY = 16 << 20      # kept data buffered in RAM before spilling to a temp file
VDSO_NAME = "[vdso]"            # the vdso's path in the report (as /proc/PID/maps)


@dataclass
class MinimizeOptions:
    """What to keep beyond the defaults."""

    keep_heap: bool = False
    max_stack: int | None = None                 # bytes per thread; None = to the end of the segment
    keep_ranges: tuple[tuple[int, int], ...] = ()
    hash_algorithm: str | None = "sha256"        # stream mode: hash of the input, or None


@dataclass
class ThreadInfo:
    tid: int
    signal: int
    pc: int
    sp: int


@dataclass
class ModuleInfo:
    path: str
    start: int
    end: int
    build_id: str | None


@dataclass
class MinimizeReport:
    """What a minimization read, kept and noticed."""

    machine: str
    bytes_in: int
    bytes_out: int
    truncated: bool
    threads: list[ThreadInfo] = field(default_factory=list)     # crash thread first
    modules: list[ModuleInfo] = field(default_factory=list)
    kept: list[tuple[int, int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sha256: str | None = None

    def crash_site(self) -> tuple[str | None, int]:
        """(module path, pc offset from the module's start) of the crash thread."""
        if not self.threads:
            return None, 0
        pc = self.threads[0].pc
        for m in self.modules:
            if m.start <= pc < m.end:
                return m.path, pc - m.start
        return None, pc


# --- sources ------------------------------------------------------------------------------

class _Source:
    """Forward-only reader. ``pos`` never decreases; gaps are skipped by reading (stream) or
    seeking (file)."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.pos = 0
        self.eof = False
        self.buf = bytearray(CHUNK)
        self.mv = memoryview(self.buf)

    def _fill(self, n: int) -> int:
        raise NotImplementedError

    def skip_to(self, offset: int) -> None:
        raise NotImplementedError

    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (shorter at EOF); for headers and notes."""
        self.skip_to(offset)
        out = bytearray()
        while len(out) < size and not self.eof:
            n = self._fill(min(CHUNK, size - len(out)))
            out += self.mv[:n]
        return bytes(out)

    def copy(self, offset: int, size: int, consume: Callable[[memoryview], None]) -> int:
        """Feed ``size`` bytes at ``offset`` to ``consume`` in chunks; return bytes delivered."""
        self.skip_to(offset)
        done = 0
        while done < size and not self.eof:
            n = self._fill(min(CHUNK, size - done))
            if n:
                consume(self.mv[:n])
                done += n
        return done

    def drain(self) -> None:
        """Read to EOF (stream mode: the kernel waits until its pipe is drained)."""

    def rewind(self, offset: int) -> None:
        """Go back to ``offset`` if the source can (file mode); a stream cannot."""

    def total(self) -> int:
        return self.pos


HASH_ALGORITHMS = ("sha256",)   # what ``MinimizeOptions.hash_algorithm`` accepts besides None
PIPE_SIZE_CAP = 16 << 20        # F_SETPIPE_SZ at most this (kernel memory, not our RSS)
_F_SETPIPE_SZ = 1031            # fcntl.F_SETPIPE_SZ / F_GETPIPE_SZ (Linux fcntl.h)
_F_GETPIPE_SZ = 1032


class _StreamSource(_Source):
    """Sequential reader of a stream: reads what is kept, discards the rest as cheaply as the
    source allows, and optionally hashes everything.

    Hashing (``algorithm`` not None) needs every byte in user space: hashlib releases the GIL,
    so a worker thread hashes chunk N while chunk N+1 is read; NBUF buffers rotate and a
    semaphore keeps a buffer from being refilled before the worker has hashed it.

    Without hashing, the bytes nobody needs never enter user space: a pipe is spliced into
    /dev/null (splice(2): the pipe's pages are released in the kernel, no copy), a regular file
    (``coripper - < CORE``) is skipped with lseek; anything else is read into one buffer.
    """

    NBUF = 4

    def __init__(self, src: BinaryIO, algorithm: str | None = "sha256") -> None:
        super().__init__(src)
        self.algorithm = algorithm
        self._digest: str | None = None
        self._pending = memoryview(b"")
        self._readinto: Callable[[memoryview], int | None] | None = getattr(src, "readinto", None)
        self._fd: int | None = None
        self._kind = ""             # "pipe" | "file" | "" (anything else: read and discard)
        self._devnull: int | None = None
        self._open_fd(src)
        self._worker: threading.Thread | None = None
        if algorithm is not None:
            self.sha = hashlib.new(algorithm)
            self._bufs = [memoryview(bytearray(CHUNK)) for _ in range(self.NBUF)]
            self._next = 0
            self._free = threading.Semaphore(self.NBUF)
            self._queue: queue.SimpleQueue[memoryview | None] = queue.SimpleQueue()
            self._worker = threading.Thread(target=self._hash_loop, name="coripper-hash",
                                             daemon=True)
            self._worker.start()

    def _open_fd(self, src: BinaryIO) -> None:
        """Switch to the file descriptor when ``src`` has one (pipe or regular file)."""
        try:
            fd = src.fileno()
            mode = os.fstat(fd).st_mode
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return
        if stat.S_ISFIFO(mode):
            self._kind = "pipe"
            _grow_pipe(fd)
        elif stat.S_ISREG(mode):
            self._kind = "file"
        else:
            return
        if isinstance(src, io.BufferedReader):
            # Bytes the buffer already holds come first; read1 returns them all (or does one
            # raw read straight into the result), leaving the buffer empty, so from here on
            # the descriptor's position is the stream's position.
            self._pending = memoryview(src.read1(CHUNK))
        self._fd = fd
        self._readinto = io.FileIO(fd, "rb", closefd=False).readinto

    def _read_some(self, mv: memoryview) -> int:
        if self._pending:
            n = min(len(mv), len(self._pending))
            mv[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        if self._readinto is not None:
            return self._readinto(mv) or 0
        data = self.src.read(len(mv)) or b""
        mv[:len(data)] = data
        return len(data)

    def _hash_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            self.sha.update(item)
            self._free.release()

    def _fill(self, n: int) -> int:
        if self.eof:
            return 0
        if self.algorithm is None:
            got = self._read_some(self.mv[:n])
        else:
            self._free.acquire()
            self.mv = self._bufs[self._next]
            self._next = (self._next + 1) % self.NBUF
            got = self._read_some(self.mv[:n])
            if got:
                self._queue.put(self.mv[:got])
            else:
                self._free.release()
        if got == 0:
            self.eof = True
        self.pos += got
        return got

    def _discard(self, n: int) -> None:
        """Consume ``n`` bytes nobody needs (fewer at EOF)."""
        if self._pending and n > 0 and self.algorithm is None:
            k = min(n, len(self._pending))
            self._pending = self._pending[k:]
            self.pos += k
            n -= k
        if self.algorithm is None and self._fd is not None and n > 0:
            if self._kind == "file":
                self._seek_forward(n)
                return
            if self._kind == "pipe" and self._splice_to_null(n):
                return
        while n > 0 and not self.eof:
            got = self._fill(min(CHUNK, n))
            n -= got

    def _seek_forward(self, n: int) -> None:
        assert self._fd is not None
        cur = os.lseek(self._fd, 0, os.SEEK_CUR)
        size = os.fstat(self._fd).st_size
        to = min(cur + n, max(size, cur))
        os.lseek(self._fd, to, os.SEEK_SET)
        self.pos += to - cur
        if to < cur + n:
            self.eof = True

    def _splice_to_null(self, n: int) -> bool:
        """splice(2) ``n`` bytes from the pipe into /dev/null; False if splice is unusable."""
        assert self._fd is not None
        splice = getattr(os, "splice", None)
        try:
            if splice is None:
                return False
            if self._devnull is None:
                self._devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            while n > 0:
                got = splice(self._fd, self._devnull, min(n, 1 << 30))
                if got == 0:
                    self.eof = True
                    return True
                self.pos += got
                n -= got
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EBADF):
                raise
            self._kind = ""         # e.g. no splice_write on this kernel's /dev/null: read instead
            return False
        return True

    def skip_to(self, offset: int) -> None:
        if self.pos < offset and not self.eof:
            self._discard(offset - self.pos)

    def drain(self) -> None:
        while not self.eof:
            self._discard(1 << 62)

    def hexdigest(self) -> str | None:
        """Hex digest of everything read, or None without hashing (stops the worker; call once
        reading is over)."""
        if self.algorithm is None:
            return None
        if self._digest is None:
            self.close()
            self._digest = self.sha.hexdigest()
        return self._digest

    def close(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()
        if self._devnull is not None:
            os.close(self._devnull)
            self._devnull = None


def _grow_pipe(fd: int) -> None:
    """Enlarge the input pipe (F_SETPIPE_SZ) up to ``/proc/sys/fs/pipe-max-size``: the writer
    (the kernel dumping the core) and we wake each other up less often."""
    import fcntl
    try:
        with open("/proc/sys/fs/pipe-max-size", "rb") as f:
            want = min(int(f.read().strip() or 0), PIPE_SIZE_CAP)
    except (OSError, ValueError):
        want = CHUNK
    try:
        if fcntl.fcntl(fd, _F_GETPIPE_SZ) >= want:
            return
    except OSError:
        return
    for size in (want, CHUNK):
        try:
            fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
            return
        except OSError:     # EPERM over the per-user pipe quota, EBUSY if shrinking: keep it
            continue


class _FileSource(_Source):
    def __init__(self, src: BinaryIO) -> None:
        super().__init__(src)
        try:
            self.size = os.fstat(src.fileno()).st_size
        except (OSError, AttributeError, ValueError):
            self.size = src.seek(0, os.SEEK_END)
        self._at: int | None = None

    def _fill(self, n: int) -> int:
        if self.eof:
            return 0
        if self._at != self.pos:
            self.src.seek(self.pos)
        got = cast(io.BufferedIOBase, self.src).readinto(self.mv[:n]) or 0
        if got == 0:
            self.eof = True
            self._at = None
            return 0
        self.pos += got
        self._at = self.pos
        return got

    def skip_to(self, offset: int) -> None:
        if offset > self.pos:
            self.pos = offset
            if offset >= self.size:
                self.eof = True

    def total(self) -> int:
        return self.size

    def rewind(self, offset: int) -> None:
        # gdb's gcore writes PT_NOTE after the memory: once the notes are read, a file can
        # go back to the data. (The kernel writes notes first; a stream of a gcore core keeps
        # only the notes, with warnings.)
        if offset < self.pos:
            self.pos = offset
            self.eof = offset >= self.size


# --- the engine ---------------------------------------------------------------------------

@dataclass
class _Watch:
    start: int
    end: int
    callback: Callable[[bytes], None]
    data: bytearray = field(default_factory=bytearray)
    fired: bool = False


class _Engine:
    def __init__(self, source: _Source, sink: BinaryIO, options: MinimizeOptions, mode: str) -> None:
        self.src = source
        self.sink = sink
        self.opts = options
        self.mode = mode
        self.warnings: list[str] = []
        self.truncated = False
        self.wants: list[Want] = []
        self.ranges: list[tuple[int, int]] = []
        self.watches: list[_Watch] = []
        self.headers: dict[int, ModuleHeader | None] = {}
        self.exe_bias: int | None = None
        self.exe_dynamic: int | None = None
        self.r_debug: int | None = None
        self.vdso: tuple[int, int] | None = None     # (start, end) when dumped

    # headers and notes (raise CoreFormatError when unusable)
    def read_headers(self) -> tuple[Any, list[ProgramHeader], CoreNotes, list[bytes]]:
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
        for ph in sorted((p for p in phdrs if p.p_type == PT_NOTE), key=lambda p: p.p_offset):
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
            notes, warns = parse_notes(data)
            self.warnings += warns
            if notes:
                last = notes[-1]
                namesz = struct.unpack_from("<I", data, last.offset)[0]
                end = last.offset + 12 + ((namesz + 3) & ~3) + ((len(last.desc) + 3) & ~3)
                notes_raw.append(data[:min(end, len(data))])
            all_notes += notes
        core = parse_core_notes(all_notes, hdr.e_machine)
        self.warnings += core.warnings
        self.src.rewind(hdr.e_phoff + len(table))
        return hdr, phdrs, core, notes_raw

    def add_want(self, start: int, end: int, reason: str) -> None:
        page = self.page
        w = Want(page_down(start, page), page_up(end, page), reason)
        self.wants.append(w)
        self.ranges = merge_ranges(self.ranges + [(w.start, w.end)])

    def run(self) -> MinimizeReport:
        hdr, phdrs, core, notes_raw = self.read_headers()
        self.core = core
        self.page = core.page_size
        opts = self.opts
        plan = plan_keep(core, phdrs, max_stack=opts.max_stack, keep_heap=opts.keep_heap,
                         keep_ranges=opts.keep_ranges)
        self.plan = plan
        self.warnings += plan.warnings
        for w in plan.wants:
            self.wants.append(Want(page_down(w.start, self.page), page_up(w.end, self.page), w.reason))
        self.ranges = merge_ranges((w.start, w.end) for w in self.wants)
        for m in plan.modules:
            self.watches.append(_Watch(m.start, m.start + self.page,
                                       functools.partial(self._on_module_page, m.start)))
        vdso = core.auxv.get(AT_SYSINFO_EHDR)
        vdso_seg = next((p for p in phdrs if p.p_type == PT_LOAD and p.p_filesz
                         and p.p_vaddr <= (vdso or -1) < p.p_vaddr + p.p_memsz), None)
        if vdso and vdso_seg is not None:
            # only for the report's module list (eu-unstrip lists it too); kept by plan_keep
            self.vdso = (vdso, vdso_seg.p_vaddr + vdso_seg.p_memsz)
            self.watches.append(_Watch(vdso, min(vdso + self.page, self.vdso[1]),
                                       lambda data: self._on_module_page(vdso, data)))
        at_phdr, at_phnum = core.auxv.get(AT_PHDR), core.auxv.get(AT_PHNUM)
        if at_phdr and at_phnum and plan.exe_start is not None:
            self.watches.append(_Watch(at_phdr, at_phdr + min(at_phnum, 512) * PHDR_SIZE,
                                       lambda data: self._on_exe_phdrs(at_phdr, data)))

        sink = self.sink
        self.writer = writer = CoreWriter(sink, hdr.e_ident, hdr.e_machine, hdr.e_flags, self.page)
        for raw in notes_raw:
            writer.add_note(raw, "notes")
        for seg in sorted((p for p in phdrs if p.p_type == PT_LOAD and p.p_filesz > 0),
                          key=lambda p: (p.p_offset, p.p_vaddr)):
            if self.src.eof:
                break
            self._copy_segment(seg)
        self.src.drain()
        for watch in self.watches:    # partial data (input ended inside a watched range)
            if not watch.fired and watch.data:
                self._fire(watch)
        if self.src.eof and self.src.pos < self._expected_end(phdrs):
            self.truncated = True
            self.warnings.append(f"input ended at byte {self.src.pos}, before the end of the "
                                 f"last segment ({self._expected_end(phdrs)})")
        self._synthesize()
        return self._finish(hdr, core, plan)

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
            i = bisect.bisect_right(self.ranges, (cur, 1 << 65)) - 1
            if i < 0 or self.ranges[i][1] <= cur:
                i += 1
            if i >= len(self.ranges) or self.ranges[i][0] >= hi:
                return
            a = max(self.ranges[i][0], cur)
            b = min(self.ranges[i][1], hi)
            self.writer.begin_load(a, seg.p_flags, "")
            vaddr = [a]

            def consume(chunk: memoryview, vaddr: list[int] = vaddr) -> None:
                self.writer.write(chunk)
                self._feed(vaddr[0], chunk)
                vaddr[0] += len(chunk)

            got = self.src.copy(seg.p_offset + (a - seg.p_vaddr), b - a, consume)
            self.writer.end_load()
            if got < b - a:
                self.truncated = True
                self.warnings.append(f"input ended inside segment {seg.index} "
                                     f"({seg.p_vaddr:#x}); kept {got} of {b - a} bytes there")
                return
            cur = b

    def _feed(self, vaddr: int, chunk: memoryview) -> None:
        end = vaddr + len(chunk)
        for w in self.watches:
            if w.fired or w.end <= vaddr or w.start >= end:
                continue
            lo, hi = max(w.start, vaddr), min(w.end, end)
            if lo != w.start + len(w.data):
                continue        # a hole: the watched range is not contiguous in the core
            w.data += chunk[lo - vaddr:hi - vaddr]
            if w.start + len(w.data) >= w.end:
                self._fire(w)

    def _fire(self, w: _Watch) -> None:
        w.fired = True
        try:
            w.callback(bytes(w.data))
        except (struct.error, ValueError, IndexError, KeyError, OverflowError) as exc:
            self.warnings.append(f"could not parse memory at {w.start:#x}: {exc}")
        w.data = bytearray()

    def _on_module_page(self, start: int, data: bytes) -> None:
        self.headers[start] = parse_module_header(data)

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
        self.watches.append(_Watch(start, start + size, self._on_dynamic))

    def _on_dynamic(self, data: bytes) -> None:
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

    def _reasons(self, start: int, end: int) -> str:
        out: list[str] = []
        for w in self.wants:
            if w.start < end and start < w.end and w.reason not in out:
                out.append(w.reason)
        return ", ".join(out) or "kept"

    def _finish(self, hdr: Any, core: CoreNotes, plan: Plan) -> MinimizeReport:
        writer = self.writer
        loads = writer.normalized_loads()
        kept = [(s.vaddr, s.vaddr + s.size, self._reasons(s.vaddr, s.vaddr + s.size)) for s in loads]
        algorithm = sha = None
        if isinstance(self.src, _StreamSource):
            algorithm, sha = self.src.algorithm, self.src.hexdigest()
        modules = self._modules()
        info = {
            "tool": "coripper", "version": __version__, "mode": self.mode,
            "source": {"size": self.src.total(), "hash": algorithm, "sha256": sha,
                       "machine": core.machine},
            "options": {"keep_heap": self.opts.keep_heap, "max_stack": self.opts.max_stack,
                        "keep_ranges": [[hex(a), hex(b)] for a, b in self.opts.keep_ranges]},
            "kept": [{"start": hex(a), "end": hex(b), "reason": r} for a, b, r in kept],
            "truncated": self.truncated,
            "warnings": self.warnings[:100],
        }
        out = writer.finish(build_provenance(info))
        return MinimizeReport(
            machine=core.machine, bytes_in=self.src.total(), bytes_out=out,
            truncated=self.truncated,
            threads=[ThreadInfo(t.tid, t.signal, t.pc, t.sp) for t in core.threads],
            modules=modules, kept=kept, warnings=list(self.warnings), sha256=sha)

    def _modules(self) -> list[ModuleInfo]:
        out = []
        maps = self.core.mappings
        for m in self.plan.modules:
            mh = self.headers.get(m.start)
            if m.start in self.headers and mh is None:
                continue            # dumped first page is not ELF: not a module
            end = max((x.end for x in maps if x.path == m.path and x.start >= m.start), default=m.end)
            nxt = min((x.start for x in self.plan.modules if x.start > m.start), default=None)
            if nxt is not None and end > nxt:
                end = max(x.end for x in maps if x.path == m.path and m.start <= x.start < nxt)
            out.append(ModuleInfo(m.path, m.start, end, mh.build_id if mh else None))
        if self.vdso is not None and self.headers.get(self.vdso[0]) is not None:
            vdso_header = self.headers[self.vdso[0]]
            out.append(ModuleInfo(VDSO_NAME, self.vdso[0], self.vdso[1],
                                  vdso_header.build_id if vdso_header else None))
        return sorted(out, key=lambda m: m.start)


class _NullSink:
    """A seekable sink that discards data (``--info``)."""

    def __init__(self) -> None:
        self._pos = 0
        self._end = 0

    def write(self, data: bytes | memoryview) -> int:
        self._pos += len(data)
        self._end = max(self._end, self._pos)
        return len(data)

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else self._end + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True


def _is_seekable(f: Any) -> bool:
    try:
        if not f.seekable():
            return False
    except (AttributeError, OSError, ValueError):
        return False
    try:
        import fcntl
        # O_APPEND ("ab", `>>`): every write lands at the end whatever the position, so the
        # header patches would be appended instead of written in place. Spool instead.
        return not fcntl.fcntl(f.fileno(), fcntl.F_GETFL) & os.O_APPEND
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return True     # no descriptor (BytesIO, a wrapper): seekable() is the truth


def _run(source: _Source, dst: BinaryIO | None, options: MinimizeOptions | None,
         mode: str) -> MinimizeReport:
    opts = options or MinimizeOptions()
    if dst is None:
        return _Engine(source, _NullSink(), opts, mode).run()   # type: ignore[arg-type]
    if _is_seekable(dst):
        return _Engine(source, dst, opts, mode).run()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        report = _Engine(source, spool, opts, mode).run()   # type: ignore[arg-type]
        spool.seek(0)
        shutil.copyfileobj(spool, dst, CHUNK)
    return report


def minimize_stream(src: BinaryIO, dst: BinaryIO | None, options: MinimizeOptions | None = None
                    ) -> MinimizeReport:
    """Minimize a core read once, in order, from ``src`` (a pipe is fine) into ``dst``.

    Always reads ``src`` to EOF, also when it raises. ``options.hash_algorithm`` ("sha256",
    the default, or None) hashes the whole input for the report and the provenance note; with
    None the bytes that are not kept are discarded without copying them (splice/lseek).
    ``dst`` may be non-seekable (then only the kept data is buffered) or ``None`` (analyse
    only, as ``--info`` does).
    Raises :class:`CoreFormatError` only when the ELF or program headers are unusable.
    """
    algorithm = (options or MinimizeOptions()).hash_algorithm
    bad = algorithm is not None and algorithm not in HASH_ALGORITHMS
    source = _StreamSource(src, None if bad else algorithm)
    try:
        if bad:
            raise ValueError(f"unknown hash algorithm {algorithm!r} "
                             f"(known: {', '.join(HASH_ALGORITHMS)}, or None)")
        return _run(source, dst, options, "stream")
    finally:
        try:
            source.drain()
        except OSError:
            pass
        source.close()


def minimize_file(src: BinaryIO, dst: BinaryIO | None, options: MinimizeOptions | None = None
                  ) -> MinimizeReport:
    """Minimize a core from a seekable ``src``, reading only the parts that are kept."""
    return _run(_FileSource(src), dst, options, "file")
