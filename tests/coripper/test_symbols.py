"""coripper.unwinder.symbols against readelf's view of the same symbol tables."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from coripper.unwinder.symbols import SYM, SymbolTable, demangle, parse_symbols

LIBSTDCXX = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")


def _table(path: Path, section: str = ".symtab") -> SymbolTable:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(section)
        return SymbolTable(parse_symbols(sec.data(), elf.get_section(sec["sh_link"]).data()))


def _readelf_functions(path: Path) -> list[tuple[int, int, str]]:
    """(value, size, name) of every defined FUNC/IFUNC in readelf -sW's .symtab listing."""
    out = subprocess.run(["readelf", "-sW", str(path)], capture_output=True, text=True,
                         check=True).stdout
    section = ""
    funcs = []
    for line in out.splitlines():
        if line.startswith("Symbol table"):
            section = line.split("'")[1]
            continue
        parts = line.split()
        if (section == ".symtab" and len(parts) >= 8 and parts[0].endswith(":")
                and parts[3] in ("FUNC", "IFUNC") and parts[6] != "UND"):
            size = int(parts[2], 16) if parts[2].startswith("0x") else int(parts[2])
            funcs.append((int(parts[1], 16), size, parts[7]))
    return funcs


def test_every_function_of_a_static_binary_is_found(programs) -> None:  # type: ignore[no-untyped-def]
    """Start, middle and last byte of every sized function resolve to it or an alias of it."""
    exe = programs.crasher("static")
    table = _table(exe)
    funcs = _readelf_functions(exe)
    names_at: dict[int, set[str]] = {}
    for value, _size, name in funcs:
        names_at.setdefault(value, set()).add(name)
    checked = 0
    for value, size, _name in funcs:
        if value == 0 or size == 0:
            continue
        for addr in (value, value + size // 2, value + size - 1):
            sym = table.lookup(addr)
            assert sym is not None, hex(addr)
            # Overlapping symbols (rare) may resolve to the inner one; it must still contain addr.
            assert sym.name in names_at[value] or sym.value <= addr < sym.value + max(sym.size, 1)
        checked += 1
    assert checked > 500


def test_names_prefer_global_like_elfutils(programs) -> None:  # type: ignore[no-untyped-def]
    """At one address a GLOBAL symbol wins over WEAK and LOCAL ones (elfutils' rule)."""
    exe = programs.crasher("static")
    out = subprocess.run(["readelf", "-sW", str(exe)], capture_output=True, text=True,
                         check=True).stdout
    bind: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "FUNC":
            bind[parts[7]] = parts[4]
    table = _table(exe)
    sym = table.lookup(next(v for v, _s, n in _readelf_functions(exe) if n == "pause"))
    assert sym is not None and bind[sym.name] == "GLOBAL"


def test_dynsym_of_a_stripped_library() -> None:
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    if not libc.exists():
        pytest.skip("needs the system libc")
    table = _table(libc, ".dynsym")
    with open(libc, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".dynsym").get_symbol_by_name("abort")[0]
    found = table.lookup(sym["st_value"] + 5)
    assert found is not None and found.value == sym["st_value"]


def test_demangle_itanium_examples() -> None:
    got = demangle(["_ZSt9terminatev", "_Z12parse_configi", "main", "_Zgarbage",
                    "_ZNSt8ios_base4InitC1Ev@plt", "_Z3foov.cold"])
    assert got == {"_ZSt9terminatev": "std::terminate()", "_Z12parse_configi": "parse_config(int)",
                   "main": "main", "_Zgarbage": "_Zgarbage",
                   "_ZNSt8ios_base4InitC1Ev@plt": "std::ios_base::Init::Init()@plt",
                   "_Z3foov.cold": "foo() [clone .cold]"}


def _cxx_names(path: Path) -> list[str]:
    """Every ``_Z`` name in ``path``'s dynamic symbol table, with its version (``@@V``)."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return sorted({p[7] for p in (line.split() for line in out.splitlines())
                   if len(p) >= 8 and p[7].startswith("_Z")})


def test_demangle_every_libstdcxx_symbol_as_cxxfilt() -> None:
    """The oracle is c++filt: every C++ symbol of libstdc++ (about 6000, old-ABI strings,
    iostreams, templates, versions) demangles to exactly its output."""
    if shutil.which("c++filt") is None or not LIBSTDCXX.exists():
        pytest.skip("needs binutils' c++filt and libstdc++")
    names = _cxx_names(LIBSTDCXX)
    assert len(names) > 3000
    oracle = subprocess.run(["c++filt"], input="\n".join(names) + "\n", capture_output=True,
                            text=True, check=True).stdout.splitlines()
    got = demangle(names)
    wrong = [(n, got[n], want) for n, want in zip(names, oracle, strict=True) if got[n] != want]
    assert wrong == []
    assert sum(got[n] != n for n in names) > 3000          # and they were demangled


@settings(max_examples=200, deadline=None)
@given(symtab=st.binary(max_size=SYM.size * 6), strtab=st.binary(max_size=64),
       addrs=st.lists(st.integers(0, 2**64 - 1), max_size=5))
def test_garbage_symbol_tables(symtab: bytes, strtab: bytes, addrs: list[int]) -> None:
    table = SymbolTable(parse_symbols(symtab, strtab))
    for a in addrs:
        sym = table.lookup(a)
        assert sym is None or sym.value <= a
