"""satyr's ``core_backtrace`` from an ELF core, its duplicate hash and crash function.

:func:`core_backtrace` unwinds every thread (:mod:`coripper.unwinder.unwind`) and names each frame from
the module's symbols. :class:`CoreBacktrace` renders satyr's JSON layout byte for byte (satyr
``sr_core_stacktrace_to_json``: leading-comma style, 4-space key indent) and parses it back.
The duphash and the normalization it applies are described in docs/backtrace.md.

Every file the unwinder reads is opened below the process's root (:mod:`coripper.unwinder.rootfs`); the
notes it reads are bounded (:func:`read_core_notes`), whatever the core's headers claim.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from coripper.minimizer import elfcore
from coripper.unwinder.coremem import CoreMemory, open_core_memory
from coripper.errors import CoreFormatError, UnsupportedCoreError, UnwindError
from coripper.unwinder.inline import CallTarget, function_name, inline_names, tail_call_chain
from coripper.unwinder.modules import VDSO_PATH, Module, ModuleMap, map_modules
from coripper.unwinder.rootfs import FileCache, RootFS
from coripper.unwinder.rootfs import preload as rootfs_preload
from coripper.minimizer.streamengine import MAX_NOTES
from coripper.unwinder.symbols import demangle
from coripper.unwinder.unwind import ARCHES, MAX_FRAMES, Arch, ThreadStack, unwind_thread

DUPHASH_FRAMES = 3


@dataclass(frozen=True)
class CoreFrame:
    """One frame as satyr's ``sr_core_frame`` (fields may be missing)."""

    address: int
    build_id: str | None = None
    build_id_offset: int = 0
    function_name: str | None = None
    file_name: str | None = None
    fingerprint: str | None = None
    #: gdb's frames without a machine frame that come just before this one, innermost first:
    #: the tail-called functions between the previous frame and this one, then the functions
    #: inlined at this frame's pc (docs/backtrace.md). Only on physical frames.
    synthetic: tuple["CoreFrame", ...] = ()
    inlined: bool = False            # a synthetic frame for a DW_TAG_inlined_subroutine
    tail_call: bool = False          # a synthetic frame for a function left by a tail call


@dataclass(frozen=True)
class CoreThread:
    """One thread's frames, innermost first. ``frames`` are the physical frames (satyr's);
    :meth:`all_frames` adds the inline and tail-call frames as gdb lists them."""

    frames: tuple[CoreFrame, ...]
    tid: int | None = None
    crash_thread: bool = False
    stop_reason: str | None = None

    def all_frames(self) -> list[CoreFrame]:
        """Every frame as gdb shows it: each physical frame preceded by its synthetic ones."""
        out: list[CoreFrame] = []
        for f in self.frames:
            out.extend(f.synthetic)
            out.append(f)
        return out


@dataclass
class CoreBacktrace:
    """satyr's ``core_backtrace`` of one core: every thread, the crash thread flagged."""

    signal: int
    executable: str | None
    crash_tid: int | None
    threads: list[CoreThread]
    only_crash_thread: bool = False
    warnings: list[str] = field(default_factory=list)

    # --- satyr JSON --------------------------------------------------------------------

    def to_json(self) -> str:
        """satyr's JSON text (no trailing newline). ``only_crash_thread`` appears only when true,
        as satyr writes it; we unwind every thread, so it is normally absent."""
        out = [f'{{   "signal": {self.signal}\n']
        if self.executable is not None:
            out.append(f',   "executable": {_jstr(self.executable)}\n')
        if self.only_crash_thread:
            out.append(',   "only_crash_thread": true\n')
        if self.threads:
            out.append(',   "stacktrace":\n')
            for i, thread in enumerate(self.threads):
                out.append("      [ " if i == 0 else "      , ")
                out.append(_indent_rest(_thread_json(thread), 8))
                out.append(" ]\n" if i == len(self.threads) - 1 else "\n")
        out.append("}")
        return "".join(out)

    @classmethod
    def from_json(cls, text: str) -> "CoreBacktrace":
        """Parse satyr's core_backtrace JSON (unknown keys are ignored, like satyr does)."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise CoreFormatError(f"core_backtrace is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise CoreFormatError("core_backtrace is not a JSON object")
        threads = []
        for t in doc.get("stacktrace") or []:
            frames = tuple(_frame_from_json(f) for f in t.get("frames") or []
                           if isinstance(f, dict))
            threads.append(CoreThread(frames, crash_thread=bool(t.get("crash_thread", False))))
        return cls(int(doc.get("signal", 0)), doc.get("executable"), None, threads,
                   bool(doc.get("only_crash_thread", False)))

    # --- hashes --------------------------------------------------------------------------

    def crash_thread(self) -> CoreThread | None:
        """The thread flagged as the crash thread (the first one if none is flagged)."""
        for t in self.threads:
            if t.crash_thread:
                return t
        return self.threads[0] if self.threads else None

    def normalized_crash_frames(self) -> list[CoreFrame]:
        """The crash thread's frames after normalization (docs/backtrace.md)."""
        thread = self.crash_thread()
        return normalize_frames(thread.frames) if thread else []

    def duphash_text(self, component: str = "") -> str:
        """The text that :meth:`duphash` hashes."""
        lines = [component, "Thread\n"]
        for frame in self.normalized_crash_frames()[:DUPHASH_FRAMES]:
            lines.append(frame_duphash_text(frame) + "\n")
        return "".join(lines)

    def duphash(self, component: str = "") -> str:
        """SHA-1 hex of satyr's generic thread duphash text, 3 normalized crash-thread frames."""
        return hashlib.sha1(self.duphash_text(component).encode("utf-8")).hexdigest()

    def crash_function(self) -> str | None:
        """The function name of the first normalized crash-thread frame."""
        frames = self.normalized_crash_frames()
        return frames[0].function_name if frames else None


def _frame_from_json(f: dict[str, Any]) -> CoreFrame:
    synthetic = f.get("synthetic_frames")
    return CoreFrame(
        address=int(f.get("address", 0)), build_id=f.get("build_id"),
        build_id_offset=int(f.get("build_id_offset", 0)), function_name=f.get("function_name"),
        file_name=f.get("file_name"), fingerprint=f.get("fingerprint"),
        synthetic=tuple(_frame_from_json(g) for g in synthetic if isinstance(g, dict))
        if isinstance(synthetic, list) else (),
        inlined=f.get("inlined") is True, tail_call=f.get("tail_call") is True)


def _jstr(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _indent_rest(text: str, n: int) -> str:
    first, *rest = text.split("\n")
    return "\n".join([first] + [(" " * n + line) if line else line for line in rest])


def _frame_json(f: CoreFrame) -> str:
    out = [f'{{   "address": {f.address}\n']
    if f.build_id is not None:
        out.append(f',   "build_id": {_jstr(f.build_id)}\n')
    out.append(f',   "build_id_offset": {f.build_id_offset}\n')
    if f.function_name is not None:
        out.append(f',   "function_name": {_jstr(f.function_name)}\n')
    if f.file_name is not None:
        out.append(f',   "file_name": {_jstr(f.file_name)}\n')
    if f.fingerprint is not None:
        out.append(f',   "fingerprint": {_jstr(f.fingerprint)}\n')
    if f.inlined:
        out.append(',   "inlined": true\n')
    if f.tail_call:
        out.append(',   "tail_call": true\n')
    if f.synthetic:
        # Our extension (satyr ignores unknown keys): kept out of "frames" so that satyr's
        # frame list, and every hash over it, stays the physical frames elfutils unwinds.
        out.append(',   "synthetic_frames":\n')
        out.append(_list_json(f.synthetic))
    out.append("}")
    return "".join(out)


def _list_json(frames: Sequence[CoreFrame]) -> str:
    out = []
    for i, f in enumerate(frames):
        out.append("      [ " if i == 0 else "      , ")
        out.append(_indent_rest(_frame_json(f), 8))
        out.append(" ]\n" if i == len(frames) - 1 else "\n")
    return "".join(out)


def _thread_json(t: CoreThread) -> str:
    out = ['{   "crash_thread": true\n,   "frames":\n' if t.crash_thread else '{   "frames":\n']
    out.append(_list_json(t.frames))
    if not t.frames:
        out.append("      [  ]\n")
    out.append("}")
    return "".join(out)


# --- normalization and duphash --------------------------------------------------------------

#: Functions that report a crash rather than cause it: glibc's abort/raise/assert/fortify and
#: malloc-check paths, pthread_kill internals, libstdc++'s terminate/throw path, the 32-bit
#: vsyscall entry. Leading ``__GI_`` / ``__libc_`` aliases are compared without the prefix.
ERROR_PATH_FUNCTIONS = frozenset({
    "raise", "abort", "pthread_kill", "__pthread_kill", "__pthread_kill_implementation",
    "__pthread_kill_internal", "kill", "__kernel_vsyscall", "__assert_fail", "__assert_fail_base",
    "__assert_perror_fail", "__assert", "__libc_message", "__libc_fatal", "__fortify_fail",
    "__fortify_fail_abort", "__chk_fail", "__stack_chk_fail", "__stack_chk_fail_local",
    "malloc_printerr", "__malloc_assert", "__libc_signal_restore_set",
    "std::terminate()", "__cxa_throw", "__cxa_rethrow", "__cxa_call_terminate",
    "__gnu_cxx::__verbose_terminate_handler()", "__cxxabiv1::__terminate(void (*)())",
    "__cxa_call_unexpected", "std::__throw_bad_alloc()", "_Unwind_Resume", "_Unwind_RaiseException",
})

#: Libraries whose unnamed (stripped, local) frames at the top are part of the same error path.
_RUNTIME_LIBS = ("libc.so", "libc-", "libstdc++.so", "libgcc_s.so")


def normalize_name(name: str | None) -> str | None:
    """Drop an ELF symbol version (``@@GLIBC_2.2.5`` / ``@GLIBC_2.2.5``)."""
    if name is None:
        return None
    at = name.find("@")
    return name[:at] if at > 0 else name


def _is_error_path(frame: CoreFrame) -> bool:
    name = normalize_name(frame.function_name)
    if name is None:
        base = os.path.basename(frame.file_name or "")
        return base.startswith(_RUNTIME_LIBS)
    for prefix in ("__GI_", "__libc_"):
        if name.startswith(prefix) and name[len(prefix):] in ERROR_PATH_FUNCTIONS:
            return True
    return name in ERROR_PATH_FUNCTIONS


def normalize_frames(frames: Sequence[CoreFrame]) -> list[CoreFrame]:
    """Version suffixes removed from names; the error-reporting frames on top removed (unless
    that would remove every frame)."""
    out = [replace(f, function_name=normalize_name(f.function_name), synthetic=())
           for f in frames if not (f.inlined or f.tail_call)]
    i = 0
    while i < len(out) and _is_error_path(out[i]):
        i += 1
    return out[i:] if i < len(out) else out


def frame_duphash_text(f: CoreFrame) -> str:
    """satyr's core frame duphash text: build-id+offset, else function, fingerprint, address."""
    if f.build_id:
        return f"{f.build_id}+0x{f.build_id_offset:x}"
    if f.function_name:
        return f"  {f.function_name}"
    if f.fingerprint:
        return f"{f.fingerprint}+0x{f.build_id_offset:x}"
    return f"0x{f.address:x}"


# --- from a core ------------------------------------------------------------------------------

#: Note bytes read from one core, every PT_NOTE together. The stream engine's budget, halved:
#: the unwinder holds each note's copy and what is parsed from it (threads, NT_FILE paths) too.
MAX_NOTE_BYTES = MAX_NOTES // 2
#: Notes kept from one core (a 12-byte empty note is a Python object of ~200 bytes).
MAX_NOTE_COUNT = 1 << 17
#: Threads (NT_PRSTATUS) kept; the notes of the threads after them are dropped.
MAX_THREADS = 1 << 14
#: NT_FILE entries kept (twice Linux's default vm.max_map_count).
MAX_MAPPINGS = 1 << 17
#: Frames unwound in all threads together (satyr's limit is 256 per thread).
MAX_TOTAL_FRAMES = 1 << 17
#: Notes written once per process, after the first thread's NT_PRSTATUS.
_PROCESS_NOTES = frozenset({elfcore.NT_PRPSINFO, elfcore.NT_AUXV, elfcore.NT_FILE,
                            elfcore.NT_SIGINFO})


def _note_segments(phdrs: Sequence[elfcore.ProgramHeader]) -> tuple[list[tuple[int, int]],
                                                                       list[str]]:
    """(offset, size) of the ``PT_NOTE`` data to read, in file order: a segment overlapping an
    earlier one skipped, at most :data:`MAX_NOTE_BYTES` in all; and warnings about the rest."""
    out: list[tuple[int, int]] = []
    warnings: list[str] = []
    overlapping: list[int] = []
    cut: list[str] = []
    budget = MAX_NOTE_BYTES
    covered = 0
    for ph in sorted((p for p in phdrs if p.p_type == elfcore.PT_NOTE and p.p_filesz),
                     key=lambda p: p.p_offset):
        if ph.p_offset < covered:
            overlapping.append(ph.p_offset)
            continue
        covered = ph.p_offset + ph.p_filesz
        if ph.p_filesz > budget:
            cut.append(f"PT_NOTE at {ph.p_offset:#x} " + (
                f"cut to {budget} of {ph.p_filesz}" if budget else "skipped"))
        if budget:
            out.append((ph.p_offset, min(ph.p_filesz, budget)))
            budget -= out[-1][1]
    if overlapping:
        warnings.append(f"{len(overlapping)} PT_NOTE segment(s) overlap the notes before them "
                        f"(the first at {overlapping[0]:#x}); skipped")
    if cut:
        more = f", {len(cut) - 1} more skipped" if len(cut) > 1 else ""
        warnings.append(f"notes beyond {MAX_NOTE_BYTES} bytes in all are not read ({cut[0]}{more})")
    return out, warnings


def read_core_notes(stream: BinaryIO, phdrs: Sequence[elfcore.ProgramHeader]
                    ) -> tuple[list[elfcore.Note], list[str]]:
    """The notes of a core and warnings about what was left out: at most
    :data:`MAX_NOTE_BYTES` read from all ``PT_NOTE`` segments together, in file order, a segment
    overlapping an earlier one skipped (a core's notes never overlap; repeating one segment
    would only multiply the work), at most :data:`MAX_NOTE_COUNT` notes."""
    segments, warnings = _note_segments(phdrs)
    notes: list[elfcore.Note] = []
    for offset, size in segments:
        stream.seek(offset)
        data = stream.read(size)
        for note in elfcore.iter_notes(data):
            if len(notes) >= MAX_NOTE_COUNT:
                warnings.append(f"more than {MAX_NOTE_COUNT} notes; the rest are not read")
                return notes, warnings
            notes.append(note)
    return notes, warnings


def _read_notes(stream: BinaryIO, phdrs: Sequence[elfcore.ProgramHeader]) -> list[elfcore.Note]:
    """:func:`read_core_notes` without its warnings."""
    return read_core_notes(stream, phdrs)[0]


def bound_notes(notes: Sequence[elfcore.Note]) -> tuple[list[elfcore.Note], list[str]]:
    """``notes`` with at most :data:`MAX_THREADS` threads (the notes of later threads dropped)
    and an ``NT_FILE`` of at most :data:`MAX_MAPPINGS` entries (the first ones), so that what
    :func:`elfcore.parse_core_notes` builds from them stays small."""
    out: list[elfcore.Note] = []
    warnings: list[str] = []
    threads = 0
    for note in notes:
        if note.name == "CORE" and note.n_type == elfcore.NT_PRSTATUS:
            threads += 1
            if threads == MAX_THREADS + 1:
                warnings.append(f"more than {MAX_THREADS} threads; only the first are unwound")
        if threads > MAX_THREADS and not (note.name == "CORE" and note.n_type in _PROCESS_NOTES):
            continue
        if note.name == "CORE" and note.n_type == elfcore.NT_FILE:
            note, warning = _bound_nt_file(note)
            if warning:
                warnings.append(warning)
        out.append(note)
    return out, warnings


def _bound_nt_file(note: elfcore.Note) -> tuple[elfcore.Note, str | None]:
    desc = note.desc
    if len(desc) < 16:
        return note, None
    count, page = struct.unpack_from("<QQ", desc)
    if count <= MAX_MAPPINGS or count > (len(desc) - 16) // 24:
        return note, None           # small, or a lie that parse_nt_file refuses cheaply
    names = desc[16 + 24 * count:].split(b"\0", MAX_MAPPINGS)[:MAX_MAPPINGS]
    cut = (struct.pack("<QQ", MAX_MAPPINGS, page) + desc[16:16 + 24 * MAX_MAPPINGS]
           + b"\0".join(names) + b"\0")
    return (note._replace(desc=cut),
            f"NT_FILE has {count} entries; only the first {MAX_MAPPINGS} are used")


def core_backtrace(core: str | os.PathLike[str] | BinaryIO, *, rootdir: str | RootFS = "/",
                   executable: str | None = None,
                   executable_root: RootFS | None = None) -> CoreBacktrace:
    """Unwind every thread of ``core`` (a path or a seekable binary stream).

    ``rootdir`` is the root the process saw: a :class:`RootFS`, or a host directory (opened
    with :meth:`RootFS.open`, which refuses a symlink on the way to it). Every file the core
    names (modules, debug files) is resolved below it (:mod:`coripper.unwinder.rootfs`).
    ``executable`` overrides where the main program is found and its name: a path below
    ``executable_root`` if given, else below a :class:`RootFS` ``rootdir``; with a ``str``
    rootdir it is a host path, as it always was. The caller keeps ownership of the RootFS.
    Raises :class:`CoreFormatError` / :class:`UnsupportedCoreError` for unusable cores,
    :class:`UnwindError` when the core has no threads, OSError when ``rootdir`` cannot be
    opened.
    """
    with contextlib.ExitStack() as stack:
        if isinstance(rootdir, RootFS):
            files = stack.enter_context(FileCache(rootdir))
        else:
            root = RootFS.host() if rootdir in ("", "/") else RootFS.open(rootdir)
            files = stack.enter_context(FileCache(root, own_root=True))
            if executable_root is None and not files.root.is_host:
                executable_root = stack.enter_context(RootFS.host())
        exe_files = files if executable_root is None else \
            stack.enter_context(FileCache(executable_root))
        if isinstance(core, (str, os.PathLike)):
            stream = stack.enter_context(open(core, "rb"))
            return _core_backtrace(stream, files, exe_files, executable)
        return _core_backtrace(core, files, exe_files, executable)


def _unwind_all(arch: Arch, notes: elfcore.CoreNotes, memory: CoreMemory, modules: ModuleMap,
                warnings: list[str]) -> list[tuple[elfcore.PrStatus, ThreadStack]]:
    """Every thread's raw stack, within :data:`MAX_TOTAL_FRAMES` frames in all."""
    out: list[tuple[elfcore.PrStatus, ThreadStack]] = []
    left = MAX_TOTAL_FRAMES
    for t in notes.threads:
        if left <= 0:
            warnings.append(f"{len(notes.threads) - len(out)} threads not unwound: more than "
                            f"{MAX_TOTAL_FRAMES} frames in all")
            break
        stack = unwind_thread(arch, t.regs, memory, modules, min(MAX_FRAMES, left))
        left -= len(stack.frames)
        out.append((t, stack))
    return out


def _open_core(stream: BinaryIO) -> tuple[elfcore.CoreNotes, CoreMemory, list[str]]:
    """The parsed (bounded) notes, the memory and the warnings of a core."""
    header, phdrs, memory = open_core_memory(stream)
    raw_notes, warnings = read_core_notes(stream, phdrs)
    raw_notes, more = bound_notes(raw_notes)
    notes = elfcore.parse_core_notes(raw_notes, header.e_machine)
    return notes, memory, warnings + more


Synthetic = list[tuple[str, Module, int, str | None]]


def _synthetic_frames(raw_threads: list[tuple[elfcore.PrStatus, ThreadStack]], modules: ModuleMap,
                      symbol_at: Callable[[Module, int], str | None]
                      ) -> dict[tuple[int, int], Synthetic]:
    """Per (thread, frame): the synthetic frames gdb shows before it, as (kind, module, pc,
    raw name)."""
    extra: dict[tuple[int, int], Synthetic] = {}
    resolve = _Resolver(modules)
    for ti, (_t, stack) in enumerate(raw_threads):
        for fi, fr in enumerate(stack.frames):
            m = fr.module
            if m is None:
                continue
            symbol_at(m, fr.lookup_pc)
            found: Synthetic = []
            prev = stack.frames[fi - 1] if fi else None
            # gdb looks for tail calls when the callee was unwound by DWARF CFI and this frame
            # is a return address (dwarf2_tailcall_sniffer_first).
            if prev is not None and prev.module is not None and fr.method == "cfi" \
                    and fr.lookup_pc != fr.pc:
                for tm, site in tail_call_chain(m, fr.pc, prev.module, prev.lookup_pc, resolve):
                    # gdb names a tail-call frame after the innermost function at site - 1,
                    # an inlined one included, and gives it no inline frames of its own.
                    # Its DWARF name, as gdb's (a GCC clone's ELF symbol has a suffix).
                    inner = inline_names(tm, site - 1)
                    found.append(("tail_call", tm, site, inner[0] if inner else
                                  function_name(tm, site - 1) or symbol_at(tm, site - 1)))
            for name in inline_names(m, fr.lookup_pc):
                found.append(("inline", m, fr.pc, name))
            if found:
                extra[(ti, fi)] = found
    return extra


def _core_backtrace(stream: BinaryIO, files: FileCache, exe_files: FileCache,
                    executable: str | None) -> CoreBacktrace:
    notes, memory, warnings = _open_core(stream)
    arch = ARCHES.get(notes.machine)
    if arch is None:
        raise UnsupportedCoreError(f"no unwinder for machine {notes.machine}")
    if not notes.threads:
        raise UnwindError("the core has no NT_PRSTATUS (no threads)"
                          + (f"; {warnings[0]}" if warnings else ""))
    try:
        modules = map_modules(notes, memory, files, executable=executable,
                              executable_files=exe_files)
        crash = notes.crash_thread
        crash_tid = crash.tid if crash is not None else notes.threads[0].tid
        raw_threads = _unwind_all(arch, notes, memory, modules, warnings)
    finally:
        memory.close()
    names: dict[int, str | None] = {}

    def symbol_at(m: Module, lookup_pc: int) -> str | None:
        if lookup_pc not in names:
            sym = m.tables.symbols.lookup(lookup_pc - m.bias)
            names[lookup_pc] = sym.name if sym else None
        return names[lookup_pc]

    extra = _synthetic_frames(raw_threads, modules, symbol_at)
    pretty = demangle([n for n in names.values() if n] +
                      [n for found in extra.values() for *_x, n in found if n])
    threads: list[CoreThread] = []
    for ti, (t, stack) in enumerate(raw_threads):
        frames = []
        for fi, fr in enumerate(stack.frames):
            m = fr.module
            fname = names.get(fr.lookup_pc) if m is not None else None
            synthetic = tuple(
                _frame(tm, pc, pretty.get(n, n) if n else None,
                       inlined=kind == "inline", tail_call=kind == "tail_call")
                for kind, tm, pc, n in extra.get((ti, fi), ()))
            frames.append(replace(_frame(m, fr.pc, pretty.get(fname, fname) if fname else None),
                                  synthetic=synthetic))
        threads.append(CoreThread(tuple(frames), t.tid, t.tid == crash_tid, stack.stop_reason))
    warnings[:0] = [f"{m.path}: {m.status}" for m in modules.modules
                    if m.status in ("missing", "mismatch")]
    exe = executable or notes.executable
    signal = crash.signal if crash is not None else (notes.siginfo.signo if notes.siginfo else 0)
    return CoreBacktrace(signal, exe, crash_tid, threads, warnings=warnings)


def _frame(m: Module | None, pc: int, name: str | None, *, inlined: bool = False,
           tail_call: bool = False) -> CoreFrame:
    return CoreFrame(
        address=pc,
        build_id=m.build_id if m else None,
        build_id_offset=pc - m.start if m else 0,
        function_name=name,
        file_name=(None if m.path == VDSO_PATH else m.path) if m else None,
        inlined=inlined, tail_call=tail_call)


class _Resolver:
    """A call site target -> (module, runtime address), as gdb resolves them: an address in
    the call site's module, or a name looked up among the modules' ELF symbols (the calling
    module first, then the others; ELF version suffixes ignored)."""

    def __init__(self, modules: ModuleMap) -> None:
        self._modules = modules
        self._by_name: dict[int, dict[str, int]] = {}

    def _names(self, m: Module) -> dict[str, int]:
        key = id(m)
        if key not in self._by_name:
            table: dict[str, int] = {}
            for addr, aliases in m.tables.symbols.aliases.items():
                for n in aliases:
                    # a PLT stub ("sem_wait@plt") is not the function: gdb's lookup by name
                    # finds the definition in the library
                    if not n.endswith("@plt"):
                        table.setdefault(normalize_name(n) or n, addr)
            self._by_name[key] = table
        return self._by_name[key]

    def __call__(self, m: Module, target: CallTarget) -> tuple[Module, int] | None:
        if target.address is not None:
            return m, target.address + m.bias
        if target.name is None:
            return None
        for cand in [m] + [x for x in self._modules.modules if x is not m]:
            addr = self._names(cand).get(target.name)
            if addr is not None:
                return cand, addr + cand.bias
        return None


def backtrace_elements(coredump_path: str, executable: str | None = None,
                       rootdir: str | RootFS = "/", *, component: str = "") -> dict[str, str]:
    """The problem-directory elements ``core_backtrace``, ``crash_function`` and ``duphash`` for
    a core (values are element texts; ``crash_function`` is left out when no frame is named).
    The caller writes them (collectors use reporter.dumpdir)."""
    bt = core_backtrace(coredump_path, rootdir=rootdir, executable=executable)
    out = {"core_backtrace": bt.to_json() + "\n", "duphash": bt.duphash(component)}
    func = bt.crash_function()
    if func:
        out["crash_function"] = func
    return out


#: pyelftools modules never imported by an unwind (the construct debugger pulls in pdb).
_NOT_PRELOADED = frozenset({"elftools.construct.debug"})
#: Imported lazily on some paths: compressed cores (coripper.minimizer.compressed and its decoders), the
#: C++ demangler (which loads libstdc++ when imported) and the log of a swallowed error.
_LAZY_MODULES = ("coripper.minimizer.compressed", "zstandard", "lzma", "lz4.frame", "gzip", "bz2",
                 "cxxfilt", "logging")


def preload_unwinder() -> None:
    """Import now every module an unwind may import later, so that a caller can then forbid
    imports (empty ``sys.path`` and ``sys.meta_path``) and still unwind any core: all of
    pyelftools (which parts an unwind touches depends on the files it meets), the decoders of
    compressed cores that are installed, and what the standard library loads on first use
    (hashlib's constructors, libc through ctypes)."""
    import importlib
    import pkgutil

    import elftools

    for info in pkgutil.walk_packages(elftools.__path__, "elftools."):
        if info.name not in _NOT_PRELOADED:
            importlib.import_module(info.name)
    for name in _LAZY_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    hashlib.sha1(b"")
    rootfs_preload()
