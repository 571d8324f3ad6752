"""Fuzz coripper.minimizer.elfcore: ELF header, program headers, notes, NT_FILE/prstatus/auxv/... and build-id.

Input: arbitrary bytes, used three ways: as a whole core (header, phdrs, then the PT_NOTE
segments it names), as one PT_NOTE segment's contents, and as the first page of a mapped
module (:func:`parse_module_header`).

Contract checked (docs/internal-apis.md, coripper/minimizer/elfcore.py docstrings):

* ``parse_elf_header`` raises only ``CoreFormatError`` or ``UnsupportedCoreError``;
* ``parse_program_headers``, ``iter_notes``, ``parse_notes``, ``parse_core_notes``,
  ``parse_build_id_notes``, ``parse_module_header``, ``parse_auxv`` and ``parse_dynamic`` never
  raise (malformed notes become warnings of ``parse_core_notes``);
* the single-note parsers ``parse_prstatus``, ``parse_nt_file``, ``parse_prpsinfo`` and
  ``parse_siginfo`` raise only ``CoreFormatError``;
* every note yielded lies inside the data and the notes come in increasing offsets;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: the note segments and headers of gcore cores of tests/programs/crasher.c, and the first
page of ELF files from /usr/lib.

Run: ``python3 fuzz/fuzz_elfcore_notes.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["coripper"]):
    from coripper.minimizer import elfcore  # noqa: E402
    from coripper.errors import CoreFormatError, UnsupportedCoreError  # noqa: E402

TARGET = "elfcore_notes"
MACHINES = (elfcore.EM_X86_64, 183)


def check_notes(data: bytes, machine: int) -> None:
    """Notes of one PT_NOTE segment: bounds, order, and the per-note parsers' error types."""
    notes, _warnings = elfcore.parse_notes(data)
    prev = -1
    for note in notes:
        assert prev < note.offset < len(data), (prev, note.offset, len(data))
        assert note.offset + 12 + len(note.desc) <= len(data)
        prev = note.offset
    for align in (4, 8):
        for _ in elfcore.iter_notes(data, align=align):
            pass
    elfcore.parse_core_notes(notes, machine)
    elfcore.parse_build_id_notes(data)
    for note in notes[:64]:
        for parse in (lambda d: elfcore.parse_prstatus(d, machine), elfcore.parse_nt_file,
                      elfcore.parse_prpsinfo, elfcore.parse_siginfo):
            try:
                parse(note.desc)
            except CoreFormatError as exc:
                assert str(exc)
        elfcore.parse_auxv(note.desc)
        for _ in elfcore.parse_dynamic(note.desc):
            pass


def check_core(data: bytes) -> None:
    """The whole input as a core: header, program headers, then each PT_NOTE in range."""
    try:
        hdr = elfcore.parse_elf_header(data)
    except (CoreFormatError, UnsupportedCoreError) as exc:
        assert str(exc)
        return
    phdrs = elfcore.parse_program_headers(data[hdr.e_phoff:], hdr.e_phnum)
    assert len(phdrs) <= hdr.e_phnum
    for ph in phdrs[:32]:
        if ph.p_type == elfcore.PT_NOTE and ph.p_offset < len(data):
            check_notes(data[ph.p_offset:ph.p_offset + ph.p_filesz], hdr.e_machine)


def test_one(data: bytes) -> None:
    """One fuzz input."""
    check_core(data)
    check_notes(data, MACHINES[len(data) & 1])
    elfcore.parse_module_header(data)


def seeds() -> Iterator[bytes]:
    """Headers and note segments of real cores, first pages of real ELF files."""
    for core in _common.real_cores():
        raw = core.read_bytes()
        hdr = elfcore.parse_elf_header(raw)
        phdrs = elfcore.parse_program_headers(raw[hdr.e_phoff:], hdr.e_phnum)
        notes = [raw[p.p_offset:p.p_offset + p.p_filesz] for p in phdrs if p.p_type == elfcore.PT_NOTE]
        end = hdr.e_phoff + hdr.e_phnum * elfcore.PHDR_SIZE
        # A compact core: the headers, then the notes moved right behind them.
        out = bytearray(raw[:end])
        for p in phdrs:
            if p.p_type == elfcore.PT_NOTE:
                elfcore_off = len(out)
                out[hdr.e_phoff + p.index * 56 + 8:hdr.e_phoff + p.index * 56 + 16] = \
                    elfcore_off.to_bytes(8, "little")
                out += raw[p.p_offset:p.p_offset + p.p_filesz]
        yield bytes(out)
        yield from notes
        for note_data in notes:
            for note in elfcore.iter_notes(note_data):
                yield note_data[note.offset:note.offset + 12 + ((len(note.name) + 4) & ~3)
                                + ((len(note.desc) + 3) & ~3)]
    for lib in _common.host_elf_files(8):
        yield lib.read_bytes()[:4096]


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds)
