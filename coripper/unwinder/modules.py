"""The ELF modules of a core: ``NT_FILE`` mappings grouped per loaded copy of a file (mappings
of a file read as data are not modules), load bias and build-id, the file on disk (under
``rootdir``), its separate debug file (by build-id, else ``.gnu_debuglink``), and their
CFI/symbol tables (with the ``name@plt`` symbols BFD synthesises for PLT stubs).

Every file is opened once, below the process's root (:class:`coripper.unwinder.rootfs.RootFS`, through
one :class:`~coripper.unwinder.rootfs.FileCache` per unwind): the module's one descriptor serves its
build-id, its tables, its DWARF and the memory reads it backs.

The build-id comes from the module's first page in the core when the core has it (the kernel
dumps it by default, coredump_filter bit 4), else from the file. A file on disk whose build-id
differs from the core's is a different build: we use neither its CFI nor its symbols and mark
the module ``mismatch``. Tables are cached per build-id for the life of the process.
"""

from __future__ import annotations

import bisect
import io
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from coripper.minimizer import elfcore
from coripper.unwinder.cfi import CfiTable, Row
from coripper.unwinder.coremem import CoreMemory, FileBacking
from coripper.unwinder.debugfiles import find_debug_file
from coripper.errors import CfiError, CoripperError, capture_internal_exceptions
from coripper.unwinder.plt import plt_symbols
from coripper.unwinder.rootfs import FileCache, RegularFile, RootFS
from coripper.unwinder.symbols import Symbol, SymbolTable, parse_symbols

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

AT_ENTRY = 9
AT_SYSINFO_EHDR = 33
VDSO_PATH = "[vdso]"
#: What reading a file's ELF headers with our own parsers may raise on a bad file.
_FILE_ERRORS = (CoripperError, OSError, ValueError)


@dataclass
class ModuleTables:
    """CFI tables (searched in order) and function symbols of one module."""

    cfi: list[CfiTable] = field(default_factory=list)
    symbols: SymbolTable = field(default_factory=lambda: SymbolTable(()))

    def row_at(self, pc: int) -> Row | None:
        """The first CFI row covering link-time ``pc`` (``.eh_frame``, then ``.debug_frame``)."""
        for table in self.cfi:
            try:
                row = table.row_at(pc)
            except CfiError:
                continue
            if row is not None:
                return row
        return None


@dataclass(frozen=True)
class Module:
    """One mapped ELF object of the process."""

    path: str                    # as the process mapped it (NT_FILE), or "[vdso]"
    start: int                   # lowest mapped address
    end: int
    bias: int                    # runtime address - link-time address
    build_id: str | None         # from the core's copy of the header, else from the file
    disk_path: str | None        # the file we read (its path below the root), None when absent
    debug_path: str | None       # separate debug file (/usr/lib/debug/.build-id/..)
    status: str                  # "ok", "missing" (no file), "mismatch" (other build-id), "no-build-id"
    tables: ModuleTables = field(compare=False, repr=False, default_factory=ModuleTables)
    #: The open files behind disk_path and debug_path (valid while the unwind's FileCache is).
    file: RegularFile | None = field(default=None, compare=False, repr=False)
    debug_file: RegularFile | None = field(default=None, compare=False, repr=False)

    def contains(self, addr: int) -> bool:
        return self.start <= addr < self.end


class ModuleMap:
    """Modules sorted by address; :meth:`close` closes their files when the map owns them."""

    def __init__(self, modules: Iterable[Module], files: FileCache | None = None) -> None:
        self.modules = sorted(modules, key=lambda m: m.start)
        self._starts = [m.start for m in self.modules]
        self._files = files

    def close(self) -> None:
        """Close the files the map opened itself (none when the caller gave a FileCache)."""
        if self._files is not None:
            self._files.close()

    def find(self, addr: int) -> Module | None:
        """The module whose address range holds ``addr``."""
        i = bisect.bisect_right(self._starts, addr) - 1
        while i >= 0:
            m = self.modules[i]
            if m.contains(addr):
                return m
            if i > 0 and self.modules[i - 1].end <= addr:
                return None
            i -= 1
        return None


_TABLE_CACHE: dict[object, ModuleTables] = {}
_CACHE_LIMIT = 512


def clear_cache() -> None:
    """Forget every cached module table (tests, long-running processes)."""
    _TABLE_CACHE.clear()


def _section(elf: ELFFile, name: str) -> tuple[bytes, int] | None:
    sec = elf.get_section_by_name(name)
    if sec is None or sec["sh_type"] == "SHT_NOBITS":
        return None
    return sec.data(), sec["sh_addr"]


def _symbols(elf: ELFFile) -> list[Symbol]:
    from elftools.elf.sections import SymbolTableSection
    for name in (".symtab", ".dynsym"):
        sec = elf.get_section_by_name(name)
        if isinstance(sec, SymbolTableSection) and sec["sh_type"] != "SHT_NOBITS":
            strtab = elf.get_section(sec["sh_link"])
            syms = parse_symbols(sec.data(), strtab.data())
            if syms:
                return syms
    return []


def load_tables(stream: BinaryIO | None, debug_stream: BinaryIO | None) -> ModuleTables:
    """Read CFI and symbols of an ELF object and of its separate debug file (either may be None).

    Symbols come from the debug file's ``.symtab`` when there is one (it has the static
    functions a stripped library lacks), else from the object's ``.symtab`` / ``.dynsym``.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    tables = ModuleTables()
    syms: list[Symbol] = []
    plt_syms: list[Symbol] = []
    sections: list[tuple[int, int]] = []
    for s, is_debug in ((debug_stream, True), (stream, False)):
        if s is None:
            continue
        try:
            elf = ELFFile(s)
            if elf.elfclass != 64 or not elf.little_endian:
                continue
            if not is_debug:
                eh = _section(elf, ".eh_frame")
                if eh is not None:
                    hdr = _section(elf, ".eh_frame_hdr")
                    tables.cfi.insert(0, CfiTable.from_eh_frame(
                        eh[0], eh[1], hdr[0] if hdr else None, hdr[1] if hdr else 0))
            dbg = _section(elf, ".debug_frame")
            if dbg is not None:
                tables.cfi.append(CfiTable.from_debug_frame(dbg[0]))
            if not syms:
                syms = _symbols(elf)
            if not sections:
                sections = [(sec["sh_addr"], sec["sh_addr"] + sec["sh_size"])
                            for sec in elf.iter_sections()
                            if sec["sh_flags"] & 4 and sec["sh_addr"] and sec["sh_size"]]
            if not is_debug:
                plt_syms += plt_symbols(elf)
        except (ELFError, CfiError, OSError, ValueError, KeyError, AssertionError, struct.error):
            continue
    tables.symbols = SymbolTable(syms + plt_syms, sections)
    return tables


def _file_build_id(f: RegularFile) -> str | None:
    """The build-id in the file's notes; None for an unreadable or garbage file."""
    with capture_internal_exceptions("the build-id of %s", f.path, expected=_FILE_ERRORS):
        head = f.pread(0, 64)
        eh = elfcore.parse_elf_header(head, require_core=False)
        phdrs = elfcore.parse_program_headers(f.pread(eh.e_phoff, eh.e_phnum * eh.e_phentsize),
                                              eh.e_phnum)
        for ph in phdrs:
            if ph.p_type == elfcore.PT_NOTE and ph.p_filesz < 1 << 20:
                bid = elfcore.parse_build_id_notes(f.pread(ph.p_offset, ph.p_filesz))
                if bid:
                    return bid
    return None


def _tables_for(key: object, file: RegularFile | None, debug_file: RegularFile | None,
                data: bytes | None = None) -> ModuleTables:
    if key in _TABLE_CACHE:
        return _TABLE_CACHE[key]
    stream: BinaryIO | None = None
    dstream: BinaryIO | None = None
    try:
        if data is not None:
            stream = io.BytesIO(data)
        elif file is not None:
            stream = file.stream()
        if debug_file is not None:
            dstream = debug_file.stream()
        tables = load_tables(stream, dstream)
    except (OSError, ValueError):
        tables = ModuleTables()
    finally:
        for s in (stream, dstream):
            if s is not None:
                s.close()
    if len(_TABLE_CACHE) >= _CACHE_LIMIT:
        _TABLE_CACHE.clear()
    _TABLE_CACHE[key] = tables
    return tables


def _identity(f: RegularFile | None) -> object:
    return f.identity if f is not None else None


def _file_cache(rootdir: FileCache | RootFS | str) -> tuple[FileCache, bool]:
    """``rootdir`` as a FileCache, and whether it was made here (and is ours to close)."""
    if isinstance(rootdir, FileCache):
        return rootdir, False
    if isinstance(rootdir, RootFS):
        return FileCache(rootdir), True
    root = RootFS.host() if rootdir in ("", "/") else RootFS.open(rootdir)
    return FileCache(root, own_root=True), True


def map_modules(notes: elfcore.CoreNotes, memory: CoreMemory,
                rootdir: FileCache | RootFS | str = "/", *, executable: str | None = None,
                executable_files: FileCache | None = None) -> ModuleMap:
    """Group ``NT_FILE`` mappings into modules and load their tables.

    Files are opened below ``rootdir`` (a host directory, a :class:`RootFS`, or the unwind's
    :class:`FileCache`, which the caller then closes). ``executable`` is the main program's
    path below ``executable_files`` (default: the same root): used when the ``NT_FILE`` path
    is not there, and to place the program in a core without ``NT_FILE``.
    Also installs the files as ``memory``'s fallback for read-only file-backed memory (only
    for modules whose build-id matches).
    """
    files, owned = _file_cache(rootdir)
    exe_files = executable_files or files
    exe_file = exe_files.get(executable) if executable else None
    page = notes.page_size or 4096
    by_path: dict[str, list[elfcore.FileMapping]] = {}
    for m in _disjoint(notes.mappings):
        by_path.setdefault(m.path, []).append(m)
    modules: list[Module] = []
    backings: list[FileBacking] = []
    for path, maps in by_path.items():
        f = files.get(path)
        if f is None and exe_file is not None and notes.executable == path:
            f = exe_file
        found = _path_modules(path, maps, f, memory, files, page)
        modules += found
        if f is not None and any(m.file is not None for m in found):
            # every mapping of the file (a loaded copy or an mmap of it) reads as the file
            backings += [FileBacking(m.start, m.end, m.file_offset, f) for m in maps]
    if exe_file is not None and not notes.mappings:
        exe = _executable_from_auxv(notes, memory, exe_file, exe_files, page)
        if exe is not None:
            modules.append(exe)
            backings.append(FileBacking(exe.start, exe.end, 0, exe_file))
            # ld.so's l_name points at the executable's PT_INTERP string, in a read-only
            # segment qemu does not dump: read it from the file
            memory.set_file_backings(backings)
            # ...and its shared objects, from the process's own link_map chain
            for lib, lib_backings in _modules_from_link_map(memory, exe, files, page):
                modules.append(lib)
                backings += lib_backings
    vdso = _vdso_module(notes, memory)
    if vdso is not None:
        modules.append(vdso)
    memory.set_file_backings(backings)
    return ModuleMap(modules, files if owned else None)


def _path_modules(path: str, maps: list[elfcore.FileMapping], f: RegularFile | None,
                  memory: CoreMemory, files: FileCache, page: int) -> list[Module]:
    """The loaded copies of the file ``path`` (opened as ``f``, None when it is not there),
    with their status, debug file and tables. A module has ``file`` only when usable."""
    file_bid = _file_build_id(f) if f is not None else None
    out = []
    for base, mine, mh in _loaded_instances(maps, memory, f, page):
        build_id = mh.build_id or file_bid
        if f is None:
            status = "missing"
        elif build_id and file_bid and build_id != file_bid:
            status = "mismatch"
        elif not build_id:
            status = "no-build-id"
        else:
            status = "ok"
        bias = base.start - (mh.min_vaddr & ~(page - 1))
        usable = f if status in ("ok", "no-build-id") else None
        debug = find_debug_file(build_id, usable, path, files) \
            if status in ("ok", "missing", "no-build-id") else None
        key: object = (build_id, _identity(debug)) if build_id else \
            ("path", _identity(usable), _identity(debug))
        if usable is None and debug is None:
            tables = ModuleTables()
        else:
            if usable is None:
                key = ("debug-only", build_id)
            tables = _tables_for(key, usable, debug)
        out.append(Module(path, min(m.start for m in mine), max(m.end for m in mine), bias,
                          build_id, f.path if f is not None else None,
                          debug.path if debug is not None else None, status, tables,
                          file=usable, debug_file=debug))
    return out


def _module_head(base: elfcore.FileMapping, memory: CoreMemory, f: RegularFile | None,
                 page: int) -> elfcore.ModuleHeader | None:
    """The ELF header page of a mapping at file offset 0: from the core, else from the file."""
    head = memory.read(base.start, page)
    if (head is None or head[:4] != b"\x7fELF") and f is not None:
        try:
            head = f.pread(0, page)
        except (OSError, ValueError):
            head = None
    if head is None or head[:4] != b"\x7fELF":
        return None
    with capture_internal_exceptions("the ELF header at %#x", base.start, expected=CoripperError):
        return elfcore.parse_module_header(head)
    return None                     # a garbage header is simply not a module


#: Copies of one file examined as loaded modules (glibc's dlmopen has 16 namespaces; the others
#: are data mappings), and mappings examined per copy (one or two per PT_LOAD, plus gaps): so a
#: process that maps one file 65,530 times costs linear time, not quadratic.
MAX_COPIES = 256
MAX_COPY_MAPPINGS = 64


def _disjoint(mappings: Iterable[elfcore.FileMapping]) -> list[elfcore.FileMapping]:
    """``NT_FILE`` mappings in address order, without empty ones and without those overlapping
    an earlier one (a process's mappings never overlap; a forged core's may, all of them)."""
    out: list[elfcore.FileMapping] = []
    end = 0
    for m in sorted(mappings, key=lambda m: m.start):
        if m.start >= end and m.end > m.start:
            out.append(m)
            end = m.end
    return out


def _loaded_instances(maps: list[elfcore.FileMapping], memory: CoreMemory, f: RegularFile | None,
                      page: int) -> list[tuple[elfcore.FileMapping, list[elfcore.FileMapping],
                                             elfcore.ModuleHeader]]:
    """The copies of one file that the dynamic loader mapped, each as (first mapping, its
    mappings, header).

    A file may also be mapped as data (gdb and elfutils mmap the libraries they read, a process
    may mmap its own executable): such a mapping at file offset 0 starts with an ELF header
    too. A loaded copy maps every ``PT_LOAD`` with file contents at ``bias + p_vaddr`` from
    ``p_offset``; a data mapping does not. The copies whose every such segment is mapped are
    the modules (several with ``dlmopen``); when none is complete, the one with most segments
    mapped (ties: the lowest), as a damaged or partial ``NT_FILE`` may leave.
    """
    maps = sorted(maps, key=lambda m: m.start)      # disjoint (map_modules)
    starts = [m.start for m in maps]
    scored = []
    for base in [m for m in maps if m.file_offset == 0][:MAX_COPIES]:
        mh = _module_head(base, memory, f, page)
        if mh is None:
            continue
        bias = base.start - (mh.min_vaddr & ~(page - 1))
        loads = [p for p in mh.phdrs if p.p_type == elfcore.PT_LOAD and p.p_filesz]
        segs = [((bias + p.p_vaddr) & ~(page - 1),
                 (bias + p.p_vaddr + p.p_memsz + page - 1) & ~(page - 1),
                 p.p_offset & ~(page - 1)) for p in loads]
        span_end = max((hi for _lo, hi, _off in segs), default=base.end)
        mine: list[elfcore.FileMapping] = []
        mapped: set[int] = set()
        first = bisect.bisect_left(starts, base.start)
        for m in maps[first:first + MAX_COPY_MAPPINGS]:
            if m.start >= span_end:
                break
            if m.end > span_end:
                continue
            # the kernel may split a segment's mapping (RELRO) or merge adjacent ones
            hits = [i for i, (lo, hi, off) in enumerate(segs)
                    if m.start < hi and lo < m.end and m.file_offset + (lo - m.start) == off]
            if hits:
                mine.append(m)
                mapped.update(i for i in hits if m.start <= segs[i][0] < m.end)
        if base not in mine:
            mine.append(base)
        scored.append((len(mapped) == len(loads) and bool(loads), len(mapped), base, mine, mh))
    complete = [(b, mine, mh) for full, _n, b, mine, mh in scored if full]
    if complete or not scored:
        return complete
    best = max(scored, key=lambda x: (x[1], -x[2].start))
    return [(best[2], best[3], best[4])]


def _executable_from_auxv(notes: elfcore.CoreNotes, memory: CoreMemory, executable: RegularFile,
                          files: FileCache, page: int) -> Module | None:
    """The main program of a core without ``NT_FILE`` (qemu-user writes none): placed by
    ``AT_ENTRY`` (runtime entry point) minus the file's ``e_entry``. ``files`` is where the
    program was found (its debug file is looked up there too)."""
    entry = notes.auxv.get(AT_ENTRY)
    if not entry:
        return None
    mh = None
    with capture_internal_exceptions("the ELF header of %s", executable.path,
                                     expected=_FILE_ERRORS):
        head = executable.pread(0, page)
        eh = elfcore.parse_elf_header(head, require_core=False)
        mh = elfcore.parse_module_header(head)
    if mh is None:                  # not an ELF file we can use
        return None
    loads = [p for p in mh.phdrs if p.p_type == elfcore.PT_LOAD]
    if not loads:
        return None
    bias = entry - eh.e_entry
    start = (mh.min_vaddr & ~(page - 1)) + bias
    end = max(p.p_vaddr + p.p_memsz for p in loads) + bias
    return _file_module(executable.path, start, end, bias, executable, files,
                        _core_build_id(memory, start, page),
                        mh.build_id or _file_build_id(executable))


def _core_build_id(memory: CoreMemory, addr: int, page: int) -> str | None:
    """The build-id in the ELF header page at ``addr`` in the core, when it was dumped."""
    head = memory.read(addr, page)
    if head is None or head[:4] != b"\x7fELF":
        return None
    mh = None
    with capture_internal_exceptions("the ELF header at %#x", addr, expected=CoripperError):
        mh = elfcore.parse_module_header(head)
    return mh.build_id if mh else None      # garbage in the core: trust the file


def _file_module(name: str, start: int, end: int, bias: int, f: RegularFile, files: FileCache,
                 core_bid: str | None, file_bid: str | None) -> Module:
    """A module found without ``NT_FILE``, with its tables; ``mismatch`` (no tables) when the
    file on disk is another build than the one in the core."""
    build_id = core_bid or file_bid
    if core_bid and file_bid and core_bid != file_bid:
        return Module(name, start, end, bias, build_id, f.path, None, "mismatch")
    debug = find_debug_file(build_id, f, name, files)
    tables = _tables_for((build_id, _identity(debug)) if build_id else
                         ("path", f.identity, _identity(debug)), f, debug)
    return Module(name, start, end, bias, build_id, f.path,
                  debug.path if debug is not None else None,
                  "ok" if build_id else "no-build-id", tables, file=f, debug_file=debug)


MAX_LINK_MAP = 4096     # nodes followed; a loop or garbage ends the walk earlier
_LINK_MAP_NODE = struct.Struct("<QQQQ")     # l_addr, l_name, l_ld, l_next (glibc <link.h>)


def _read_cstring(memory: CoreMemory, addr: int, limit: int = 4096) -> str | None:
    out = bytearray()
    while len(out) < limit:
        chunk = memory.read(addr + len(out), 64) or memory.read(addr + len(out), 1)
        if chunk is None:
            return None
        nul = chunk.find(0)
        if nul >= 0:
            return (out + chunk[:nul]).decode("utf-8", "surrogateescape")
        out += chunk
    return None


def _link_map_entries(memory: CoreMemory, exe: Module) -> list[tuple[str, int]]:
    """``(l_name, l_addr)`` of the shared objects in the process's ``r_debug`` chain, found
    through the executable's ``DT_DEBUG`` (the dynamic section is in its dumped data)."""
    assert exe.file is not None
    try:
        mh = elfcore.parse_module_header(exe.file.pread(0, 1 << 16))
    except (OSError, ValueError):
        return []
    if mh is None or mh.dynamic_vaddr is None:
        return []                          # static: no dynamic section, no chain (not an error)
    dynamic = memory.read(exe.bias + mh.dynamic_vaddr, min(mh.dynamic_size, 1 << 16))
    if dynamic is None:
        return []
    r_debug = dict(elfcore.parse_dynamic(dynamic)).get(elfcore.DT_DEBUG, 0)
    head = memory.read(r_debug + 8, 8) if r_debug else None
    if head is None:
        return []
    node = struct.unpack("<Q", head)[0]
    entries: list[tuple[str, int]] = []
    seen: set[int] = set()
    while node and node not in seen and len(seen) < MAX_LINK_MAP:
        seen.add(node)
        raw = memory.read(node, _LINK_MAP_NODE.size)
        if raw is None:
            break
        l_addr, l_name, _l_ld, node = _LINK_MAP_NODE.unpack(raw)
        name = _read_cstring(memory, l_name) if l_name else None
        if name:                            # "" is the main program itself
            entries.append((name, l_addr))
    return entries


def _modules_from_link_map(memory: CoreMemory, exe: Module, files: FileCache, page: int
                           ) -> list[tuple[Module, list[FileBacking]]]:
    """The shared objects of a core without ``NT_FILE`` (qemu-user's), from ``link_map``.

    Each object is placed by ``l_addr`` (its load bias) plus its file's ``PT_LOAD``s; names
    are the paths the process used, looked up below the root (the guest's sysroot, e.g.
    /usr/aarch64-linux-gnu, as gdb's ``set sysroot``). Objects not found there are skipped
    (the vdso's "linux-vdso.so.1" among them).
    """
    out: list[tuple[Module, list[FileBacking]]] = []
    if exe.file is None or exe.status == "mismatch":
        return out
    for name, l_addr in _link_map_entries(memory, exe):
        f = files.get(name)
        if f is None:
            continue
        try:
            mh = elfcore.parse_module_header(f.pread(0, page))
        except (OSError, ValueError):
            continue
        loads = [p for p in (mh.phdrs if mh else ()) if p.p_type == elfcore.PT_LOAD]
        if mh is None or not loads:
            continue
        start = l_addr + mh.min_vaddr
        end = l_addr + max(p.p_vaddr + p.p_memsz for p in loads)
        module = _file_module(name, start, end, l_addr, f, files,
                              _core_build_id(memory, start, page),
                              mh.build_id or _file_build_id(f))
        if module.status == "mismatch":
            out.append((module, []))
            continue
        # read-only segments only: writable data in the file is not what the process held
        backings = [FileBacking(l_addr + (p.p_vaddr & ~(page - 1)),
                                l_addr + p.p_vaddr + p.p_filesz, p.p_offset & ~(page - 1), f)
                    for p in loads if not p.p_flags & elfcore.PF_W]
        out.append((module, backings))
    return out


def _vdso_module(notes: elfcore.CoreNotes, memory: CoreMemory) -> Module | None:
    addr = notes.auxv.get(AT_SYSINFO_EHDR)
    if not addr:
        return None
    seg = next((s for s in memory.segments if s.vaddr <= addr < s.end), None)
    if seg is None:
        return None
    image = memory.read(addr, seg.end - addr)
    if image is None or image[:4] != b"\x7fELF":
        return None
    mh = None
    with capture_internal_exceptions("the vdso at %#x", addr, expected=CoripperError):
        mh = elfcore.parse_module_header(image)
    if mh is None:
        return None
    key = mh.build_id or ("vdso", image)
    tables = _tables_for(key, None, None, data=image)
    return Module(VDSO_PATH, addr, seg.end, addr - mh.min_vaddr, mh.build_id, None, None,
                  "ok" if mh.build_id else "no-build-id", tables)
