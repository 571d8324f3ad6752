"""Inlined and tail-called functions at a pc, from a module's DWARF ``.debug_info``.

gdb shows frames that have no machine frame of their own: one per ``DW_TAG_inlined_subroutine``
whose ranges hold the pc (INLINE_FRAME), and the functions a caller reached through tail calls
(TAILCALL_FRAME), which it finds from ``DW_TAG_call_site`` DIEs. This module answers the same
questions from the DWARF of one module (its separate debug file when there is one, as gdb
reads it, else the module itself):

* :meth:`DwarfIndex.inline_chain`: the names of the inlined subroutines holding a link-time
  pc, innermost first (gdb's ``inline_frame_sniffer`` over ``block_for_pc``);
* :meth:`DwarfIndex.call_site_target` / :meth:`DwarfIndex.tail_call_targets` /
  :meth:`DwarfIndex.function_entry`: what gdb's ``call_site_find_chain`` needs.

Only the compilation unit holding the pc is parsed: ``.debug_aranges`` maps the pc to its CU
(an index of the CUs' own ranges is built once when a producer wrote no aranges), and inside
the CU only the DIEs on the path to the pc are decoded (GCC writes ``DW_AT_sibling``, so
pyelftools skips the other subtrees). Indexes are cached per build-id for the process.
Bad or missing DWARF gives empty answers, never an exception.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, cast

from elftools.common.exceptions import DWARFError

from coripper.unwinder.elfinput import ELF_INPUT_ERRORS
from coripper.errors import capture_internal_exceptions
from coripper.unwinder.modules import Module
from coripper.unwinder.rootfs import RegularFile

if TYPE_CHECKING:
    from elftools.dwarf.compileunit import CompileUnit
    from elftools.dwarf.die import DIE, AttributeValue
    from elftools.dwarf.dwarfinfo import DWARFInfo
    from elftools.dwarf.typeunit import TypeUnit

# Tags whose DIEs may hold code: we descend into them when their ranges hold the pc.
_SCOPES = frozenset({"DW_TAG_subprogram", "DW_TAG_lexical_block", "DW_TAG_inlined_subroutine"})
# Tags that may contain function definitions without having ranges themselves (C++).
_CONTAINERS = frozenset({"DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type",
                         "DW_TAG_union_type", "DW_TAG_module"})
_CALL_SITES = frozenset({"DW_TAG_call_site", "DW_TAG_GNU_call_site"})
_ADDRESS_FORMS = frozenset({"DW_FORM_addr", "DW_FORM_addrx", "DW_FORM_addrx1", "DW_FORM_addrx2",
                            "DW_FORM_addrx3", "DW_FORM_addrx4", "DW_FORM_GNU_addr_index"})
_MAX_DEPTH = 64
_PATH_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class CallTarget:
    """Where a ``DW_TAG_call_site`` jumps: a link-time address in the same module, or a
    function name (a declaration: gdb looks the name up among the minimal symbols)."""

    address: int | None = None
    name: str | None = None


#: The DIEs holding a pc, outermost (the subprogram) first.
DiePath: TypeAlias = "tuple[DIE, ...]"
Unit: TypeAlias = "CompileUnit | TypeUnit"


class DwarfIndex:
    """The DWARF of one module, read lazily (pyelftools ``DWARFInfo``)."""

    def __init__(self, dwarf: DWARFInfo) -> None:
        self._dwarf = dwarf
        self._aranges: tuple[list[int], list[tuple[int, int]]] | None = None
        self._cu_index: tuple[list[int], list[tuple[int, int]]] | None = None
        self._paths: dict[int, DiePath] = {}

    # --- finding the CU and the DIE path ------------------------------------------------------

    def _cu_offset(self, pc: int) -> int | None:
        aranges_sec = self._dwarf.debug_aranges_sec
        if aranges_sec is not None:
            if self._aranges is None:
                try:
                    stream = aranges_sec.stream
                    stream.seek(0)
                    self._aranges = parse_aranges(stream.read())
                except (OSError, AttributeError):
                    self._aranges = ([], [])
            starts, spans = self._aranges
            i = bisect.bisect_right(starts, pc) - 1
            if i >= 0 and pc < spans[i][0]:
                return spans[i][1]
        if self._cu_index is None:
            self._cu_index = self._build_cu_index()
        starts, spans = self._cu_index
        i = bisect.bisect_right(starts, pc) - 1
        # Ranges of different CUs do not overlap, but one CU's ranges may surround another's.
        while i >= 0 and pc - starts[i] < 1 << 32:
            end, off = spans[i]
            if starts[i] <= pc < end:
                return off
            i -= 1
        return None

    def _build_cu_index(self) -> tuple[list[int], list[tuple[int, int]]]:
        entries: list[tuple[int, int, int]] = []
        for cu in self._dwarf.iter_CUs():
            top = cu.get_top_DIE()
            for lo, hi in self._ranges(top) or ():
                entries.append((lo, hi, cu.cu_offset))
        entries.sort()
        return [e[0] for e in entries], [(e[1], e[2]) for e in entries]

    def _path(self, pc: int) -> DiePath:
        """The DIEs holding ``pc``: the subprogram, then nested lexical blocks and inlined
        subroutines, innermost last. Empty when no DWARF function holds it."""
        if pc in self._paths:
            return self._paths[pc]
        path: DiePath = ()
        with capture_internal_exceptions("the DWARF scopes at %#x", pc, expected=ELF_INPUT_ERRORS):
            path = self._find_path(pc)
        if len(self._paths) >= _PATH_CACHE_LIMIT:
            self._paths.clear()
        self._paths[pc] = path
        return path

    def _find_path(self, pc: int) -> DiePath:
        off = self._cu_offset(pc)
        if off is None:
            return ()
        top = self._dwarf.get_CU_at(off).get_top_DIE()
        path: list[DIE] = []
        containers: list[DIE] = []
        if not self._descend(top, pc, path, containers, 0):
            # C++: a definition nested in a namespace or class (GCC puts them at the CU level
            # with DW_AT_specification, so look inside containers only when that failed).
            for c in containers:
                if self._descend(c, pc, path, [], 0):
                    break
        return tuple(path)

    def _descend(self, die: DIE, pc: int, path: list[DIE], containers: list[DIE],
                 depth: int) -> bool:
        if depth > _MAX_DEPTH:
            return False
        for child in _iter_children(die):
            tag = child.tag
            if tag in _SCOPES:
                ranges = self._ranges(child)
                if not ranges or not any(lo <= pc < hi for lo, hi in ranges):
                    continue
                if tag != "DW_TAG_lexical_block" and self.name_of(child) is None:
                    # gdb's read_func_scope drops a nameless function with its children.
                    return bool(path)
                path.append(child)
                self._descend(child, pc, path, [], depth + 1)
                return True
            if tag in _CONTAINERS and child.has_children:
                containers.append(child)
        return False

    # --- attributes -----------------------------------------------------------------------------

    def _ranges(self, die: DIE) -> list[tuple[int, int]] | None:
        """The [low, high) ranges of a DIE, or None when it has no pc attributes."""
        attrs = die.attributes
        if "DW_AT_ranges" in attrs:
            return self._range_list(die, attrs["DW_AT_ranges"])
        low = attrs.get("DW_AT_low_pc")
        high = attrs.get("DW_AT_high_pc")
        if low is None or high is None:
            return None
        lo = self._address(die, low)
        if high.form in _ADDRESS_FORMS:
            hi = self._address(die, high)
        else:
            hi = lo + _number(high)       # DWARF 4+: a constant is the length
        return [(lo, hi)] if hi > lo else []

    def _address(self, die: DIE, attr: AttributeValue) -> int:
        if attr.form == "DW_FORM_addr":
            return _number(attr)
        return int(self._dwarf.get_addr(die.cu, _number(attr)))

    def _range_list(self, die: DIE, attr: AttributeValue) -> list[tuple[int, int]]:
        from elftools.dwarf.ranges import BaseAddressEntry

        # a DIE we reach is in a compile unit (.debug_info), never in a type unit
        cu = cast("CompileUnit", die.cu)
        offset = _number(attr)
        if attr.form == "DW_FORM_rnglistx":
            # DWARF 5 §7.28: the index selects an offset (relative to DW_AT_rnglists_base) in
            # the CU's offset table, which starts at the base.
            base_attr = cu.get_top_DIE().attributes.get("DW_AT_rnglists_base")
            base = _number(base_attr) if base_attr is not None else 12
            width = 8 if cu.structs.dwarf_format == 64 else 4
            rnglists = self._dwarf.debug_rnglists_sec
            if rnglists is None:
                return []
            stream = rnglists.stream
            stream.seek(base + offset * width)
            raw = stream.read(width)
            offset = base + int.from_bytes(raw, "little" if self._dwarf.config.little_endian
                                           else "big")
        elif cu.header.version >= 5 and "DW_AT_rnglists_base" in cu.get_top_DIE().attributes \
                and attr.form != "DW_FORM_sec_offset":
            offset += _number(cu.get_top_DIE().attributes["DW_AT_rnglists_base"])
        rl = self._dwarf.range_lists()
        if rl is None:
            return []
        base = self._cu_base(cu)
        out: list[tuple[int, int]] = []
        for entry in rl.get_range_list_at_offset(offset, cu=cu):
            if isinstance(entry, BaseAddressEntry):
                base = int(entry.base_address)
                continue
            lo, hi = int(entry.begin_offset), int(entry.end_offset)
            if not getattr(entry, "is_absolute", False):
                lo, hi = lo + base, hi + base
            if hi > lo:
                out.append((lo, hi))
        return out

    def _cu_base(self, cu: Unit) -> int:
        low = cu.get_top_DIE().attributes.get("DW_AT_low_pc")
        return self._address(cu.get_top_DIE(), low) if low is not None else 0

    def name_of(self, die: DIE) -> str | None:
        """A function DIE's name: its linkage (mangled) name when it has one anywhere along
        ``DW_AT_abstract_origin`` / ``DW_AT_specification``, else its ``DW_AT_name``."""
        plain = None
        for _ in range(8):
            attrs = die.attributes
            for key in ("DW_AT_linkage_name", "DW_AT_MIPS_linkage_name"):
                if key in attrs:
                    return _text(attrs[key].value)
            if plain is None and "DW_AT_name" in attrs:
                plain = _text(attrs["DW_AT_name"].value)
                if _is_cplusplus(die.cu):
                    # No linkage name (internal linkage): gdb qualifies the name with the
                    # enclosing namespaces and classes.
                    plain = _qualified(die, plain)
            for key in ("DW_AT_abstract_origin", "DW_AT_specification"):
                if key in attrs:
                    die = die.get_DIE_from_attribute(key)
                    break
            else:
                break
        return plain

    # --- public queries -------------------------------------------------------------------------

    def inline_chain(self, pc: int) -> tuple[str, ...]:
        """Names of the ``DW_TAG_inlined_subroutine`` DIEs whose ranges hold link-time ``pc``,
        innermost first (gdb's inline frames for a frame looked up at ``pc``)."""
        out: list[str] = []
        for die in reversed(self._path(pc)):
            if die.tag == "DW_TAG_inlined_subroutine":
                out.append(self.name_of(die) or "??")
        return tuple(out)

    def function_name(self, pc: int) -> str | None:
        """Name of the (non-inlined) function holding link-time ``pc``, as :meth:`name_of`
        gives it (gdb's name for a frame without inline frames: ``do_futex_wait``, where the
        ELF symbol of GCC's clone is ``do_futex_wait.constprop.0``)."""
        path = self._path(pc)
        return self.name_of(path[0]) if path else None

    def function_entry(self, pc: int) -> int | None:
        """Entry address of the (non-inlined) function holding ``pc``: its ``DW_AT_entry_pc``,
        else the start of its first range (gdb's ``BLOCK_ENTRY_PC``)."""
        path = self._path(pc)
        if not path:
            return None
        return self._entry(path[0])

    def _entry(self, die: DIE) -> int | None:
        with capture_internal_exceptions("the entry of the DIE at %#x", die.offset,
                                         expected=ELF_INPUT_ERRORS):
            entry = die.attributes.get("DW_AT_entry_pc")
            if entry is not None and entry.form in ("DW_FORM_addr", "DW_FORM_addrx"):
                return self._address(die, entry)
            ranges = self._ranges(die)
            return ranges[0][0] if ranges else None
        return None

    def call_site_target(self, return_pc: int) -> CallTarget | None:
        """The target of the call whose return address is link-time ``return_pc``; None when
        DWARF has no such call site or its target is a computed expression (gdb cannot resolve
        ``DW_AT_call_target`` without the jumped frames' registers either)."""
        with capture_internal_exceptions("the call site returning to %#x", return_pc,
                                         expected=ELF_INPUT_ERRORS):
            for die in reversed(self._path(return_pc - 1)):
                for site in _children(die, _CALL_SITES):
                    ret = site.attributes.get("DW_AT_call_return_pc") or \
                        site.attributes.get("DW_AT_low_pc")
                    if ret is not None and self._address(site, ret) == return_pc:
                        return self._target(site)
        return None

    def tail_call_sites(self, entry: int) -> list[tuple[int, CallTarget | None]] | None:
        """``(site pc, target)`` of the tail calls (``DW_AT_call_tail_call``) made by the
        function whose entry is link-time ``entry`` (also from its inlined parts), in DIE
        order; the site pc is the call site's ``DW_AT_call_return_pc`` as gdb records it.
        None when no function starts at ``entry``."""
        path = self._path(entry)
        if not path or self._entry(path[0]) != entry:
            return None
        out: list[tuple[int, CallTarget | None]] = []
        with capture_internal_exceptions("the tail calls of the function at %#x", entry,
                                         expected=ELF_INPUT_ERRORS):
            for site in _walk(path[0], _CALL_SITES):
                attrs = site.attributes
                if "DW_AT_call_tail_call" not in attrs and "DW_AT_GNU_tail_call" not in attrs:
                    continue
                ret = attrs.get("DW_AT_call_return_pc") or attrs.get("DW_AT_low_pc")
                if ret is None:
                    continue          # gdb ignores a call site without a pc
                out.append((self._address(site, ret), self._target(site)))
            return out
        return None

    def _target(self, site: DIE) -> CallTarget | None:
        attrs = site.attributes
        for key in ("DW_AT_call_origin", "DW_AT_abstract_origin"):
            if key in attrs:
                callee = site.get_DIE_from_attribute(key)
                # gdb: a definition with pc bounds is a PHYSADDR target, a declaration a
                # PHYSNAME one (looked up by name).
                for _ in range(8):
                    entry = self._entry(callee)
                    if entry is not None:
                        return CallTarget(address=entry)
                    spec = callee.attributes.get("DW_AT_specification")
                    if spec is None:
                        break
                    callee = callee.get_DIE_from_attribute("DW_AT_specification")
                name = self.name_of(site.get_DIE_from_attribute(key))
                return CallTarget(name=name) if name else None
        return None


_CXX_LANGS = frozenset({"DW_LANG_C_plus_plus", "DW_LANG_C_plus_plus_03", "DW_LANG_C_plus_plus_11",
                        "DW_LANG_C_plus_plus_14", 0x4, 0x19, 0x1a, 0x21})


def _is_cplusplus(cu: Unit) -> bool:
    lang = cu.get_top_DIE().attributes.get("DW_AT_language")
    return lang is not None and lang.value in _CXX_LANGS


def _qualified(die: DIE, name: str) -> str:
    parts = [name]
    parent = die.get_parent()
    for _ in range(_MAX_DEPTH):
        if parent is None or parent.tag not in _CONTAINERS:
            break
        n = parent.attributes.get("DW_AT_name")
        if n is not None:
            parts.append(_text(n.value))
        elif parent.tag == "DW_TAG_namespace":
            parts.append("(anonymous namespace)")
        parent = parent.get_parent()
    return "::".join(reversed(parts))


def parse_aranges(data: bytes) -> tuple[list[int], list[tuple[int, int]]]:
    """``.debug_aranges`` (DWARF 2-5 §6.1.2, little-endian) -> sorted range starts and
    (end, CU offset) per start. Stops quietly at the first malformed set."""
    entries: list[tuple[int, int, int]] = []
    pos = 0
    while pos + 4 <= len(data):
        start = pos
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4
        off_size = 4
        if length == 0xFFFFFFFF:
            if pos + 8 > len(data):
                break
            (length,) = struct.unpack_from("<Q", data, pos)
            pos += 8
            off_size = 8
        end = pos + length
        if length < 4 or end > len(data):
            break
        if pos + 2 + off_size + 2 > end:
            break                          # the set is shorter than its own header
        cu_off = int.from_bytes(data[pos + 2:pos + 2 + off_size], "little")
        pos += 2 + off_size
        addr_size = data[pos]
        pos += 2                           # address_size, segment_selector_size
        if addr_size not in (4, 8):
            break
        # The tuples start at a multiple of twice the address size from the set's start.
        pos = start + -(-(pos - start) // (2 * addr_size)) * (2 * addr_size)
        fmt = "<II" if addr_size == 4 else "<QQ"
        while pos + 2 * addr_size <= end:
            lo, n = struct.unpack_from(fmt, data, pos)
            pos += 2 * addr_size
            if lo == 0 and n == 0:
                break
            if n:
                entries.append((lo, lo + n, cu_off))
        pos = end
    entries.sort()
    return [e[0] for e in entries], [(e[1], e[2]) for e in entries]


def _number(attr: AttributeValue) -> int:
    """An attribute's integer value; a garbage form (a block where an address or a constant
    belongs) is bad input, not a bug."""
    if not isinstance(attr.value, int):
        raise DWARFError(f"{attr.name} in form {attr.form} is not a number")
    return attr.value


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


_MAX_CHILDREN = 1 << 20


def _iter_children(die: DIE) -> Iterator[DIE]:
    """``die``'s children, in file order, defended against hostile DWARF: pyelftools follows
    ``DW_AT_sibling``, and one pointing backwards would loop forever, so stop as soon as an
    offset does not grow (and after a million children)."""
    last = die.offset
    for n, child in enumerate(die.iter_children()):
        if child.offset <= last or n >= _MAX_CHILDREN:
            return
        last = child.offset
        yield child


def _children(die: DIE, tags: frozenset[str]) -> Iterator[DIE]:
    for child in _iter_children(die):
        if child.tag in tags:
            yield child


def _walk(die: DIE, tags: frozenset[str], depth: int = 0) -> Iterator[DIE]:
    if depth > _MAX_DEPTH:
        return
    for child in _iter_children(die):
        if child.tag in tags:
            yield child
        elif child.has_children and child.tag in _SCOPES:
            yield from _walk(child, tags, depth + 1)


# --- opening a module's DWARF, cached per build-id -----------------------------------------------

_INDEX_CACHE: dict[object, DwarfIndex | None] = {}
_CACHE_LIMIT = 64


def clear_cache() -> None:
    """Forget every cached DWARF index (tests, benchmarks, long-running processes)."""
    _INDEX_CACHE.clear()


# Sections get_dwarf_info would read (and decompress) that we never use: libc's .debug_line
# and .debug_loclists alone are a third of its debug data.
_UNUSED_SECTIONS = frozenset({".debug_line", ".debug_loc", ".debug_loclists", ".debug_frame",
                              ".eh_frame", ".debug_pubtypes", ".debug_pubnames", ".debug_types",
                              ".zdebug_line", ".zdebug_loc", ".zdebug_loclists", ".zdebug_frame",
                              ".zdebug_pubtypes", ".zdebug_pubnames", ".zdebug_types"})


def _open_dwarf(file: RegularFile) -> DWARFInfo | None:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import Section

    class _DwarfOnly(ELFFile):
        def get_section_by_name(self, name: str) -> Section | None:
            return None if name in _UNUSED_SECTIONS else super().get_section_by_name(name)

    # the module's one descriptor, opened below the process's root (coripper.unwinder.rootfs)
    with file.stream() as f:
        elf = _DwarfOnly(f)
        sec = elf.get_section_by_name(".debug_info")
        if sec is None or sec["sh_type"] == "SHT_NOBITS":
            return None
        # pyelftools copies (and decompresses) every debug section into memory here, so the
        # file can be closed afterwards. Executables and shared objects need no relocation.
        return elf.get_dwarf_info(relocate_dwarf_sections=False, follow_links=False)


def index_for(module: Module) -> DwarfIndex | None:
    """The DWARF index of ``module``: from its separate debug file when there is one with
    ``.debug_info`` (gdb prefers it too), else from the module's own file; None without DWARF
    or when the file on disk is another build."""
    # module.file is set only when the file on disk is the build the core ran
    files = [f for f in (module.debug_file, module.file) if f is not None]
    if not files:
        return None
    # The files are part of the key: one build-id may be seen stripped (another rootdir) and
    # with its DWARF.
    key = (module.build_id, tuple(f.identity for f in files))
    if key in _INDEX_CACHE:
        return _INDEX_CACHE[key]
    index = None
    for f in files:
        dwarf = None
        with capture_internal_exceptions("the DWARF of %s", f.path, expected=ELF_INPUT_ERRORS):
            dwarf = _open_dwarf(f)      # unreadable or garbage: no inline info
        if dwarf is not None:
            index = DwarfIndex(dwarf)
            break
    if len(_INDEX_CACHE) >= _CACHE_LIMIT:
        _INDEX_CACHE.clear()
    _INDEX_CACHE[key] = index
    return index


def inline_names(module: Module | None, pc: int) -> tuple[str, ...]:
    """Names of the functions inlined at runtime address ``pc`` of ``module``, innermost first
    (empty without DWARF)."""
    if module is None:
        return ()
    index = index_for(module)
    return index.inline_chain(pc - module.bias) if index is not None else ()


def function_name(module: Module | None, pc: int) -> str | None:
    """DWARF name of the function holding runtime address ``pc`` of ``module`` (None without
    DWARF)."""
    if module is None:
        return None
    index = index_for(module)
    return index.function_name(pc - module.bias) if index is not None else None


# --- gdb's tail-call chain (dwarf2/frame-tailcall.c, call_site_find_chain) ----------------------

Resolver = Callable[[Module, CallTarget], tuple[Module, int] | None]
#: A function: its module and runtime entry address.
_Func: TypeAlias = "tuple[Module, int]"
#: A call site taken: its module and runtime pc.
_Site: TypeAlias = "tuple[Module, int]"

_MAX_CHAIN_STEPS = 10_000


def tail_call_chain(caller: Module, return_pc: int, callee: Module, callee_pc: int,
                    resolve: Resolver) -> list[tuple[Module, int]]:
    """The functions gdb shows as tail-call frames between a callee and its caller.

    ``return_pc`` is the caller's return address and ``callee_pc`` the callee frame's lookup
    pc (runtime addresses). Returns ``(module, runtime pc of the tail call site)`` per frame,
    innermost first. As gdb: the call site at the return address gives the first target; from
    each function that is not the callee, its tail call sites are followed (each call site at
    most once per path); every path that reaches the callee's entry is a candidate, and only
    the callers and callees common to all candidates are kept (none when they disagree
    completely). A target gdb could not resolve (a computed ``DW_AT_call_target``, an unknown
    name, an address that is no function's entry) ends the search with no frames.
    """
    cidx = index_for(callee)
    ridx = index_for(caller)
    if cidx is None or ridx is None:
        return []
    entry_link = cidx.function_entry(callee_pc - callee.bias)
    if entry_link is None:
        return []
    first = ridx.call_site_target(return_pc - caller.bias)
    if first is None:
        return []
    start = resolve(caller, first)
    if start is None:
        return []
    return _ChainSearch((callee, entry_link + callee.bias), resolve).run(start)


class _ChainSearch:
    """gdb's ``call_site_find_chain_1``: depth first over the tail call sites, from the
    function the caller called towards ``goal`` (the callee's entry)."""

    def __init__(self, goal: _Func, resolve: Resolver) -> None:
        self.goal = goal
        self.resolve = resolve
        self.chain: list[_Site] = []        # the call sites taken on this path, outermost first
        self.on_path: set[int] = set()      # their pcs
        # per function on the path: its module and the tail call sites not yet followed
        self.pending: list[tuple[Module, Iterator[tuple[int, CallTarget | None]]]] = []
        self.first: list[_Site] | None = None     # the first candidate chain
        self.callers = self.callees = 0     # its outer and inner sites every candidate shares
        self.gave_up = False

    def run(self, start: _Func) -> list[_Site]:
        """The kept call sites, innermost first; empty when gdb would show none."""
        func: _Func | None = start
        steps = 0
        while func is not None:
            steps += 1
            if steps > _MAX_CHAIN_STEPS or not self._visit(func):
                return []
            func = self._next_function()
            if self.gave_up:
                return []
        return self._kept()

    def _visit(self, func: _Func) -> bool:
        """Enter ``func``: a candidate when it is the goal, else queue its tail call sites.
        False when the search must stop with no frames."""
        mod, addr = func
        if mod is self.goal[0] and addr == self.goal[1]:
            if not self._candidate(list(self.chain)):
                return False
            self._leave()           # the goal is entered at most once per path
            return True
        idx = index_for(mod)
        sites = idx.tail_call_sites(addr - mod.bias) if idx is not None else None
        if sites is None:
            return False            # not a function's entry: gdb cannot go on either
        self.pending.append((mod, iter(sites)))
        return True

    def _next_function(self) -> _Func | None:
        """Follow the next tail call site not on the path (backing out of functions whose
        sites are all followed); None when the search is done, or ``gave_up`` at a target
        that cannot be resolved."""
        while self.pending:
            mod, sites = self.pending[-1]
            site = next(sites, None)
            if site is None:
                self.pending.pop()
                self._leave()
                continue
            link_pc, target = site
            func = self.resolve(mod, target) if target is not None else None
            if func is None:
                self.gave_up = True
                return None
            pc = link_pc + mod.bias
            if pc in self.on_path:
                continue
            self.on_path.add(pc)
            self.chain.append((mod, pc))
            return func
        return None

    def _leave(self) -> None:
        """Back out of the last call site taken."""
        if self.chain:
            _mod, pc = self.chain.pop()
            self.on_path.discard(pc)

    def _candidate(self, chain: list[_Site]) -> bool:
        """Narrow the kept sites to those ``chain`` shares; False when none are left."""
        if self.first is None:
            self.first, self.callers, self.callees = chain, len(chain), len(chain)
            return True
        self.callers = _common_prefix(self.first, chain, self.callers)
        self.callees = _common_suffix(self.first, chain, self.callees)
        return self.callers > 0 or self.callees > 0

    def _kept(self) -> list[_Site]:
        result = self.first
        if not result:
            return []
        if self.callers + self.callees >= len(result):
            kept = result
        else:
            kept = result[:self.callers] + result[len(result) - self.callees:]
        return list(reversed(kept))


def _common_prefix(a: list[_Site], b: list[_Site], n: int) -> int:
    i = 0
    while i < n and i < len(b) and a[i][1] == b[i][1]:
        i += 1
    return i


def _common_suffix(a: list[_Site], b: list[_Site], n: int) -> int:
    i = 0
    while i < n and i < len(b) and a[len(a) - 1 - i][1] == b[len(b) - 1 - i][1]:
        i += 1
    return i
