"""The minimizer and the unwinder on the checked-in cores (tests/programs/cores/): no root, no
kernel, no gdb needed, so a contributor runs these as a normal user.

Oracle: gdb's frames, stored beside each core when it was made (tests/programs/make_core.py
ran tests/coripper/data/gdb_frames.py). Every thread's frames, inline and tail-call frames
included, must have gdb's pc and kind; names must denote the same function (equal, or two ELF
symbols at one address of the stored program, as ``readelf -sW`` lists them: gdb names
``__libc_start_main_impl`` what the symbol table also calls ``__libc_start_main``).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from stored_cores import INLINE_FRAME, PROGRAM_OF, TAILCALL_FRAME, StoredCore, StoredCores
from stored_cores import stored_cores  # noqa: F401 - the fixture
from test_unwind import _readelf_addresses

from coripper.unwinder.backtrace import CoreBacktrace, core_backtrace
from coripper.minimizer.stream import minimize_file, minimize_stream

NAMES = sorted(PROGRAM_OF)


def _kind(frame) -> str:  # type: ignore[no-untyped-def]
    return "inline" if frame.inlined else "tail-call" if frame.tail_call else "physical"


def _gdb_kind(ftype: int) -> str:
    return {INLINE_FRAME: "inline", TAILCALL_FRAME: "tail-call"}.get(ftype, "physical")


def _same_function(gdb_name: str | None, ours: str | None, symbols: dict[str, set[int]]) -> bool:
    if gdb_name == ours:
        return True
    if gdb_name is None or ours is None:
        return False
    return bool(symbols.get(gdb_name, set()) & symbols.get(ours, set()))


def assert_matches_stored_gdb(bt: CoreBacktrace, stored: StoredCore) -> int:
    """The rule of the module docstring, for every thread; returns the frames compared."""
    if shutil.which("readelf") is None:
        pytest.skip("needs binutils' readelf")
    symbols = _readelf_addresses(str(stored.program))
    assert sorted(t.tid for t in bt.threads) == sorted(stored.gdb)
    compared = 0
    for thread in bt.threads:
        got = [(f.address, _kind(f), f.function_name) for f in thread.all_frames()]
        want = [(pc, _gdb_kind(t), name) for t, pc, name in stored.gdb[thread.tid]]
        assert [g[:2] for g in got] == [w[:2] for w in want], f"thread {thread.tid}"
        for (_pc, _k, ours), (pc, _k2, name) in zip(got, want, strict=True):
            assert _same_function(name, ours, symbols), (thread.tid, hex(pc), ours, name)
            compared += 1
    return compared


@pytest.fixture(params=NAMES)
def stored(request: pytest.FixtureRequest, stored_cores: StoredCores) -> StoredCore:  # noqa: F811
    return stored_cores.get(request.param)


def test_backtrace_matches_gdb(stored: StoredCore) -> None:
    bt = core_backtrace(stored.core, executable=str(stored.program))
    assert assert_matches_stored_gdb(bt, stored) >= 5
    assert bt.threads[0].crash_thread and bt.crash_tid == stored.gdb_tids[0]
    assert all(t.stop_reason == "outermost" for t in bt.threads)
    assert bt.signal == (6 if "abort" in stored.name else 11)


def test_minimized_in_both_modes_unwinds_the_same(stored: StoredCore) -> None:
    original = core_backtrace(stored.core, executable=str(stored.program))
    with open(stored.core, "rb") as src:
        data = src.read()
    small_file, small_stream = io.BytesIO(), io.BytesIO()
    with open(stored.core, "rb") as src:
        report_file = minimize_file(src, small_file)
    report_stream = minimize_stream(io.BytesIO(data), small_stream)
    assert report_file.kept == report_stream.kept and not report_file.truncated
    assert [t.tid for t in report_file.threads] == list(stored.gdb_tids)
    for small in (small_file, small_stream):
        assert 0 < len(small.getvalue()) < len(data)
        small.seek(0)
        bt = core_backtrace(small, executable=str(stored.program))
        assert bt.to_json() == original.to_json() and bt.duphash() == original.duphash()


def _coripper(*args: str, stdin=None) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    return subprocess.run([sys.executable, "-m", "coripper.cli", *args], capture_output=True,
                          stdin=stdin, timeout=120, check=False)


def test_cli_file_stdin_and_info(stored_cores: StoredCores, tmp_path: Path) -> None:  # noqa: F811
    stored = stored_cores.get("static-segv-threads")
    out = tmp_path / "min.core"
    r = _coripper(str(stored.core), "-o", str(out))
    assert r.returncode == 0, r.stderr
    with open(stored.core, "rb") as f:
        piped = _coripper("-", stdin=f)
    assert piped.returncode == 0 and piped.stdout[:4] == b"\x7fELF"
    info = _coripper("--info", "--json", str(stored.core))
    assert info.returncode == 0, info.stderr
    doc = json.loads(info.stdout)
    assert [t["tid"] for t in doc["threads"]] == list(stored.gdb_tids)
    assert doc["threads"][0]["signal"] == 11
    assert [m["path"] for m in doc["modules"]][:1] == [stored.argv[0]]
    assert 0 < doc["bytes_out"] < doc["bytes_in"] == stored.core.stat().st_size
