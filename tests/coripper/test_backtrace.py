"""coripper.unwinder.backtrace: satyr's core_backtrace JSON (byte-exact on satyr's own fixtures), build-ids
checked against eu-unstrip, the duphash across ASLR runs, rootdir/build-id mismatch, and the
``crashkit backtrace`` command."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testlib import python_exe
from coripper.unwinder.backtrace import CoreBacktrace, backtrace_elements, core_backtrace

SATYR_DIR = "satyr-problem-dir"


# --- satyr's own fixtures ---------------------------------------------------------------------

@pytest.mark.parametrize("fixture", [f"{SATYR_DIR}/core_backtrace",
                                     "libreport-sample-problem/core_backtrace"])
def test_satyr_json_round_trips_byte_for_byte(fixtures_dir: Path, fixture: str) -> None:
    text = (fixtures_dir / fixture).read_text()
    assert CoreBacktrace.from_json(text).to_json() + "\n" == text


def test_unknown_keys_are_ignored(fixtures_dir: Path) -> None:
    bt = CoreBacktrace.from_json((fixtures_dir / "satyr-ureport" / "core-01").read_text())
    assert bt.signal == 6 and bt.executable == "/usr/bin/will_abort"
    crash = bt.crash_thread()
    assert crash is not None and crash.crash_thread and len(bt.threads) == 2
    assert [f.function_name for f in crash.frames] == ["raise", "abort", None, "__libc_start_main"]


def test_duphash_of_the_satyr_fixture_follows_the_spec(fixtures_dir: Path) -> None:
    """docs/formats/libreport.md §6.3: component + "Thread\\n" + per frame "<build_id>+0x<offset>",
    3 frames, SHA-1. Text written out by hand from the fixture's frames. The fixture directory
    has no duphash element to compare with; its uuid is abrt-action-analyze-c's hash (package +
    executable + eu-unstrip build-ids), a different algorithm, so it must differ."""
    d = fixtures_dir / SATYR_DIR
    bt = CoreBacktrace.from_json((d / "core_backtrace").read_text())
    component = (d / "component").read_text().strip()
    expected_text = (f"{component}Thread\n"
                     "fbac2849c88def5897d3d3c1cd5adab0bcc1aec2+0xcfa20\n"
                     "34b2e7fddf5ad18542382e4407c92a7c18eb6c9e+0x445f\n"
                     "34b2e7fddf5ad18542382e4407c92a7c18eb6c9e+0x42c0\n")
    assert bt.duphash_text(component) == expected_text
    assert bt.duphash(component) == hashlib.sha1(expected_text.encode()).hexdigest()
    assert not (d / "duphash").exists()
    assert bt.duphash(component) != (d / "uuid").read_text().strip()
    assert bt.crash_function() == "__nanosleep"


# --- real cores ---------------------------------------------------------------------------------

def _eu_unstrip(core: Path) -> dict[str, tuple[int, str]]:
    """{file: (start, build-id)} from ``eu-unstrip -n --core`` (an independent reader)."""
    out = subprocess.run(["eu-unstrip", "-n", "--core", str(core)], capture_output=True,
                         text=True, check=False).stdout
    mods = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and "@" in parts[1]:
            start = int(parts[0].split("+")[0], 16)
            bid = parts[1].split("@")[0]
            name = parts[2] if parts[2] not in (".", "-") else parts[-1]
            mods[os.path.realpath(name) if name.startswith("/") else name] = (start, bid)
    return mods


@pytest.mark.skipif(shutil.which("eu-unstrip") is None, reason="needs elfutils")
def test_frames_carry_eu_unstrip_build_ids_and_offsets(cores) -> None:  # type: ignore[no-untyped-def]
    crash = cores.standard("threads")
    bt = core_backtrace(crash.core)
    mods = _eu_unstrip(crash.core)
    doc = json.loads(bt.to_json())
    assert "only_crash_thread" not in doc                 # satyr writes the key only when true
    assert sum(1 for t in doc["stacktrace"] if t.get("crash_thread")) == 1
    assert doc["stacktrace"][0]["crash_thread"] is True
    assert len(doc["stacktrace"]) == 10 and doc["signal"] == 11
    assert doc["executable"] == str(crash.argv[0])
    checked = 0
    for thread in doc["stacktrace"]:
        for f in thread["frames"]:
            start, bid = mods[os.path.realpath(f["file_name"])]
            assert f["build_id"] == bid
            assert f["address"] - f["build_id_offset"] == start
            checked += 1
    assert checked >= 40


def _again(cores, kind: str, name: str):  # type: ignore[no-untyped-def]
    first = cores.standard(kind)
    return first, cores.crash(name, first.argv)


def test_same_crash_twice_same_duphash(cores) -> None:  # type: ignore[no-untyped-def]
    a, b = _again(cores, "segv", "segv-again-for-duphash")
    bta, btb = core_backtrace(a.core), core_backtrace(b.core)
    if Path("/proc/sys/kernel/randomize_va_space").read_text().strip() != "0":
        assert bta.threads[0].frames[0].address != btb.threads[0].frames[0].address
    assert bta.duphash() == btb.duphash()
    assert bta.duphash("crasher") == btb.duphash("crasher") != bta.duphash()
    assert bta.crash_function() == "crash_write_null"


def test_other_crash_site_other_duphash(cores) -> None:  # type: ignore[no-untyped-def]
    segv = core_backtrace(cores.standard("segv").core)
    fpe = core_backtrace(cores.standard("fpe").core)
    abort = core_backtrace(cores.standard("abort").core)
    assert len({segv.duphash(), fpe.duphash(), abort.duphash()}) == 3
    assert fpe.crash_function() == "divide"


def test_normalization_skips_the_abort_path(cores) -> None:  # type: ignore[no-untyped-def]
    abort = core_backtrace(cores.standard("abort").core)
    names = [f.function_name for f in abort.threads[0].frames]
    assert names[:3] == ["__pthread_kill_implementation", "raise", "abort"]
    assert abort.crash_function() == "main"
    throw = core_backtrace(cores.standard("throw").core)
    assert throw.crash_function() == "parse_config(int)"
    assert [f.function_name for f in throw.normalized_crash_frames()[:3]] == [
        "parse_config(int)", "load_settings(int)", "main"]


def test_build_id_mismatch_in_rootdir_is_not_used(cores, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    crash = cores.standard("segv")
    exe = Path(crash.argv[0])
    root = tmp_path / "root"
    other = root / exe.relative_to("/")
    other.parent.mkdir(parents=True)
    src = Path(__file__).resolve().parents[1] / "programs" / "crasher.c"
    subprocess.run(["gcc", "-O0", "-pthread", "-o", str(other), str(src)], check=True)
    bt = core_backtrace(crash.core, rootdir=str(root))
    assert any("mismatch" in w and str(exe) in w for w in bt.warnings)
    exe_frames = [f for f in bt.threads[0].frames if f.file_name == str(exe)]
    assert exe_frames and all(f.function_name is None for f in exe_frames)
    # The same program in the rootdir (same build-id) is used: names come back.
    shutil.copy(exe, other)
    good = core_backtrace(crash.core, rootdir=str(root))
    assert good.threads[0].frames[0].function_name == "crash_write_null"
    assert not any(str(exe) in w for w in good.warnings)


def test_backtrace_elements(cores) -> None:  # type: ignore[no-untyped-def]
    crash = cores.standard("abort")
    elements = backtrace_elements(str(crash.core), str(crash.argv[0]), "/", component="crasher")
    assert set(elements) == {"core_backtrace", "duphash", "crash_function"}
    assert elements["crash_function"] == "main"
    assert CoreBacktrace.from_json(elements["core_backtrace"]).duphash("crasher") == elements["duphash"]


# --- CLI ------------------------------------------------------------------------------------------

def _crashkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python_exe(), "-m", "collectors.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_cli_human_and_json(cores) -> None:  # type: ignore[no-untyped-def]
    crash = cores.standard("threads")
    human = _crashkit("backtrace", str(crash.core))
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0] == f"Thread {crash.pid} (crash thread)"
    assert "crash_write_null (crasher-pie+0x" in lines[1] and lines[1].startswith("#0 ")
    assert sum(1 for line in lines if line.startswith("Thread ")) == 10
    js = _crashkit("backtrace", "--json", str(crash.core))
    doc = json.loads(js.stdout)
    assert set(doc) == {"core_backtrace", "duphash", "crash_function"}
    assert doc["crash_function"] == "crash_write_null"
    assert doc["duphash"] == core_backtrace(crash.core).duphash()


def test_cli_problem_dir_with_zstd_core(cores, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    zstandard = pytest.importorskip("zstandard")
    crash = cores.standard("segv")
    d = tmp_path / "ccpp-2026-01-01-00:00:00-1"
    d.mkdir()
    (d / "coredump.zst").write_bytes(zstandard.ZstdCompressor().compress(crash.core.read_bytes()))
    (d / "executable").write_text(str(crash.argv[0]))
    before = sorted(os.listdir(d))
    res = _crashkit("backtrace", "--json", str(d))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["crash_function"] == "crash_write_null"
    assert sorted(os.listdir(d)) == before                # read-only on the problem dir


@pytest.mark.parametrize("make", ["missing", "not-elf", "empty-dir", "truncated"])
def test_cli_bad_input_is_one_line_exit_2(cores, tmp_path: Path, make: str) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "x"
    if make == "not-elf":
        target.write_text("hello\n")
    elif make == "empty-dir":
        target.mkdir()
    elif make == "truncated":
        target.write_bytes(cores.standard("segv").core.read_bytes()[:100])
    res = _crashkit("backtrace", str(target))
    # A name that matches no file and no problem is a match naming nothing (exit 1, as
    # crashkit list/info: docs/cli.md); anything unreadable as a core is bad input (exit 2).
    assert res.returncode == (1 if make == "missing" else 2), res.stderr
    assert res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_cli_help() -> None:
    res = _crashkit("backtrace", "--help")
    assert res.returncode == 0 and "--json" in res.stdout and "--rootdir" in res.stdout


@pytest.mark.slow
def test_truncated_cores_give_an_error_or_a_shorter_backtrace(cores, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Cut a real core at every segment start and inside the notes: a CoripperError (headers
    unusable) or a backtrace, never another exception."""
    from coripper.minimizer import elfcore
    from coripper.errors import CoripperError
    data = cores.standard("threads").core.read_bytes()
    header = elfcore.parse_elf_header(data[:64])
    phdrs = elfcore.parse_program_headers(data[header.e_phoff:], header.e_phnum)
    cuts = sorted({p.p_offset for p in phdrs} | {p.p_offset + 100 for p in phdrs
                                                  if p.p_type == elfcore.PT_NOTE} | {10, 70})
    outcomes = set()
    for cut in cuts:
        path = tmp_path / "cut.core"
        path.write_bytes(data[:cut])
        try:
            bt = core_backtrace(path)
        except CoripperError:
            outcomes.add("error")
            continue
        outcomes.add("backtrace")
        assert bt.to_json()
    assert outcomes == {"error", "backtrace"}
