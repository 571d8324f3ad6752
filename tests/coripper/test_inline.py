"""Inline and tail-call frames (coripper/unwinder/inline.py) against gdb, on real kernel cores.

The program (data/inline_crash.c) crashes inside three nested always_inline functions (their
code split into several ranges by a cold path, so DW_AT_ranges are used) or at the end of two
tail calls (``jmp`` at -O2). It is built as C with DWARF 5 (``.debug_rnglists``) and DWARF 4
(``.debug_ranges``), with compressed debug sections and no ``.debug_aranges``, as C++ (linkage
names, a namespace), and stripped with a separate debug file under a rootdir. Every thread's
frames, synthetic ones included, must equal gdb's (tests/coripper/test_unwind.py's rule).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_unwind import assert_matches_gdb, gdb_threads  # tests/coripper is on sys.path

from coripper.unwinder import inline
from coripper.unwinder.backtrace import CoreBacktrace, core_backtrace
from coripper.unwinder.modules import Module

DATA = Path(__file__).resolve().parent / "data"
SRC = DATA / "inline_crash.c"

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")

VARIANTS = {
    "c-dwarf5": ["gcc", "-g", "-gdwarf-5", "-O2"],
    "c-dwarf4": ["gcc", "-g", "-gdwarf-4", "-O2"],
    "c-gz-noaranges": ["gcc", "-g", "-O2", "-gz"],
    "cxx": ["g++", "-g", "-O2", "-x", "c++"],
}
# What the source says gdb must show (innermost first), by mode.
EXPECTED = {
    "inline": [("level3", True), ("level2", True), ("level1", True), ("crash_here", False),
               ("main", False)],
    "tail": [("tail_leaf", False), ("tail_mid", "tail"), ("tail_top", "tail"), ("main", False)],
}


def _build(tmp: Path, variant: str) -> Path:
    exe = tmp / f"inline_crash-{variant}"
    if not exe.exists():
        subprocess.run([*VARIANTS[variant], "-o", str(exe), str(SRC)], check=True)
        if variant == "c-gz-noaranges":
            subprocess.run(["objcopy", "--remove-section", ".debug_aranges", str(exe)], check=True)
    return exe


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inline-programs")


def _shape(bt: CoreBacktrace) -> list[tuple[str, object]]:
    out = []
    for f in bt.threads[0].all_frames():
        name = (f.function_name or "??").split("(")[0].removeprefix("deep::")
        out.append((name, True if f.inlined else "tail" if f.tail_call else False))
    return out


@pytest.mark.parametrize("mode", ["inline", "tail"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_frames_equal_gdb(cores, build_dir: Path, variant: str, mode: str) -> None:  # type: ignore[no-untyped-def]
    if variant == "cxx" and shutil.which("g++") is None:
        pytest.skip("needs g++")
    exe = _build(build_dir, variant)
    crash = cores.crash(f"inline-{variant}-{mode}", [exe, mode])
    assert crash.core is not None
    inline.clear_cache()
    bt = core_backtrace(crash.core)
    assert assert_matches_gdb(bt, gdb_threads(exe, crash.core)) >= 4
    assert _shape(bt)[:len(EXPECTED[mode])] == EXPECTED[mode]
    # The physical frames (satyr's) are what they were without inline support.
    assert [f.function_name.split("(")[0] for f in bt.threads[0].frames[:2]] == \
        (["crash_here", "main"] if mode == "inline" else ["tail_leaf", "main"])


def test_separate_debug_file_in_rootdir(cores, build_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A stripped program whose DWARF is only in <rootdir>/usr/lib/debug/.build-id/xx/yyyy.debug
    gets the same frames as gdb shows with the unstripped program."""
    full = _build(build_dir, "c-dwarf5")
    crash = cores.crash("inline-c-dwarf5-inline", [full, "inline"])
    root = tmp_path / "root"
    stripped = root / Path(full).relative_to("/")
    stripped.parent.mkdir(parents=True)
    bid = core_backtrace(crash.core).threads[0].frames[0].build_id
    assert bid
    debug = root / "usr/lib/debug/.build-id" / bid[:2] / f"{bid[2:]}.debug"
    debug.parent.mkdir(parents=True)
    subprocess.run(["objcopy", "--only-keep-debug", str(full), str(debug)], check=True)
    subprocess.run(["objcopy", "--strip-all", str(full), str(stripped)], check=True)
    inline.clear_cache()
    bt = core_backtrace(crash.core, rootdir=str(root))
    # The rootdir has no libc: compare the program's own frames (the first five) with gdb's.
    gdb = gdb_threads(full, crash.core)[crash.pid][:5]
    ours = bt.threads[0].all_frames()[:5]
    assert [(f.address, f.inlined) for f in ours] == [(pc, t == 2) for t, pc, _n in gdb]
    assert [f.function_name for f in ours] == [n for _t, _pc, n in gdb]
    assert _shape(bt)[:5] == EXPECTED["inline"]
    # Without the debug file: no DWARF, no inline frames (and the symbols of the stripped file).
    debug.unlink()
    inline.clear_cache()
    bare = core_backtrace(crash.core, rootdir=str(root))
    assert not any(f.synthetic for f in bare.threads[0].frames)


def test_json_keeps_satyr_frames_physical(cores, build_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Synthetic frames ride along in "synthetic_frames" (satyr ignores the key): satyr's
    "frames" list, the duphash and crash_function are those of the physical frames."""
    exe = _build(build_dir, "c-dwarf5")
    crash = cores.crash("inline-c-dwarf5-inline", [exe, "inline"])
    bt = core_backtrace(crash.core)
    text = bt.to_json()
    doc = json.loads(text)
    frames = doc["stacktrace"][0]["frames"]
    assert len(frames) == len(bt.threads[0].frames)
    assert [g["function_name"] for g in frames[0]["synthetic_frames"]] == ["level3", "level2",
                                                                          "level1"]
    assert all(g["inlined"] is True for g in frames[0]["synthetic_frames"])
    # What a reader that ignores our keys (satyr) sees:
    for t in doc["stacktrace"]:
        for f in t["frames"]:
            f.pop("synthetic_frames", None)
    plain = CoreBacktrace.from_json(json.dumps(doc))
    assert plain.duphash() == bt.duphash() and plain.crash_function() == bt.crash_function()
    assert bt.crash_function() == "crash_here"
    # Our own reader gets everything back, byte for byte.
    again = CoreBacktrace.from_json(text)
    assert again.to_json() == text
    assert [f.function_name for f in again.threads[0].all_frames()[:4]] == \
        ["level3", "level2", "level1", "crash_here"]


def test_human_output_marks_synthetic_frames(cores, build_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from testlib import python_exe
    exe = _build(build_dir, "c-dwarf5")
    crash = cores.crash("inline-c-dwarf5-tail", [exe, "tail"])
    out = subprocess.run([python_exe(), "-m", "collectors.cli", "backtrace", str(crash.core)],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()[1:5]
    assert "tail_leaf" in lines[0] and "[" not in lines[0]
    assert "tail_mid [tail call]" in lines[1] and "tail_top [tail call]" in lines[2]
    assert "main" in lines[3]


# --- hostile DWARF: never raises, never hangs --------------------------------------------------

def _module(path: str) -> Module:
    return Module(path, 0x1000, 0x100000, 0, None, path, None, "no-build-id")


@pytest.fixture(scope="module")
def dwarf_program(build_dir: Path) -> tuple[bytes, int, int]:
    """The C program's bytes, and the file range of its .debug_info."""
    from elftools.elf.elffile import ELFFile
    exe = _build(build_dir, "c-dwarf5")
    with open(exe, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".debug_info")
        return exe.read_bytes(), sec["sh_offset"], sec["sh_size"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1,
                      max_size=8), pc=st.integers(0, 0x3000))
def test_corrupt_debug_info_never_raises(dwarf_program, tmp_path: Path, edits, pc: int) -> None:  # type: ignore[no-untyped-def]
    data, off, size = dwarf_program
    buf = bytearray(data)
    for where, value in edits:
        buf[off + where % size] = value
    path = tmp_path / "corrupt"
    path.write_bytes(bytes(buf))
    inline.clear_cache()
    m = _module(str(path))
    names = inline.inline_names(m, pc)
    assert isinstance(names, tuple) and all(isinstance(n, str) for n in names)
    index = inline.index_for(m)
    if index is not None:
        index.call_site_target(pc)
        index.tail_call_sites(pc)
        index.function_entry(pc)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=2048))
def test_garbage_file_has_no_inline_info(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "garbage"
    path.write_bytes(b"\x7fELF\x02\x01\x01" + blob)
    inline.clear_cache()
    assert inline.inline_names(_module(str(path)), 0x1234) == ()


def test_missing_file_and_no_module() -> None:
    inline.clear_cache()
    assert inline.inline_names(None, 0x1000) == ()
    assert inline.inline_names(_module(os.devnull + "-absent"), 0x1000) == ()


# Inputs fuzz/fuzz_inline_dwarf.py found (crasher.c built -g, bytes of .debug_info mutated):
# pyelftools' NotImplementedError for a DW_AT_sibling in DW_FORM_sec_offset, and a DW_AT_high_pc
# in a block form. Bad input, so under CRASHKIT_STRICT too the answers are empty, not errors.
@pytest.mark.parametrize("name", ["fuzz-dwarf-sibling-form.elf", "fuzz-dwarf-high-pc-block.elf"])
def test_fuzzer_found_dwarf_gives_empty_answers(name: str) -> None:
    from elftools.elf.elffile import ELFFile
    with open(DATA / name, "rb") as f:
        dwarf = ELFFile(f).get_dwarf_info(relocate_dwarf_sections=False, follow_links=False)
    index = inline.DwarfIndex(dwarf)
    for pc in (0x1100, 0x1139, 0x1189, 0x1209, 0x1290):
        assert isinstance(index.inline_chain(pc), tuple)
        index.function_name(pc)
        index.call_site_target(pc)
        entry = index.function_entry(pc)
        if entry is not None:
            index.tail_call_sites(entry)
