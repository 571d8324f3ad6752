"""coripper.minimizer.elfcore against a real kernel core, with eu-readelf as the independent oracle."""

from __future__ import annotations

import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coripper.minimizer.elfcore import (AT_PHDR, PT_NOTE, parse_core_notes, parse_elf_header,
                              parse_notes, parse_program_headers, parse_core_notes as _pcn)
from coripper.errors import CoreFormatError, UnsupportedCoreError

ENV = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}


@pytest.fixture(scope="module")
def threads_core(cores):  # type: ignore[no-untyped-def]
    crash = cores.standard("threads")
    data = crash.core.read_bytes()
    hdr = parse_elf_header(data)
    phdrs = parse_program_headers(data[hdr.e_phoff:], hdr.e_phnum)
    note = next(p for p in phdrs if p.p_type == PT_NOTE)
    notes, warnings = parse_notes(data[note.p_offset:note.p_offset + note.p_filesz])
    assert warnings == []
    return crash, hdr, phdrs, parse_core_notes(notes, hdr.e_machine)


@pytest.mark.root
def test_threads_match_eu_readelf(threads_core) -> None:  # type: ignore[no-untyped-def]
    crash, hdr, phdrs, core = threads_core
    out = subprocess.run(["eu-readelf", "-n", str(crash.core)], capture_output=True, text=True,
                         env=ENV).stdout
    pids = [int(p) for p in re.findall(r"^\s+pid: (\d+)", out, re.M)]   # PRSTATUS, not PRPSINFO
    assert [t.tid for t in core.threads] == pids
    assert core.threads[0].tid == crash.pid and core.threads[0].signal == crash.signal
    rips = [int(x, 16) for x in re.findall(r"\brip:\s+(0x[0-9a-f]+)", out)]
    assert [t.pc for t in core.threads] == rips
    fs = [int(x, 16) for x in re.findall(r"\bfs\.base:\s+(0x[0-9a-f]+)", out)]
    assert [t.tls for t in core.threads] == fs
    assert hdr.e_phnum == len(phdrs) and core.machine == "x86_64"


@pytest.mark.root
def test_mappings_auxv_prpsinfo(threads_core) -> None:  # type: ignore[no-untyped-def]
    crash, _, _, core = threads_core
    assert core.executable == crash.argv[0]
    assert any(m.path.endswith("libc.so.6") and m.file_offset == 0 for m in core.mappings)
    assert core.auxv[AT_PHDR] and core.page_size == 4096
    assert core.prpsinfo is not None and core.prpsinfo.pid == crash.pid
    assert core.prpsinfo.fname == "crasher-pie"
    assert core.siginfo is not None and core.siginfo.signo == 11 and core.siginfo.addr == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_header_parser_only_raises_our_errors(data: bytes) -> None:
    try:
        parse_elf_header(data)
    except (CoreFormatError, UnsupportedCoreError):
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from([62, 183]))
def test_note_parsers_never_crash(data: bytes, machine: int) -> None:
    notes, _ = parse_notes(data)
    _pcn(notes, machine)
