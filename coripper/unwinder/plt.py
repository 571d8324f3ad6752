"""``name@plt`` symbols for PLT stubs, as gdb names them (BFD's synthetic symbols).

A thread stopped in a PLT stub has no ELF symbol of its own; gdb calls the frame after the
function the stub jumps to. aarch64: a 32-byte PLT0, then a 16-byte stub per ``.rela.plt``
entry. x86-64: the stubs of ``.plt``, ``.plt.sec`` and ``.plt.got``, each named through the
GOT slot its ``jmp`` reads and that slot's dynamic relocation.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from coripper.unwinder.symbols import SYM, STB_LOCAL, Symbol

if TYPE_CHECKING:
    from elftools.elf.elffile import ELFFile

MASK64 = (1 << 64) - 1
_AARCH64_PLT0, _AARCH64_PLT_ENTRY = 32, 16
_RELA = struct.Struct("<QQq")           # Elf64_Rela: r_offset, r_info, r_addend
R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT, R_X86_64_IRELATIVE = 6, 7, 37
_ENDBR64 = b"\xf3\x0f\x1e\xfa"


def plt_symbols(elf: ELFFile) -> list[Symbol]:
    """``name@plt`` synthetic symbols for the PLT stubs, as gdb (BFD) names them."""
    if elf["e_machine"] == "EM_AARCH64":
        return _aarch64_plt_symbols(elf)
    if elf["e_machine"] == "EM_X86_64":
        return _x86_64_plt_symbols(elf)
    return []


def _dynsym_name(symtab: bytes, strtab: bytes, index: int) -> str | None:
    if (index + 1) * SYM.size > len(symtab):
        return None
    name_off = SYM.unpack_from(symtab, index * SYM.size)[0]
    end = strtab.find(b"\0", name_off)
    if end <= name_off:
        return None
    return strtab[name_off:end].decode("utf-8", "replace")


def _aarch64_plt_symbols(elf: ELFFile) -> list[Symbol]:
    """``name@plt`` for each aarch64 PLT stub, as gdb (BFD's synthetic symbols) names them:
    a 32-byte PLT0, then one 16-byte stub per ``.rela.plt`` entry, in order. ld emits no CFI
    for ``.plt`` there, so a thread stopped in a stub is unwound through lr (coripper/unwinder/unwind.py)."""
    plt, rela = elf.get_section_by_name(".plt"), elf.get_section_by_name(".rela.plt")
    dynsym = elf.get_section_by_name(".dynsym")
    if plt is None or rela is None or dynsym is None or plt["sh_type"] == "SHT_NOBITS":
        return []
    strtab = elf.get_section(dynsym["sh_link"]).data()
    symtab = dynsym.data()
    raw = rela.data()
    out = []
    for i, (_off, info, _addend) in enumerate(_RELA.iter_unpack(raw[:len(raw) // 24 * 24])):
        index = info >> 32
        name = _dynsym_name(symtab, strtab, index) if index else None
        if name is None:
            continue        # IRELATIVE (ifunc) stubs have no symbol
        out.append(Symbol(f"{name}@plt", plt["sh_addr"] + _AARCH64_PLT0 + _AARCH64_PLT_ENTRY * i,
                          _AARCH64_PLT_ENTRY, STB_LOCAL))
    return out


def _got_slot_names(elf: ELFFile) -> dict[int, str]:
    """GOT slot address -> the name BFD gives a PLT stub jumping through it: the symbol of the
    slot's dynamic relocation (``JUMP_SLOT``, ``GLOB_DAT``), ``+0x<addend>`` when the addend is
    not 0, ``*ABS*+0x<resolver>`` for an ``IRELATIVE`` one (a local ifunc)."""
    dynsym = elf.get_section_by_name(".dynsym")
    symtab = dynsym.data() if dynsym is not None and dynsym["sh_type"] != "SHT_NOBITS" else b""
    strtab = elf.get_section(dynsym["sh_link"]).data() if symtab and dynsym is not None else b""
    names: dict[int, str] = {}
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_RELA" or not sec.name.startswith(".rela.") or \
                sec["sh_flags"] & 2 == 0:           # SHF_ALLOC: the dynamic relocations
            continue
        raw = sec.data()
        for offset, info, addend in _RELA.iter_unpack(raw[:len(raw) // 24 * 24]):
            rtype, index = info & 0xFFFFFFFF, info >> 32
            if rtype == R_X86_64_IRELATIVE and not index:
                names[offset] = f"*ABS*+0x{addend & MASK64:x}"
            elif rtype in (R_X86_64_GLOB_DAT, R_X86_64_JUMP_SLOT) and index:
                name = _dynsym_name(symtab, strtab, index)
                if name is not None:
                    names[offset] = name + (f"+0x{addend & MASK64:x}" if addend else "")
    return names


def _x86_64_plt_symbols(elf: ELFFile) -> list[Symbol]:
    """``name@plt`` for each x86-64 PLT stub, as BFD's ``elf_x86_64_get_synthetic_symtab``:
    every 16-byte entry of ``.plt`` after PLT0 (lazy binding), of ``.plt.sec`` (IBT, ``-z
    ibtplt``; its lazy ``.plt`` then holds no jump through the GOT and gets no names), and
    every entry of ``.plt.got`` (8 bytes, 16 with IBT). Each entry's ``jmp *disp(%rip)``
    (after an ``endbr64``, with or without a ``bnd`` prefix) names the GOT slot, whose dynamic
    relocation names the stub (:func:`_got_slot_names`)."""
    dynsym = elf.get_section_by_name(".dynsym")
    if dynsym is None or dynsym["sh_type"] == "SHT_NOBITS":
        return []       # BFD names stubs only from dynamic relocations (not in static binaries)
    has_sec = elf.get_section_by_name(".plt.sec") is not None
    slots: dict[int, str] | None = None
    out: list[Symbol] = []
    for name in (".plt", ".plt.sec", ".plt.got"):
        sec = elf.get_section_by_name(name)
        if sec is None or sec["sh_type"] == "SHT_NOBITS" or (name == ".plt" and has_sec):
            continue
        data, addr = sec.data(), sec["sh_addr"]
        entry = 8 if name == ".plt.got" and not data.startswith(_ENDBR64) else 16
        for off in range(16 if name == ".plt" else 0, len(data) - entry + 1, entry):
            got = _x86_64_jump_slot(data, off, addr)
            if got is None:
                continue
            if slots is None:
                slots = _got_slot_names(elf)
            target = slots.get(got)
            if target is not None:
                out.append(Symbol(f"{target}@plt", addr + off, entry, STB_LOCAL))
    return out


def _x86_64_jump_slot(data: bytes, off: int, addr: int) -> int | None:
    """The GOT slot that the PLT entry at ``off`` jumps through, or None."""
    i = off + (4 if data[off:off + 4] == _ENDBR64 else 0)
    if data[i:i + 1] == b"\xf2":                 # bnd (MPX) prefix
        i += 1
    if data[i:i + 2] != b"\xff\x25" or i + 6 > len(data):
        return None
    disp = int.from_bytes(data[i + 2:i + 6], "little", signed=True)
    return (addr + i + 6 + disp) & MASK64
