"""satyr's ``core_backtrace`` from an ELF core, its duplicate hash and crash function.

:func:`core_backtrace` unwinds every thread (:mod:`coripper.unwind`) and names each frame from
the module's symbols. :class:`CoreBacktrace` renders satyr's JSON layout byte for byte (satyr
``sr_core_stacktrace_to_json``: leading-comma style, 4-space key indent) and parses it back.
The duphash and the normalization it applies are described in docs/backtrace.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from coripper import elfcore
from coripper.coremem import open_core_memory
from coripper.errors import CoreFormatError, UnsupportedCoreError, UnwindError
from coripper.inline import CallTarget, function_name, inline_names, tail_call_chain
from coripper.modules import VDSO_PATH, Module, ModuleMap, map_modules
from coripper.symbols import demangle
from coripper.unwind import ARCHES, unwind_thread

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

def _read_notes(stream: BinaryIO, phdrs: Sequence[elfcore.ProgramHeader]) -> list[elfcore.Note]:
    notes: list[elfcore.Note] = []
    for ph in phdrs:
        if ph.p_type != elfcore.PT_NOTE or ph.p_filesz > 64 << 20:
            continue
        stream.seek(ph.p_offset)
        data = stream.read(ph.p_filesz)
        found, _warnings = elfcore.parse_notes(data)
        notes.extend(found)
    return notes


def core_backtrace(core: str | os.PathLike[str] | BinaryIO, *, rootdir: str = "/",
                   executable: str | None = None) -> CoreBacktrace:
    """Unwind every thread of ``core`` (a path or a seekable binary stream).

    ``rootdir`` is where the process's files live (``/proc/PID/root`` or a saved root for a
    container); ``executable`` overrides where the main program is found on disk and its name.
    Raises :class:`CoreFormatError` / :class:`UnsupportedCoreError` for unusable cores and
    :class:`UnwindError` when the core has no threads.
    """
    if isinstance(core, (str, os.PathLike)):
        with open(core, "rb") as stream:
            return _core_backtrace(stream, rootdir, executable)
    return _core_backtrace(core, rootdir, executable)


def _core_backtrace(stream: BinaryIO, rootdir: str, executable: str | None) -> CoreBacktrace:
    header, phdrs, memory = open_core_memory(stream)
    notes = elfcore.parse_core_notes(_read_notes(stream, phdrs), header.e_machine)
    arch = ARCHES.get(notes.machine)
    if arch is None:
        raise UnsupportedCoreError(f"no unwinder for machine {notes.machine}")
    if not notes.threads:
        raise UnwindError("the core has no NT_PRSTATUS (no threads)")
    try:
        modules = map_modules(notes, memory, rootdir, executable=executable)
        crash = notes.crash_thread
        crash_tid = crash.tid if crash is not None else notes.threads[0].tid
        raw_threads = [(t, unwind_thread(arch, t.regs, memory, modules)) for t in notes.threads]
    finally:
        memory.close()
    names: dict[int, str | None] = {}

    def symbol_at(m: Module, lookup_pc: int) -> str | None:
        if lookup_pc not in names:
            sym = m.tables.symbols.lookup(lookup_pc - m.bias)
            names[lookup_pc] = sym.name if sym else None
        return names[lookup_pc]

    # Per frame: the synthetic frames gdb shows before it, as (kind, module, pc, raw name).
    extra: dict[tuple[int, int], list[tuple[str, Module, int, str | None]]] = {}
    resolve = _Resolver(modules)
    for ti, (_t, stack) in enumerate(raw_threads):
        for fi, fr in enumerate(stack.frames):
            m = fr.module
            if m is None:
                continue
            symbol_at(m, fr.lookup_pc)
            found: list[tuple[str, Module, int, str | None]] = []
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
    warnings = [f"{m.path}: {m.status}" for m in modules.modules if m.status in ("missing", "mismatch")]
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


def backtrace_elements(coredump_path: str, executable: str | None = None, rootdir: str = "/",
                       *, component: str = "") -> dict[str, str]:
    """The problem-directory elements ``core_backtrace``, ``crash_function`` and ``duphash`` for
    a core (values are element texts; ``crash_function`` is left out when no frame is named).
    The caller writes them (collectors use reporter.dumpdir)."""
    bt = core_backtrace(coredump_path, rootdir=rootdir, executable=executable)
    out = {"core_backtrace": bt.to_json() + "\n", "duphash": bt.duphash(component)}
    func = bt.crash_function()
    if func:
        out["crash_function"] = func
    return out
