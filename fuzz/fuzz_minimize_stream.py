"""Fuzz coripper.minimizer.stream: a whole core through ``minimize_stream`` and ``minimize_file``.

Input: the bytes of an ELF core. Its length picks the options (hash algorithm, stack limit) so
that every input exercises one combination deterministically.

Contract checked (docs/internal-apis.md "coripper.minimizer.stream", tests/coripper/test_hostile.py):

* both functions raise only ``CoreFormatError`` or ``UnsupportedCoreError`` (with a message);
* ``minimize_stream`` reads its input to EOF, whatever happens;
* otherwise the output is a structurally valid core: header and program headers parse,
  every segment lies inside the output, ``p_memsz >= p_filesz``, PT_LOADs sorted and not
  overlapping, and ``report.bytes_out`` is the output's length;
* both modes agree on accepting or refusing the input;
* hangs (libFuzzer ``-timeout``) and memory growth (``-rss_limit_mb``) are crashes.

Seeds: gcore cores of tests/programs/crasher.c, minimized by coripper, then shrunk (every
PT_LOAD cut to a few hundred bytes) so that mutations stay fast; a synthetic core of
tests/coripper/elfwriter.py.

Run: ``python3 fuzz/fuzz_minimize_stream.py [-max_total_time=300] [libFuzzer flags] [corpus dirs]``
"""

from __future__ import annotations

import io
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

with atheris.instrument_imports(include=["coripper"]):
    from coripper.minimizer.elfcore import PHDR_SIZE, PT_LOAD, parse_elf_header, parse_program_headers  # noqa: E402
    from coripper.errors import CoreFormatError, UnsupportedCoreError  # noqa: E402
    from coripper.minimizer.stream import MinimizeOptions, MinimizeReport, minimize_file, minimize_stream  # noqa: E402

TARGET = "minimize_stream"
REFUSED = (CoreFormatError, UnsupportedCoreError)


def check_output(out: bytes, report: MinimizeReport) -> None:
    """The minimized core is structurally valid (as tests/coripper/test_hostile.py checks)."""
    assert report.bytes_out == len(out), (report.bytes_out, len(out))
    hdr = parse_elf_header(out)
    phdrs = parse_program_headers(out[hdr.e_phoff:], hdr.e_phnum)
    assert len(phdrs) == hdr.e_phnum
    for p in phdrs:
        assert p.p_offset + p.p_filesz <= len(out), p
        assert p.p_memsz >= p.p_filesz, p
    loads = [p for p in phdrs if p.p_type == PT_LOAD]
    for a, b in zip(loads, loads[1:], strict=False):
        assert a.p_vaddr + a.p_memsz <= b.p_vaddr, (a, b)


def options_for(data: bytes) -> MinimizeOptions:
    """Deterministic options from the input length."""
    pick = len(data) % 3
    return MinimizeOptions(hash_algorithm=(None, "sha256", "blake3")[pick],
                           max_stack=(None, 4096, 64)[pick])


def run_mode(fn: Callable[..., MinimizeReport], data: bytes) -> str:
    """Minimize in one mode; return "refused" or "ok" after checking the contract."""
    src = io.BytesIO(data)
    dst = io.BytesIO()
    try:
        report = fn(src, dst, options_for(data))
    except REFUSED as exc:
        assert str(exc)
        result = "refused"
    else:
        check_output(dst.getvalue(), report)
        result = "ok"
    if fn is minimize_stream:
        assert src.tell() == len(data), "stream mode must read its input to EOF"
    return result


def test_one(data: bytes) -> None:
    """One fuzz input."""
    stream = run_mode(minimize_stream, data)
    whole = run_mode(minimize_file, data)
    assert stream == whole, (stream, whole)


def shrink(core: bytes, cap: int) -> bytes:
    """The same core with every PT_LOAD cut to ``cap`` file bytes, repacked densely."""
    hdr = parse_elf_header(core)
    phdrs = parse_program_headers(core[hdr.e_phoff:], hdr.e_phnum)
    head = bytearray(core[:hdr.e_phoff + hdr.e_phnum * PHDR_SIZE])
    body = bytearray()
    base = len(head)
    for p in phdrs:
        keep = p.p_filesz if p.p_type != PT_LOAD else min(p.p_filesz, cap)
        off = base + len(body)
        body += core[p.p_offset:p.p_offset + keep]
        struct.pack_into("<QQQQQ", head, hdr.e_phoff + p.index * PHDR_SIZE + 8, off, p.p_vaddr,
                         p.p_paddr, keep, max(p.p_memsz, keep))
    return bytes(head + body)


def seeds() -> Iterator[bytes]:
    """Real cores (minimized, then shrunk) and a synthetic core."""
    for core in _common.real_cores():
        out = io.BytesIO()
        with core.open("rb") as f:
            minimize_file(f, out)
        small = out.getvalue()
        if len(small) <= 256 << 10:
            yield small
        for cap in (0, 64, 512):
            yield shrink(small, cap)
    sys.path.insert(0, str(_common.REPO / "tests" / "coripper"))
    from elfwriter import build_core, simple_spec

    yield build_core(simple_spec(2))


if __name__ == "__main__":
    _common.run(TARGET, test_one, seeds, defaults=("-max_len=262144",))
