"""The hook's detached post-processing, through the kernel: ``core_backtrace`` (satyr JSON),
``crash_function`` and ``duphash``, and the second duplicate check by duphash.

Oracles: gdb on the same saved core (function names), ``eu-readelf -n`` (build-id), the
executable's path, and the kernel's signal.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from testlib import require_core_pattern, wait_for
from hookenv import HookEnv, element

pytestmark = pytest.mark.root

SEGV_FRAMES = ["crash_write_null", "crash_level2", "crash_level1", "main"]
# satyr's frame keys plus ours: inline/tail-call frames ride along under "synthetic_frames"
# (docs/backtrace.md; satyr ignores unknown keys). A worker thread caught inside
# pthread_barrier_wait's inlined futex helpers has them.
FRAME_KEYS = {"address", "build_id", "build_id_offset", "function_name", "file_name", "fingerprint",
              "synthetic_frames"}

# One bug, two signals: the same store in touch() faults with SIGSEGV on NULL and with SIGBUS
# on a shared mapping of an empty file. abrt's duphash has no signal in it, our pre-backtrace
# crash signature has; post-processing must merge the two directories.
SEGV_OR_BUS_C = r"""/* segv_or_bus: written for crashkit's post-processing test. */
#include <fcntl.h>
#include <sys/mman.h>
__attribute__((noinline)) void touch(volatile char *p) { *p = 1; __asm__ volatile(""); }
__attribute__((noinline)) void work(volatile char *p) { touch(p); __asm__ volatile(""); }
int main(int argc, char **argv) {
    volatile char *p = 0;
    if (argc > 1) {
        int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0600);
        p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    work(p);
    return 0;
}
"""


@pytest.fixture
def hook():  # type: ignore[no-untyped-def]
    require_core_pattern()
    env = HookEnv()
    env.configure(postprocess=True)
    yield env
    env.cleanup()


def build_id(path: Path) -> str:
    out = subprocess.run(["eu-readelf", "-n", str(path)], capture_output=True, text=True, check=True)
    m = re.search(r"Build ID: ([0-9a-f]+)", out.stdout)
    assert m, out.stdout
    return m.group(1)


def gdb_functions(executable: Path, core: Path) -> list[str]:
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", "bt", str(executable), str(core)],
                         capture_output=True, text=True, timeout=120).stdout
    out = out[[m.start() for m in re.finditer(r"^#0 ", out, re.M)][-1]:]
    return re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", out, re.M)


def postprocessed(hook: HookEnv, d: Path) -> Path:
    hook.wait_element(d, "crash_signature_duphash", timeout=90)
    return d


def test_core_backtrace_is_satyr_json_that_matches_gdb(hook, programs):  # type: ignore[no-untyped-def]
    crasher = hook.program(programs.crasher(), "crasher")
    hook.crash([crasher, "segv", "-t", "2"])
    [d] = hook.dirs()
    postprocessed(hook, d)
    assert element(d, "crash_function") == "crash_write_null"
    assert re.fullmatch(r"[0-9a-f]{40}", element(d, "duphash"))
    doc = json.loads(element(d, "core_backtrace"))
    assert set(doc) <= {"signal", "executable", "only_crash_thread", "stacktrace"}
    assert doc["signal"] == 11 and doc["executable"] == str(crasher)
    crash_threads = [t for t in doc["stacktrace"] if t.get("crash_thread")]
    assert len(crash_threads) == 1 and len(doc["stacktrace"]) == 3
    for thread in doc["stacktrace"]:
        assert set(thread) <= {"crash_thread", "frames"}
        for frame in thread["frames"]:
            assert set(frame) <= FRAME_KEYS and isinstance(frame["address"], int), frame
    frames = crash_threads[0]["frames"]
    gdb = gdb_functions(crasher, d / "coredump")
    assert [f.get("function_name") for f in frames[:4]] == gdb[:4] == SEGV_FRAMES
    exe_id = build_id(crasher)
    for f in frames[:4]:
        assert f["build_id"] == exe_id and f["file_name"] == str(crasher)
        assert 0 < f["build_id_offset"] < crasher.stat().st_size + (1 << 20)


def test_identical_crashes_have_the_same_duphash(hook, programs):  # type: ignore[no-untyped-def]
    # Two copies of one binary (same build-id): the same crash twice, under other ASLR
    # addresses. Different executables are different problems, so both directories stay.
    first = hook.program(programs.crasher(), "crasher")
    second = hook.program(programs.crasher(), "crasher-copy")
    hook.crash([first, "segv"])
    hook.crash([second, "segv"])
    dirs = hook.dirs()
    assert len(dirs) == 2
    for d in dirs:
        postprocessed(hook, d)
    assert element(dirs[0], "duphash") == element(dirs[1], "duphash")
    assert element(dirs[0], "crash_signature_duphash") != element(dirs[1], "crash_signature_duphash")
    assert len(hook.dirs()) == 2


def test_same_bug_different_signal_is_merged_by_duphash(hook, tmp_path):  # type: ignore[no-untyped-def]
    src = tmp_path / "segv_or_bus.c"
    src.write_text(SEGV_OR_BUS_C)
    exe = hook.bin / "segv_or_bus"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(exe), str(src)], check=True, capture_output=True)
    hook.crash([exe])
    [first] = hook.dirs()
    postprocessed(hook, first)
    hook.crash([exe, str(hook.base / "empty-file")])
    log = hook.log_text()
    assert log.count("saved /") == 2, log  # the hook's own key tells them apart
    assert "killed by SIGBUS" in log
    hook.wait_postprocessed(lambda: "is a duplicate of" in hook.log_text(), timeout=90)
    [kept] = hook.dirs()
    assert kept == first and element(kept, "signal") == "11"
    assert element(kept, "count") == "2"
    assert int(element(kept, "last_occurrence")) >= int(element(kept, "time"))
    assert element(kept, "crash_function") == "touch"
    assert hook.leftovers() == []
    # The crash-loop table now counts this program's next loop into the kept directory.
    # (read as the hook does not: without its lock, so a rewrite in progress reads empty)
    def loop_dirs() -> list[str]:
        try:
            rate = json.loads((hook.spool / ".crashkit-hook" / "rate.json").read_text())
        except ValueError:
            return []
        return [e["dir"] for k, e in rate.items() if k.endswith(f":{exe}")]

    assert wait_for(lambda: loop_dirs() == [kept.name], timeout=30), loop_dirs()
