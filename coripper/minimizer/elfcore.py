"""Pure parsing of 64-bit little-endian ELF core files: header, program headers and notes.

Standard library only (the crash hook imports it through :mod:`coripper.minimizer.stream`). Every function
takes bytes and returns named tuples (immutable, and far cheaper to define at start-up than
dataclasses, which ``coripper CORE > OUT`` would otherwise spend a third of its time importing);
nothing here opens files.

Layouts are the kernel's (``include/uapi/linux/elfcore.h``, ``fs/binfmt_elf.c``) for x86_64 and
aarch64; 32-bit and big-endian cores are refused with :class:`UnsupportedCoreError`.
"""

# No ``from __future__ import annotations`` here, unlike elsewhere: typing.NamedTuple turns each
# string annotation into a ForwardRef, compiling it, which doubled the time of importing this
# module (about 1.3 ms of ``coripper CORE > OUT``'s start-up). Every name an annotation uses
# is defined before it.

import struct
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from types import MappingProxyType

from ..errors import CoreFormatError, UnsupportedCoreError

TYPE_CHECKING = False     # typing is not imported at run time (coripper/minimizer/lighttyping.py)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from .lighttyping import NamedTuple

# --- constants (names as in elf.h) ---------------------------------------------------------

ELFMAG = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_EXEC, ET_DYN, ET_CORE = 2, 3, 4
EM_X86_64, EM_AARCH64 = 62, 183
MACHINES = {EM_X86_64: "x86_64", EM_AARCH64: "aarch64"}

PT_NULL, PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR = 0, 1, 2, 3, 4, 6
PF_X, PF_W, PF_R = 1, 2, 4
PN_XNUM = 0xFFFF

NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_GNU_BUILD_ID = 3  # with note name "GNU"
NT_X86_XSTATE = 0x202
NT_ARM_TLS = 0x401
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45

AT_NULL, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_ENTRY = 0, 3, 4, 5, 6, 7, 9
AT_EXECFN, AT_SYSINFO_EHDR = 31, 33

DT_NULL, DT_DEBUG = 0, 21

EHDR_SIZE = 64
PHDR_SIZE = 56
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_NHDR = struct.Struct("<III")
#: ``Elf64_Nhdr``: namesz, descsz, type.
NHDR_SIZE = _NHDR.size

#: x86_64 ``struct user_regs_struct`` (arch/x86/include/asm/user_64.h), in order.
X86_64_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
               "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
               "gs_base", "ds", "es", "fs", "gs")
#: aarch64 ``struct user_pt_regs``: x0..x30, sp, pc, pstate.
AARCH64_REGS = tuple(f"x{i}" for i in range(31)) + ("sp", "pc", "pstate")

#: offset of pr_reg in ``struct elf_prstatus`` (64-bit): siginfo 12, cursig 2+2 pad,
#: sigpend/sighold 16, pid/ppid/pgrp/sid 16, four timevals 64.
PR_REG_OFFSET = 112


# --- records -----------------------------------------------------------------------------

class ElfHeader(NamedTuple):
    """``Elf64_Ehdr`` fields, verbatim."""

    e_ident: bytes
    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_ehsize: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int

    @property
    def machine(self) -> str:
        """``"x86_64"``, ``"aarch64"`` or ``"EM_<n>"``."""
        return MACHINES.get(self.e_machine, f"EM_{self.e_machine}")


class ProgramHeader(NamedTuple):
    """``Elf64_Phdr`` fields, verbatim, plus its index in the table.

    A named tuple, not a dataclass: a core may have ~65,530 of them and this is 3x faster to
    build. (The ``index`` field hides ``tuple.index``, which nothing here calls.)"""

    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_align: int
    index: int = 0  # type: ignore[assignment]

    @property
    def end(self) -> int:
        """End address of the file-backed part (``p_vaddr + p_filesz``)."""
        return self.p_vaddr + self.p_filesz

    def contains(self, addr: int) -> bool:
        """True when ``addr`` lies in this segment's dumped data."""
        return self.p_vaddr <= addr < self.end


class Note(NamedTuple):
    """One ELF note. ``offset`` is where its header starts within the note segment's data."""

    name: str
    n_type: int
    desc: bytes
    offset: int = 0

    @property
    def raw_name(self) -> bytes:
        return self.name.encode("latin-1")


class PrStatus(NamedTuple):
    """One thread's ``NT_PRSTATUS`` (plus its ``NT_ARM_TLS`` on aarch64)."""

    tid: int
    signal: int
    regs: Mapping[str, int]
    pc: int
    sp: int
    tls: int | None          # fs_base (x86_64) or tpidr_el0 (aarch64)
    ppid: int = 0
    pgrp: int = 0
    sid: int = 0


class FileMapping(NamedTuple):
    """One ``NT_FILE`` entry; ``file_offset`` is in bytes (the note stores pages).

    A named tuple, not a dataclass: a core may hold ~65,530 of them (``vm.max_map_count``)."""

    start: int
    end: int
    file_offset: int
    path: str


class PrPsInfo(NamedTuple):
    """``NT_PRPSINFO`` (``struct elf_prpsinfo``)."""

    state: int
    fname: str
    psargs: str
    pid: int
    ppid: int
    uid: int
    gid: int


class SigInfo(NamedTuple):
    """The crashing thread's ``NT_SIGINFO`` (``siginfo_t``); ``addr`` is ``si_addr`` for faults."""

    signo: int
    errno: int
    code: int
    addr: int


class CoreNotes(NamedTuple):
    """What the notes of a core say. ``threads[0]`` is the crashing thread."""

    e_machine: int
    machine: str
    threads: tuple[PrStatus, ...]
    mappings: tuple[FileMapping, ...]
    auxv: Mapping[int, int]
    prpsinfo: PrPsInfo | None
    siginfo: SigInfo | None
    page_size: int
    notes: tuple[Note, ...]
    warnings: tuple[str, ...] = ()

    @property
    def crash_thread(self) -> PrStatus | None:
        return self.threads[0] if self.threads else None

    @property
    def executable(self) -> str | None:
        """Path of the main executable: the NT_FILE mapping holding AT_PHDR (or AT_ENTRY)."""
        for key in (AT_PHDR, AT_ENTRY):
            addr = self.auxv.get(key)
            if addr:
                for m in self.mappings:
                    if m.start <= addr < m.end:
                        return m.path
        return None


class ModuleHeader(NamedTuple):
    """What the first page of a mapped ELF object says about it (see :func:`parse_module_header`)."""

    e_type: int
    e_machine: int
    phdrs: tuple[ProgramHeader, ...]
    build_id: str | None      # hex, from a PT_NOTE inside the page
    min_vaddr: int            # lowest PT_LOAD p_vaddr rounded down to its page
    dynamic_vaddr: int | None # PT_DYNAMIC p_vaddr (unbiased)
    dynamic_size: int
    phdr_vaddr: int | None    # PT_PHDR p_vaddr (unbiased)


# --- parsing ------------------------------------------------------------------------------

def parse_elf_header(data: bytes, *, require_core: bool = True) -> ElfHeader:
    """Parse ``Elf64_Ehdr`` from the first 64 bytes of ``data``.

    Raises :class:`CoreFormatError` for non-ELF/truncated input and :class:`UnsupportedCoreError`
    for 32-bit, big-endian or (with ``require_core``) non-core objects of unknown machines.
    """
    if len(data) < 16 or data[:4] != ELFMAG:
        raise CoreFormatError("not an ELF file (bad magic)")
    ei_class, ei_data = data[4], data[5]
    if ei_class == ELFCLASS32:
        raise UnsupportedCoreError("32-bit ELF cores are not supported (only ELFCLASS64)")
    if ei_class != ELFCLASS64:
        raise CoreFormatError(f"bad ELF class {ei_class}")
    if ei_data == ELFDATA2MSB:
        raise UnsupportedCoreError("big-endian ELF cores are not supported (only little-endian)")
    if ei_data != ELFDATA2LSB:
        raise CoreFormatError(f"bad ELF data encoding {ei_data}")
    if len(data) < EHDR_SIZE:
        raise CoreFormatError("truncated ELF header")
    hdr = ElfHeader(*_EHDR.unpack_from(data, 0))
    if require_core:
        if hdr.e_type != ET_CORE:
            raise CoreFormatError(f"not a core file (e_type {hdr.e_type}, expected ET_CORE 4)")
        if hdr.e_machine not in MACHINES:
            raise UnsupportedCoreError(
                f"unsupported machine e_machine={hdr.e_machine} (supported: x86_64, aarch64)")
    if hdr.e_phnum and hdr.e_phentsize != PHDR_SIZE:
        raise CoreFormatError(f"bad e_phentsize {hdr.e_phentsize} (expected {PHDR_SIZE})")
    return hdr


def parse_program_headers(data: bytes, count: int | None = None) -> tuple[ProgramHeader, ...]:
    """Parse ``count`` (default: as many as fit) ``Elf64_Phdr`` entries packed in ``data``."""
    n = len(data) // PHDR_SIZE if count is None else min(count, len(data) // PHDR_SIZE)
    return tuple(ProgramHeader(t, fl, off, va, pa, fs, ms, al, i)
                 for i, (t, fl, off, va, pa, fs, ms, al)
                 in enumerate(_PHDR.iter_unpack(memoryview(data)[:n * PHDR_SIZE])))


def pack_program_header(ph: ProgramHeader) -> bytes:
    """Serialize one ``Elf64_Phdr``."""
    return _PHDR.pack(*ph[:8])


def _align4(n: int) -> int:
    return (n + 3) & ~3


def iter_notes(data: bytes, *, align: int = 4) -> Iterator[Note]:
    """Yield the notes packed in ``data`` (a ``PT_NOTE`` segment's contents).

    Stops silently at the first note whose header or sizes run past the end; callers that care
    compare the last note's end with ``len(data)`` (see :func:`parse_notes`).
    """
    pad = (lambda n: (n + 7) & ~7) if align == 8 else _align4
    mv = memoryview(data)
    off = 0
    size = len(data)
    while off + NHDR_SIZE <= size:
        namesz, descsz, n_type = _NHDR.unpack_from(mv, off)
        name_off = off + NHDR_SIZE
        desc_off = name_off + pad(namesz)
        end = desc_off + pad(descsz)
        if desc_off + descsz > size:
            return
        name = bytes(mv[name_off:name_off + namesz]).split(b"\0", 1)[0].decode("latin-1")
        yield Note(name, n_type, bytes(mv[desc_off:desc_off + descsz]), off)
        off = min(end, size)


def parse_notes(data: bytes, limit: int | None = None) -> tuple[tuple[Note, ...], list[str]]:
    """All complete notes of ``data`` (the first ``limit`` of them, if given) plus warnings
    about trailing garbage / a truncated note / notes past the limit."""
    notes = tuple(iter_notes(data) if limit is None else islice(iter_notes(data), max(limit, 0)))
    warnings: list[str] = []
    end = note_end(data, notes[-1]) if notes else 0
    if len(data) - end >= NHDR_SIZE:
        if limit is not None and len(notes) == limit:
            warnings.append(f"more than {limit} notes: those from offset {end} on are dropped")
        else:
            warnings.append(f"note data truncated or malformed at offset {end} of {len(data)}")
    return notes, warnings


def note_end(data: bytes, note: Note) -> int:
    """The offset in ``data`` just past ``note`` (a note :func:`iter_notes` found there): its
    header, then name and descriptor, each padded to 4 bytes."""
    namesz = _NHDR.unpack_from(data, note.offset)[0]
    return note.offset + NHDR_SIZE + _align4(namesz) + _align4(len(note.desc))


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_prstatus(desc: bytes, e_machine: int) -> PrStatus:
    """Parse one ``NT_PRSTATUS`` descriptor for ``e_machine``."""
    names = X86_64_REGS if e_machine == EM_X86_64 else AARCH64_REGS
    need = PR_REG_OFFSET + 8 * len(names)
    if len(desc) < need:
        raise CoreFormatError(f"NT_PRSTATUS too short ({len(desc)} < {need} bytes)")
    cursig = struct.unpack_from("<h", desc, 12)[0]
    pid, ppid, pgrp, sid = struct.unpack_from("<iiii", desc, 32)
    values = struct.unpack_from(f"<{len(names)}Q", desc, PR_REG_OFFSET)
    regs = dict(zip(names, values, strict=True))
    if e_machine == EM_X86_64:
        pc, sp, tls = regs["rip"], regs["rsp"], regs["fs_base"]
    else:
        pc, sp, tls = regs["pc"], regs["sp"], None
    return PrStatus(pid, cursig, MappingProxyType(regs), pc, sp, tls, ppid, pgrp, sid)


def parse_nt_file(desc: bytes) -> tuple[tuple[FileMapping, ...], int]:
    """Parse ``NT_FILE``: returns the mappings and the page size it uses."""
    if len(desc) < 16:
        raise CoreFormatError("NT_FILE too short")
    count, page_size = struct.unpack_from("<QQ", desc, 0)
    if count > (len(desc) - 16) // 24:
        raise CoreFormatError(f"NT_FILE claims {count} entries, room for {(len(desc) - 16) // 24}")
    triples = struct.iter_unpack("<QQQ", memoryview(desc)[16:16 + 24 * count])
    names = desc[16 + 24 * count:].split(b"\0", count)[:count]
    names += [b""] * (count - len(names))
    return tuple(FileMapping(start, end, pgoff * page_size, name.decode("utf-8", "surrogateescape"))
                 for (start, end, pgoff), name in zip(triples, names, strict=True)), page_size


def parse_auxv(desc: bytes) -> dict[int, int]:
    """Parse ``NT_AUXV`` pairs up to ``AT_NULL``."""
    out: dict[int, int] = {}
    for key, val in struct.iter_unpack("<QQ", desc[:len(desc) // 16 * 16]):
        if key == AT_NULL:
            break
        out.setdefault(key, val)
    return out


def parse_prpsinfo(desc: bytes) -> PrPsInfo:
    """Parse ``NT_PRPSINFO`` (64-bit ``struct elf_prpsinfo``, 136 bytes)."""
    if len(desc) < 136:
        raise CoreFormatError(f"NT_PRPSINFO too short ({len(desc)} bytes)")
    state = desc[0]
    uid, gid, pid, ppid = struct.unpack_from("<IIii", desc, 16)
    return PrPsInfo(state, _cstr(desc[40:56]), _cstr(desc[56:136]).rstrip(), pid, ppid, uid, gid)


def parse_siginfo(desc: bytes) -> SigInfo:
    """Parse ``NT_SIGINFO`` (``si_signo, si_errno, si_code``, then ``si_addr`` at 16)."""
    if len(desc) < 24:
        raise CoreFormatError("NT_SIGINFO too short")
    signo, errno, code = struct.unpack_from("<iii", desc, 0)
    return SigInfo(signo, errno, code, struct.unpack_from("<Q", desc, 16)[0])


def parse_core_notes(notes: Sequence[Note], e_machine: int) -> CoreNotes:
    """Interpret the notes of a core. Malformed individual notes become warnings, not errors.

    Thread order follows the notes; the crashing thread (the first with ``pr_cursig`` set, which
    the kernel writes first) is moved to the front. Notes between two ``NT_PRSTATUS`` belong to
    the preceding thread (``NT_ARM_TLS`` gives that thread's ``tls``).
    """
    warnings: list[str] = []
    threads: list[PrStatus] = []
    mappings: tuple[FileMapping, ...] = ()
    auxv: dict[int, int] = {}
    prpsinfo = siginfo = None
    page_size = 4096
    for note in notes:
        try:
            if note.name == "CORE" and note.n_type == NT_PRSTATUS:
                threads.append(parse_prstatus(note.desc, e_machine))
            elif note.name == "LINUX" and note.n_type == NT_ARM_TLS and threads \
                    and len(note.desc) >= 8:
                t = threads[-1]
                threads[-1] = PrStatus(t.tid, t.signal, t.regs, t.pc, t.sp,
                                       struct.unpack_from("<Q", note.desc)[0], t.ppid, t.pgrp, t.sid)
            elif note.name == "CORE" and note.n_type == NT_FILE and not mappings:
                mappings, page_size = parse_nt_file(note.desc)
            elif note.name == "CORE" and note.n_type == NT_AUXV and not auxv:
                auxv = parse_auxv(note.desc)
            elif note.name == "CORE" and note.n_type == NT_PRPSINFO and prpsinfo is None:
                prpsinfo = parse_prpsinfo(note.desc)
            elif note.name == "CORE" and note.n_type == NT_SIGINFO and siginfo is None:
                siginfo = parse_siginfo(note.desc)
        except (CoreFormatError, struct.error) as exc:
            warnings.append(f"note {note.name}/{note.n_type:#x}: {exc}")
    if not threads:
        warnings.append("no NT_PRSTATUS notes (no threads)")
    crash = next((i for i, t in enumerate(threads) if t.signal), 0)
    if crash:
        threads.insert(0, threads.pop(crash))
    if auxv.get(AT_PAGESZ):
        page_size = auxv[AT_PAGESZ]
    if page_size <= 0 or page_size & (page_size - 1) or page_size > 1 << 20:
        warnings.append(f"implausible page size {page_size}, using 4096")
        page_size = 4096
    return CoreNotes(e_machine, MACHINES.get(e_machine, f"EM_{e_machine}"), tuple(threads),
                     mappings, MappingProxyType(auxv), prpsinfo, siginfo, page_size, tuple(notes),
                     tuple(warnings))


def parse_build_id_notes(data: bytes) -> str | None:
    """The hex ``NT_GNU_BUILD_ID`` among the notes in ``data``, if any (as :func:`iter_notes`
    would find it, without building a :class:`Note` for every note passed)."""
    size = len(data)
    off = 0
    while off + NHDR_SIZE <= size:
        namesz, descsz, n_type = _NHDR.unpack_from(data, off)
        desc_off = off + NHDR_SIZE + _align4(namesz)
        if desc_off + descsz > size:
            return None
        if n_type == NT_GNU_BUILD_ID and descsz \
                and bytes(data[off + NHDR_SIZE:off + NHDR_SIZE + namesz]).split(b"\0", 1)[0] == b"GNU":
            return bytes(data[desc_off:desc_off + descsz]).hex()
        off = min(desc_off + _align4(descsz), size)
    return None


MAX_BUILD_ID_NOTES = 8      # PT_NOTE segments of a module page searched for its build-id


def _module_phdrs(page: bytes) -> tuple[int, int, list[tuple[int, ...]]] | None:
    """(e_type, e_machine, raw ``Elf64_Phdr`` tuples) of a module's first page, or None when
    :func:`parse_elf_header` would refuse it or its phdr table is not inside the page.

    The checks are :func:`parse_elf_header`'s (``require_core=False``), inline: this runs for
    every mapped file of a core, up to ~65,530 times."""
    if len(page) < EHDR_SIZE or page[:4] != ELFMAG or page[4] != ELFCLASS64 \
            or page[5] != ELFDATA2LSB:
        return None
    _, e_type, e_machine, _, _, e_phoff, _, _, _, e_phentsize, e_phnum, _, _, _ = \
        _EHDR.unpack_from(page, 0)
    if e_phentsize != PHDR_SIZE or e_phoff + e_phnum * PHDR_SIZE > len(page):
        return None
    table = memoryview(page)[e_phoff:e_phoff + e_phnum * PHDR_SIZE]
    return e_type, e_machine, list(_PHDR.iter_unpack(table))


def _summarize_module(page: bytes, raw: list[tuple[int, ...]]
                      ) -> tuple[str | None, int, int | None, int, int | None]:
    """(build_id, min_vaddr, dynamic_vaddr, dynamic_size, phdr_vaddr) from raw phdr tuples
    (fields in ``Elf64_Phdr`` order: type, flags, offset, vaddr, paddr, filesz, memsz, align)."""
    build_id = None
    dyn = phdr = at_zero = lowest = None      # lowest PT_LOAD vaddr: at file offset 0, any
    dyn_size = 0
    notes_tried = 0
    for t in raw:
        p_type, p_offset, p_filesz = t[0], t[2], t[5]
        if p_type == PT_LOAD:
            vaddr = t[3]
            if p_offset == 0 and (at_zero is None or vaddr < at_zero):
                at_zero = vaddr
            if lowest is None or vaddr < lowest:
                lowest = vaddr
        elif p_type == PT_NOTE and build_id is None and p_offset + p_filesz <= len(page):
            # a hostile page may hold thousands of PT_NOTEs over the same bytes
            notes_tried += 1
            if notes_tried <= MAX_BUILD_ID_NOTES:
                build_id = parse_build_id_notes(page[p_offset:p_offset + p_filesz])
        elif p_type == PT_DYNAMIC and dyn is None:
            dyn, dyn_size = t[3], t[6]
        elif p_type == PT_PHDR and phdr is None:
            phdr = t[3]
    min_vaddr = at_zero if at_zero is not None else (lowest or 0) & ~0xFFF
    return build_id, min_vaddr, dyn, dyn_size, phdr


def parse_module_header(page: bytes) -> ModuleHeader | None:
    """Read what the first page of a mapped ELF object says (``None`` if it is not 64-bit LE ELF).

    The build-id comes from a ``PT_NOTE`` whose file range lies inside ``page`` (for the first
    mapping of a module file offset == vaddr - min_vaddr, which holds for every normal linker
    layout since the first PT_LOAD maps offset 0); the first :data:`MAX_BUILD_ID_NOTES` such
    segments are searched.
    """
    found = _module_phdrs(page)
    if found is None:
        return None
    e_type, e_machine, raw = found
    phdrs = tuple(ProgramHeader(t, fl, off, va, pa, fs, ms, al, i)
                  for i, (t, fl, off, va, pa, fs, ms, al) in enumerate(raw))
    build_id, min_vaddr, dyn, dyn_size, phdr = _summarize_module(page, raw)
    return ModuleHeader(e_type, e_machine, phdrs, build_id, min_vaddr, dyn, dyn_size, phdr)


class ModuleSummary(NamedTuple):
    """What the minimizer keeps of a module's first page (see :func:`parse_module_summary`)."""

    e_type: int
    build_id: str | None
    min_vaddr: int
    dynamic_vaddr: int | None


def parse_module_summary(page: bytes) -> ModuleSummary | None:
    """:func:`parse_module_header` without the program header objects: what the minimizer
    needs of each of up to ~65,530 mapped files, at a fraction of the time and memory."""
    found = _module_phdrs(page)
    if found is None:
        return None
    e_type, _, raw = found
    build_id, min_vaddr, dyn, _, _ = _summarize_module(page, raw)
    return ModuleSummary(e_type, build_id, min_vaddr, dyn)


def parse_dynamic(data: bytes) -> Iterator[tuple[int, int]]:
    """Yield ``(d_tag, d_val)`` pairs of a ``PT_DYNAMIC`` section up to ``DT_NULL``."""
    for tag, val in struct.iter_unpack("<qQ", data[:len(data) // 16 * 16]):
        if tag == DT_NULL:
            return
        yield tag, val
