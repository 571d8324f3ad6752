"""A tiny ELF core synthesizer for hostile and edge-case tests (test-only; written for this project).

It produces cores laid out as the kernel does (header, phdrs, one PT_NOTE, then PT_LOAD data in
address order), from which tests derive damaged variants: truncated, lying sizes, huge tables.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

EM_X86_64, EM_AARCH64 = 62, 183
PT_LOAD, PT_NOTE = 1, 4
NT_PRSTATUS, NT_PRPSINFO, NT_AUXV, NT_FILE = 1, 3, 6, 0x46494C45


def note(name: bytes, n_type: int, desc: bytes) -> bytes:
    name += b"\0"
    return (struct.pack("<III", len(name), len(desc), n_type) + name + bytes(-len(name) % 4)
            + desc + bytes(-len(desc) % 4))


def prstatus(tid: int, sp: int, pc: int, machine: int = EM_X86_64, signal: int = 11) -> bytes:
    head = struct.pack("<iii", signal, 0, 0) + struct.pack("<h2x", signal) + bytes(16) \
        + struct.pack("<iiii", tid, 1, tid, tid) + bytes(64)
    if machine == EM_X86_64:
        regs = [0] * 27
        regs[16], regs[19] = pc, sp
    else:
        regs = [0] * 34
        regs[31], regs[32] = sp, pc
    return head + struct.pack(f"<{len(regs)}Q", *regs) + bytes(8)


def nt_file(entries: list[tuple[int, int, int, str]], page: int = 4096) -> bytes:
    out = struct.pack("<QQ", len(entries), page)
    out += b"".join(struct.pack("<QQQ", s, e, off // page) for s, e, off, _ in entries)
    return out + b"".join(p.encode() + b"\0" for *_, p in entries)


@dataclass
class CoreSpec:
    machine: int = EM_X86_64
    threads: list[tuple[int, int, int]] = field(default_factory=list)   # (tid, sp, pc)
    segments: list[tuple[int, bytes, int]] = field(default_factory=list)  # (vaddr, data, flags)
    files: list[tuple[int, int, int, str]] = field(default_factory=list)
    auxv: dict[int, int] = field(default_factory=dict)
    extra_notes: bytes = b""


def build_core(spec: CoreSpec) -> bytes:
    """Serialize ``spec`` into an ELF core (64-bit LE)."""
    notes = b"".join(note(b"CORE", NT_PRSTATUS, prstatus(t, sp, pc, spec.machine))
                     for t, sp, pc in spec.threads)
    notes += note(b"CORE", NT_PRPSINFO, bytes(136))
    auxv = b"".join(struct.pack("<QQ", k, v) for k, v in spec.auxv.items()) + bytes(16)
    notes += note(b"CORE", NT_AUXV, auxv)
    if spec.files:
        notes += note(b"CORE", NT_FILE, nt_file(spec.files))
    notes += spec.extra_notes
    phnum = 1 + len(spec.segments)
    off = 64 + 56 * phnum
    phdrs = struct.pack("<IIQQQQQQ", PT_NOTE, 0, off, 0, 0, len(notes), 0, 4)
    data_off = (off + len(notes) + 4095) & ~4095
    body = bytearray()
    for vaddr, data, flags in spec.segments:
        phdrs += struct.pack("<IIQQQQQQ", PT_LOAD, flags, data_off + len(body), vaddr, 0,
                             len(data), len(data), 4096)
        body += data + bytes(-len(data) % 4096)
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", ident, 4, spec.machine, 1, 0, 64, 0, 0, 64, 56,
                       phnum, 0, 0, 0)
    head = ehdr + phdrs + notes
    return bytes(head + bytes(data_off - len(head)) + body)


def simple_spec(n_threads: int = 2, machine: int = EM_X86_64) -> CoreSpec:
    """Threads with stacks in separate segments, plus a fake ELF module header page."""
    spec = CoreSpec(machine=machine)
    module = b"\x7fELF\x02\x01\x01" + bytes(4089)
    spec.segments.append((0x400000, module, 5))
    spec.files.append((0x400000, 0x401000, 0, "/fake/exe"))
    for i in range(n_threads):
        base = 0x7F0000000000 + i * 0x100000
        spec.segments.append((base, bytes([i + 1]) * 0x4000, 6))
        spec.threads.append((100 + i, base + 0x3000, 0x400100))
    spec.auxv = {3: 0x400040, 5: 1, 6: 4096}
    return spec
