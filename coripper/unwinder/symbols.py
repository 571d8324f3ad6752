"""Function symbols of an ELF object (``.symtab``, else ``.dynsym``): which function holds an address.

Symbol tables are unpacked with :mod:`struct` (pyelftools' per-symbol objects are far too slow
for libc's thousands of entries). Names are the raw ELF names, as elfutils'
``dwfl_module_addrname`` (and so satyr) returns them, e.g. ``_IO_file_underflow@@GLIBC_2.2.5``
in an unstripped libc; C++ names are demangled separately (:func:`demangle`).
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

STT_FUNC, STT_GNU_IFUNC = 2, 10
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SYM = struct.Struct("<IBBHQQ")                           # Elf64_Sym

# elfutils prefers a global definition over a weak one over a local one at the same address.
_BIND_RANK = {STB_GLOBAL: 0, STB_WEAK: 1, STB_LOCAL: 2}


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    bind: int


def parse_symbols(symtab: bytes, strtab: bytes) -> list[Symbol]:
    """The defined function symbols of a raw ``Elf64_Sym`` table."""
    out: list[Symbol] = []
    n = len(symtab) // SYM.size
    for name_off, info, _other, shndx, value, size in SYM.iter_unpack(symtab[:n * SYM.size]):
        if shndx == 0 or (info & 0xF) not in (STT_FUNC, STT_GNU_IFUNC) or value == 0:
            continue
        end = strtab.find(b"\0", name_off)
        if name_off >= len(strtab) or end < 0:
            continue
        name = strtab[name_off:end].decode("utf-8", "replace")
        if name:
            out.append(Symbol(name, value, size, info >> 4))
    return out


class SymbolTable:
    """Function symbols sorted by address, with aliases at one address ranked like elfutils."""

    def __init__(self, symbols: Iterable[Symbol],
                 sections: Iterable[tuple[int, int]] = ()) -> None:
        # [start, end) of the object's code sections: a zero-size symbol covers addresses
        # of its own section only (gdb's minimal-symbol lookup matches sections too)
        self._sections = sorted(sections)
        self._section_starts = [lo for lo, _hi in self._sections]
        best: dict[int, Symbol] = {}
        self.aliases: dict[int, list[str]] = {}
        for s in symbols:
            self.aliases.setdefault(s.value, []).append(s.name)
            cur = best.get(s.value)
            if cur is None or _rank(s) < _rank(cur):
                best[s.value] = s
        self._syms = sorted(best.values(), key=lambda s: s.value)
        self._starts = [s.value for s in self._syms]
        # Largest end address seen so far, to reject zero-size symbols shadowed by a sized one.
        self._max_end: list[int] = []
        m = 0
        for s in self._syms:
            m = max(m, s.value + s.size)
            self._max_end.append(m)

    def __len__(self) -> int:
        return len(self._syms)

    def lookup(self, addr: int) -> Symbol | None:
        """The function containing link-time ``addr``: a sized symbol covering it, else the
        nearest preceding zero-size symbol (hand-written assembly without ``.size``)."""
        i = bisect.bisect_right(self._starts, addr) - 1
        j = i
        while j >= 0 and i - j < 64 and self._max_end[j] > addr:
            s = self._syms[j]
            if s.size and addr < s.value + s.size:
                return s
            j -= 1
        if i >= 0 and self._syms[i].size == 0 and (i == 0 or self._max_end[i - 1] <= addr) \
                and self._same_section(self._syms[i].value, addr):
            return self._syms[i]
        return None

    def _same_section(self, value: int, addr: int) -> bool:
        """False when ``value`` lies in a known section that ends at or before ``addr``."""
        k = bisect.bisect_right(self._section_starts, value) - 1
        if k < 0 or value >= self._sections[k][1]:
            return True
        return addr < self._sections[k][1]


def _rank(s: Symbol) -> tuple[int, int, int]:
    return (0 if s.size else 1, _BIND_RANK.get(s.bind, 3), len(s.name))


# --- C++ names, as c++filt prints them -------------------------------------------------------

_demangle_cache: dict[str, str] = {}

#: The runs of characters c++filt demangles one by one (binutils' cxxfilt.c ``is_mangled_char``):
#: ``_Z...@@GLIBCXX_3.4`` is the name ``_Z...``, then ``@@`` and a version, kept as they are.
_TOKEN = re.compile(r"[A-Za-z0-9_$.]+")
_CHAR_TRAITS = "std::char_traits<char>"
#: The standard substitutions that ``__cxa_demangle`` spells short and c++filt, which asks
#: libiberty for DMGL_VERBOSE, in full (libiberty's cp-demangle.c ``standard_subs``).
_VERBOSE = {"string": f"std::basic_string<char, {_CHAR_TRAITS}, std::allocator<char> >",
            "istream": f"std::basic_istream<char, {_CHAR_TRAITS} >",
            "ostream": f"std::basic_ostream<char, {_CHAR_TRAITS} >",
            "iostream": f"std::basic_iostream<char, {_CHAR_TRAITS} >"}
_SHORT = re.compile(r"(?<![\w:])std::(string|istream|ostream|iostream)\b(>?)")


def demangle(names: Iterable[str]) -> dict[str, str]:
    """Demangle C++ (``_Z``) names in-process, exactly as ``c++filt`` prints them (GCC's own
    demangler, libstdc++'s ``__cxa_demangle``, through :mod:`cxxfilt`). Names it cannot
    demangle, and every name where no libstdc++ is installed, map to themselves."""
    names = list(names)
    todo = {n for n in names if n.startswith("_Z") and n not in _demangle_cache}
    if todo:
        cxa_demangle = _cxa_demangle()
        for name in todo:
            _demangle_cache[name] = _TOKEN.sub(lambda m: _token(m.group(), cxa_demangle), name)
    return {n: _demangle_cache.get(n, n) for n in names}


def _cxa_demangle() -> Callable[[str], str] | None:
    try:
        import cxxfilt
    except ImportError:
        return None
    cxa_demangle: Callable[[str], str] = cxxfilt.demangle
    return cxa_demangle


def _token(token: str, cxa_demangle: Callable[[str], str] | None) -> str:
    if cxa_demangle is None or not token.startswith("_Z"):
        return token
    import cxxfilt

    try:
        short = cxa_demangle(token)
    except (cxxfilt.Error, UnicodeError):   # not a C++ name; or no libstdc++ on this host
        return token
    # the full spelling ends in ">": a closing ">" after it takes a space, as the demangler
    # writes "> >"
    return _SHORT.sub(lambda m: _VERBOSE[m.group(1)] + (" >" if m.group(2) else ""), short)
