"""Stream mode (one pass over a pipe) and file mode write equivalent cores."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading

import blake3
import pytest
from testlib import REPO

from coripper.minimizer.elfcore import PT_NOTE, parse_elf_header, parse_program_headers
from coripper.errors import CoreFormatError
from coripper.minimizer.provenance import find_provenance
from coripper.minimizer.stream import MinimizeOptions, minimize_file, minimize_stream

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
    assert prov_pipe["source"]["hash"] == pipe_report.hash_algorithm == "blake3"
    assert prov_pipe["source"]["digest"] == pipe_report.digest
    assert pipe_report.digest == blake3.blake3(core.read_bytes()).hexdigest()
    assert prov_file["source"]["hash"] is None and file_report.digest is None
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
    """The import rule the layout shows: the crash hook's closure is the standard library,
    coripper's top level (its exception tree) and the minimizer; never the unwinder, pyelftools
    or a compression library (python -S: no site-packages noise)."""
    code = ("import sys; sys.path.insert(0, %r); import collectors.corehook.hook, "
            "collectors.corehook.capture, coripper.minimizer.stream; "
            "print(' '.join(sorted(sys.modules)))" % str(REPO))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    stdlib = set(sys.stdlib_module_names) | {"__main__"}
    assert [m for m in out if m.split(".")[0] not in stdlib
            and m.split(".")[0] not in ("collectors", "coripper", "reporter")] == []
    ours = {m for m in out if m.startswith("coripper")}
    assert "coripper.minimizer.stream" in ours
    assert ours <= {"coripper", "coripper.errors", "coripper.progress"} | \
        {m for m in ours if m.startswith("coripper.minimizer.")} | {"coripper.minimizer"}


def test_the_minimizer_imports_nothing_of_the_unwinder() -> None:
    """Every minimizer module, imported alone, loads neither the unwinder nor pyelftools."""
    names = sorted(p.stem for p in (REPO / "coripper" / "minimizer").glob("*.py"))
    code = ("import importlib, sys; sys.path.insert(0, %r)\n"
            "for name in %r:\n"
            "    importlib.import_module('coripper.minimizer.' + name)\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('coripper.unwinder', 'elftools'))))"
            % (str(REPO), names))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert len(names) > 10 and out.strip() == ""


# --- --hash none: what is not kept never enters user space ----------------------------------

def _thread_rchar() -> int:
    """Bytes this thread got from read(2)-like calls (splice and lseek do not count)."""
    with open("/proc/thread-self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def _minimize_from_cat(core, opts, peek: bool = False):  # type: ignore[no-untyped-def]
    """minimize_stream over a real pipe written by a separate ``cat`` process."""
    feeder = subprocess.Popen(["cat", str(core)], stdout=subprocess.PIPE)
    assert feeder.stdout is not None
    dst = io.BytesIO()
    with feeder.stdout as src:
        if peek:
            assert src.peek(1)   # the BufferedReader now holds bytes the fd no longer has
        before = _thread_rchar()
        report = minimize_stream(src, dst, opts)
        read = _thread_rchar() - before
        assert src.read() == b""            # drained to EOF
    assert feeder.wait() == 0
    return dst.getvalue(), report, read


@pytest.mark.parametrize("peek", [False, True])
def test_hash_none_splices_the_gaps_and_writes_the_same_core(cores, peek: bool) -> None:
    crash = cores.crash("heap64", [cores.programs.crasher(), "segv", "-m", "64"])
    size = crash.core.stat().st_size
    with open(crash.core, "rb") as src:
        ref = io.BytesIO()
        minimize_file(src, ref)
    hashed, rep_hash, read_hash = _minimize_from_cat(crash.core, None, peek)
    plain, rep_none, read_none = _minimize_from_cat(
        crash.core, MinimizeOptions(hash_algorithm=None), peek)
    assert rep_hash.digest == blake3.blake3(crash.core.read_bytes()).hexdigest()
    assert rep_none.digest is None and rep_none.hash_algorithm is None
    assert rep_none.bytes_in == rep_hash.bytes_in == size
    assert not rep_none.truncated and rep_none.kept == rep_hash.kept
    a, prov_ref = _without_provenance(ref.getvalue())
    b, prov_none = _without_provenance(plain)
    c, prov_hash = _without_provenance(hashed)
    assert a == b == c
    assert prov_none["source"]["hash"] is None and prov_none["source"]["digest"] is None
    assert prov_hash["source"]["hash"] == "blake3"
    assert prov_hash["source"]["digest"] == rep_hash.digest
    # hashing reads every byte; without it only about what is kept is read (the rest spliced)
    assert read_hash >= size - (1 << 16)
    assert read_none < 4 * len(plain) + (2 << 20) and read_none * 8 < size


def test_hash_none_regular_file_stdin_seeks_over_the_gaps(cores) -> None:
    """``coripper - < CORE``: stdin is the file itself; the gaps are lseek'd over."""
    crash = cores.crash("heap64", [cores.programs.crasher(), "segv", "-m", "64"])
    size = crash.core.stat().st_size
    with open(crash.core, "rb") as src:
        ref = io.BytesIO()
        minimize_file(src, ref)
    for buffering in (0, -1):
        with open(crash.core, "rb", buffering=buffering) as src:
            before = _thread_rchar()
            out = io.BytesIO()
            report = minimize_stream(src, out, MinimizeOptions(hash_algorithm=None))
            read = _thread_rchar() - before
            assert src.tell() == size           # "drained": at EOF
        assert report.bytes_in == size and not report.truncated and report.digest is None
        assert _without_provenance(out.getvalue())[0] == _without_provenance(ref.getvalue())[0]
        assert read * 8 < size


@pytest.mark.parametrize("algorithm", [None, "sha256", "blake3"])
def test_truncated_pipe_with_and_without_hash(
        cores, algorithm: str | None) -> None:  # type: ignore[no-untyped-def]
    core = cores.standard("threads").core
    data = core.read_bytes()
    cut = len(data) * 2 // 3
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as out:
            out.write(data[:cut])

    t = threading.Thread(target=feed)
    t.start()
    with os.fdopen(r, "rb", buffering=0) as src:
        report = minimize_stream(src, io.BytesIO(), MinimizeOptions(hash_algorithm=algorithm))
    t.join()
    assert report.truncated and report.bytes_in == cut
    if algorithm == "sha256":
        assert report.digest == hashlib.sha256(data[:cut]).hexdigest()
    if algorithm == "blake3":
        assert report.digest == blake3.blake3(data[:cut]).hexdigest()
    assert report.hash_algorithm == algorithm


def test_hash_none_drains_after_a_format_error_and_bad_algorithm() -> None:
    for opts, exc in ((MinimizeOptions(hash_algorithm=None), CoreFormatError),
                      (MinimizeOptions(hash_algorithm="md5"), ValueError)):
        r, w = os.pipe()
        payload = b"NOTANELF" + bytes(3 << 20)
        t = threading.Thread(target=lambda w=w, payload=payload: os.fdopen(w, "wb").write(payload))
        t.start()
        with os.fdopen(r, "rb") as src:
            with pytest.raises(exc):
                minimize_stream(src, io.BytesIO(), opts)
            t.join(timeout=10)
            assert not t.is_alive()
            assert src.read() == b""


def test_input_pipe_is_enlarged() -> None:
    import fcntl
    from coripper.minimizer.stream import PIPE_SIZE_CAP, _grow_pipe
    with open("/proc/sys/fs/pipe-max-size") as f:
        want = min(int(f.read()), PIPE_SIZE_CAP)
    r, w = os.pipe()
    try:
        _grow_pipe(r)
        assert fcntl.fcntl(r, 1032) >= min(want, 1 << 20)      # F_GETPIPE_SZ
    finally:
        os.close(r)
        os.close(w)


def test_cli_hash_option(cores, tmp_path) -> None:  # type: ignore[no-untyped-def]
    core = cores.standard("threads").core
    data = core.read_bytes()
    digests = {"sha256": hashlib.sha256(data).hexdigest(), "blake3": blake3.blake3(data).hexdigest()}
    for choice, expect in (("none", None), ("sha256", "sha256"), ("blake3", "blake3"),
                           (None, "blake3")):
        out = tmp_path / f"out-{choice}"
        option = ["--hash", choice] if choice else []
        with open(core, "rb") as src:
            proc = subprocess.run([sys.executable, "-m", "coripper.cli", *option,
                                   "-", "-o", str(out)], stdin=src, capture_output=True)
        assert proc.returncode == 0, proc.stderr
        _, prov = _without_provenance(out.read_bytes())
        assert prov["source"]["hash"] == expect
        assert prov["source"]["digest"] == (digests[expect] if expect else None)
    bad = subprocess.run([sys.executable, "-m", "coripper.cli", "--hash", "md5", "-"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert bad.returncode == 2 and "md5" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("kind", ["threads", "static"])
def test_a_minimized_core_reminimizes_alike_in_both_modes(cores, tmp_path, kind: str) -> None:  # type: ignore[no-untyped-def]
    """The output's phdr table is in front (as in the kernel's cores), so a minimized core can
    be read as a stream again (``zstdcat small.zst | coripper -``): file and pipe mode keep the
    same data, nothing more is dropped, and the new note names the first run's source."""
    core = cores.standard(kind).core
    small = tmp_path / "small.core"
    with open(core, "rb") as src, open(small, "wb") as dst:
        first = minimize_file(src, dst)
    data = small.read_bytes()
    assert parse_elf_header(data).e_phoff == 64
    again = io.BytesIO()
    with open(small, "rb") as src:
        file_report = minimize_file(src, again)
    piped, pipe_report = _via_pipe(small)
    a, prov_file = _without_provenance(again.getvalue())
    b, prov_pipe = _without_provenance(piped)
    assert a == b
    assert file_report.kept == pipe_report.kept

    def real(kept):  # type: ignore[no-untyped-def]
        # the synthesized link_map moves: the first run's copy occupies its old address
        return [k for k in kept if k[2] != "synthetic link_map"]
    assert real(file_report.kept) == real(first.kept)     # the second run drops nothing
    assert not file_report.warnings and not pipe_report.warnings
    _, prov_first = _without_provenance(data)
    assert prov_file["source"]["minimized_from"] == prov_first["source"]
    assert prov_pipe["source"]["minimized_from"] == prov_first["source"]
    assert prov_first["source"]["minimized_from"] is None
