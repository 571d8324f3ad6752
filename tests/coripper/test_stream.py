"""Stream mode (one pass over a pipe) and file mode write equivalent cores."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import pytest

from coripper.elfcore import PT_NOTE, parse_elf_header, parse_program_headers
from coripper.errors import CoreFormatError
from coripper.provenance import find_provenance
from coripper.stream import MinimizeOptions, minimize_file, minimize_stream

pytestmark = pytest.mark.root


def _without_provenance(data: bytes) -> tuple[bytes, dict]:
    """The core with the provenance note's bytes blanked, and the decoded provenance."""
    hdr = parse_elf_header(data)
    out = bytearray(data)
    prov = None
    for p in parse_program_headers(data[hdr.e_phoff:], hdr.e_phnum):
        if p.p_type == PT_NOTE:
            found = find_provenance(data[p.p_offset:p.p_offset + p.p_filesz])
            if found is not None:
                # the note is the last thing in the file: drop it and blank its p_filesz/p_memsz
                prov = found
                assert p.p_offset + p.p_filesz == len(data)
                del out[p.p_offset:]
                at = hdr.e_phoff + 56 * p.index
                out[at + 32:at + 48] = bytes(16)
    assert prov is not None
    return bytes(out), prov


def _via_pipe(core, opts=None) -> tuple[bytes, object]:  # type: ignore[no-untyped-def]
    """Feed ``core`` through a real OS pipe into minimize_stream (non-seekable src and dst)."""
    r, w = os.pipe()

    def feed() -> None:
        with open(core, "rb") as f, os.fdopen(w, "wb") as out:
            while chunk := f.read(1 << 16):
                out.write(chunk)

    t = threading.Thread(target=feed)
    t.start()
    r2, w2 = os.pipe()
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(os.fdopen(r2, "rb").read()))
    reader.start()
    with os.fdopen(r, "rb") as src, os.fdopen(w2, "wb") as dst:
        report = minimize_stream(src, dst, opts)
    t.join()
    reader.join()
    return result[0], report


@pytest.mark.parametrize("kind", ["threads", "throw", "static", "nopie", "overflow"])
def test_file_and_pipe_modes_byte_identical(cores, kind: str) -> None:
    core = cores.standard(kind).core
    dst = io.BytesIO()
    with open(core, "rb") as src:
        file_report = minimize_file(src, dst)
    piped, pipe_report = _via_pipe(core)
    a, prov_file = _without_provenance(dst.getvalue())
    b, prov_pipe = _without_provenance(piped)
    assert a == b
    assert prov_file["mode"] == "file" and prov_pipe["mode"] == "stream"
    assert prov_file["kept"] == prov_pipe["kept"]
    assert prov_pipe["source"]["sha256"] == pipe_report.sha256
    import hashlib
    assert pipe_report.sha256 == hashlib.sha256(core.read_bytes()).hexdigest()
    assert file_report.kept == pipe_report.kept
    assert file_report.bytes_in == pipe_report.bytes_in == core.stat().st_size


def test_options_max_stack_keep_heap_keep(cores) -> None:
    crash = cores.crash("heap64", [cores.programs.crasher(), "segv", "-m", "64"])
    with open(crash.core, "rb") as src:
        plain = minimize_file(src, io.BytesIO())
    with open(crash.core, "rb") as src:
        small = minimize_file(src, io.BytesIO(), MinimizeOptions(max_stack=4096))
    assert small.bytes_out <= plain.bytes_out
    stack = [(a, b) for a, b, r in small.kept if r.startswith("stack")]
    assert stack and all(b - a <= 2 * 4096 for a, b in stack)
    with open(crash.core, "rb") as src:
        heap = minimize_file(src, io.BytesIO(), MinimizeOptions(keep_heap=True))
    assert any("heap" in r for _, _, r in heap.kept)
    lo = plain.threads[0].sp & ~0xFFF
    with open(crash.core, "rb") as src:
        kept = minimize_file(src, io.BytesIO(), MinimizeOptions(keep_ranges=((lo - 0x10, lo + 5),)))
    assert any("--keep" in r for _, _, r in kept.kept)


def test_stream_drains_input_after_a_format_error() -> None:
    """The kernel blocks until its pipe is drained: read everything even when refusing."""
    r, w = os.pipe()
    payload = b"NOTANELF" + bytes(3 << 20)

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            out.write(payload)

    t = threading.Thread(target=feed)
    t.start()
    with os.fdopen(r, "rb") as src:
        with pytest.raises(CoreFormatError):
            minimize_stream(src, io.BytesIO())
        t.join(timeout=10)
        assert not t.is_alive()
        assert src.read() == b""


def test_hook_import_closure_is_stdlib_only() -> None:
    code = ("import sys, coripper.stream; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('elftools', 'zstandard')]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
