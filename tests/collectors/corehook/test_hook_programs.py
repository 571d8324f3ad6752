"""The issue's program list through the kernel with the hook installed: abort(), a
multi-threaded crash, deep recursion, a static binary; and the ``keep``/``compress`` settings.

Oracles: gdb (on the saved core, on a full core of the same crash, with the executable), the
``zstd`` CLI, and the kernel's own core file of the same program run with the same argv,
environment and address-space layout (ASLR off on both sides) for the full core's size.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from testlib import crash_through_kernel, python_exe, run_until_crash_with_pattern
from hookenv import HookEnv, crasher_fixture, element, hook_fixture  # noqa: F401 - fixtures crasher, hook

pytestmark = pytest.mark.root

SEGV_FRAMES = ["crash_write_null", "crash_level2", "crash_level1", "main"]
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def gdb(executable: Path, core: Path, command: str = "bt") -> str:
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set width 0", "-ex", command,
                          str(executable), str(core)], capture_output=True, text=True, timeout=120)
    return out.stdout


def functions(bt: str) -> list[str]:
    """Function names of one gdb backtrace, frame order (``??`` where gdb has none). gdb
    prints frame #0 once when it loads the core: only the last ``#0`` starts the backtrace."""
    starts = [m.start() for m in re.finditer(r"^#0 ", bt, re.M)]
    bt = bt[starts[-1]:] if starts else bt
    return [m.group(1) for m in re.finditer(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", bt, re.M)]


def threads(text: str) -> list[list[str]]:
    """``thread apply all bt`` output as one function-name list per thread."""
    blocks = re.split(r"^Thread \d+ \(", text, flags=re.M)[1:]
    return [functions(block) for block in blocks]


def only_dir(hook: HookEnv) -> Path:
    [d] = hook.dirs()
    assert hook.leftovers() == []
    return d


def test_abort_is_sigabrt_with_backtrace_through_libc(hook, crasher):  # type: ignore[no-untyped-def]
    hook.crash([crasher, "abort", "-t", "2"])
    d = only_dir(hook)
    assert element(d, "reason") == "crasher killed by SIGABRT"
    assert element(d, "signal") == "6"
    names = functions(gdb(crasher, d / "coredump"))
    # glibc's abort() is __GI_abort to gdb; raise() and pthread_kill() below it.
    assert any(n.endswith("abort") for n in names) and names[-1] == "main", names
    assert any(n.endswith("raise") for n in names), names


def tee_crash(hook: HookEnv, argv: list, copy: Path, env: dict | None = None) -> None:  # type: ignore[type-arg]
    """Crash *argv* through the kernel into a wrapper that tees the piped core into *copy*
    and hands the same bytes to the hook: the full core of the very crash the hook saw."""
    wrapper = hook.state / "tee-hook"
    wrapper.write_text(f"#!/bin/sh\n/usr/bin/tee {copy} | exec {hook.launcher} \"$@\"\n")
    wrapper.chmod(0o755)
    pattern = hook.pattern.replace(str(hook.launcher), str(wrapper), 1)
    before = len(hook.final_lines())
    run_until_crash_with_pattern(argv, pattern, pipe_limit=16, env=env)
    hook.wait_final(before + 1)


def test_threads_minimized_core_matches_full_core_in_gdb(hook, crasher, tmp_path):  # type: ignore[no-untyped-def]
    full = tmp_path / "full.core"
    tee_crash(hook, [crasher, "segv", "-t", "9"], full)
    d = only_dir(hook)
    assert full.stat().st_size > 4 * (d / "coredump").stat().st_size
    mine = threads(gdb(crasher, d / "coredump", "thread apply all bt"))
    theirs = threads(gdb(crasher, full, "thread apply all bt"))
    assert len(mine) == 10, mine
    assert mine == theirs
    assert [t[:4] for t in mine if t[0] == "crash_write_null"] == [SEGV_FRAMES]
    workers = [t for t in mine if "worker_main" in t]
    assert len(workers) == 9 and all(t[-2:] == ["start_thread", "clone3"] for t in workers), workers
    assert all("??" not in t for t in mine), mine


def test_deep_recursion_gives_the_whole_stack(hook, crasher):  # type: ignore[no-untyped-def]
    hook.crash([crasher, "recurse", "-d", "200"])
    d = only_dir(hook)
    names = functions(gdb(crasher, d / "coredump", "bt -frame-info short-location"))
    assert names[0] == "crash_write_null"
    assert names.count("recurse_then_crash") == 201, names.count("recurse_then_crash")
    assert names[-1] == "main", names[-3:]
    assert len(names) == 203


def test_static_binary(hook, programs):  # type: ignore[no-untyped-def]
    static = hook.program(programs.crasher("static"), "scrasher")
    hook.crash([static, "segv", "-t", "2"])
    d = only_dir(hook)
    assert element(d, "reason") == "scrasher killed by SIGSEGV"
    assert "ld-linux" not in element(d, "maps")
    all_threads = threads(gdb(static, d / "coredump", "thread apply all bt"))
    assert len(all_threads) == 3
    assert [t[:4] for t in all_threads if t[0] == "crash_write_null"] == [SEGV_FRAMES]


def test_keep_full_saves_the_whole_core(hook, crasher, tmp_path):  # type: ignore[no-untyped-def]
    hook.configure(keep="full")
    full = tmp_path / "full.core"
    tee_crash(hook, [crasher, "segv", "-t", "3"], full)
    d = only_dir(hook)
    assert not (d / "coredump.zst").exists()
    # Exactly the bytes the kernel piped (the tee'd copy of the same crash).
    assert (d / "coredump").stat().st_size == full.stat().st_size
    assert subprocess.run(["cmp", "-s", str(d / "coredump"), str(full)]).returncode == 0
    assert functions(gdb(crasher, d / "coredump"))[:4] == SEGV_FRAMES


def test_full_core_through_the_pipe_is_the_size_of_the_kernels_core_file(hook, crasher, tmp_path):  # type: ignore[no-untyped-def]
    # ASLR off on both sides (setarch -R), same argv and environment: the kernel's own core
    # file of that run has the size of the core piped to the hook (holes written as zeros).
    argv = ["setarch", os.uname().machine, "-R", str(crasher), "segv"]
    hook.configure(keep="full")
    hook.crash(argv, env=ENV)
    d = only_dir(hook)
    reference = crash_through_kernel(argv, tmp_path / "kernel", env=ENV)
    assert reference.core is not None
    assert (d / "coredump").stat().st_size == reference.core.stat().st_size


def test_keep_none_writes_everything_but_the_core(hook, crasher):  # type: ignore[no-untyped-def]
    hook.crash([crasher, "segv"])
    with_core = only_dir(hook)
    expected = set(os.listdir(with_core)) - {"coredump", ".lock"}
    other = HookEnv()
    try:
        other.program(crasher, "crasher")
        other.configure(keep="none")
        other.crash([other.bin / "crasher", "segv"])
        d = only_dir(other)
        names = set(os.listdir(d)) - {".lock"}
        assert not any(n.startswith("coredump") for n in names), names
        assert names == expected - {"coredump_error"}
        assert element(d, "reason") == "crasher killed by SIGSEGV"
        # The core was still analysed: the same crash is counted, not saved twice.
        other.crash([other.bin / "crasher", "segv"])
        assert [element(x, "count") for x in other.dirs()] == ["2"]
    finally:
        other.cleanup()


def test_zstd_core_decompresses_and_unwinds(hook, crasher, tmp_path):  # type: ignore[no-untyped-def]
    hook.configure(compress="zstd")
    hook.crash([crasher, "segv", "-t", "2"])
    d = only_dir(hook)
    assert not (d / "coredump").exists()
    assert (d / "coredump.zst").read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
    plain = tmp_path / "core"
    subprocess.run(["zstd", "-q", "-d", "-o", str(plain), str(d / "coredump.zst")], check=True)
    assert plain.read_bytes()[:4] == b"\x7fELF"
    assert functions(gdb(crasher, plain))[:4] == SEGV_FRAMES
    r = subprocess.run([python_exe(), "-m", "collectors.cli", "backtrace", "--json", str(d)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["crash_function"] == "crash_write_null"
    # Post-processing reads the compressed core too.
    hook.configure(compress="zstd", postprocess=True)
    d2 = hook.program(crasher, "crasher2")
    hook.crash([d2, "segv"])
    [saved] = [x for x in hook.dirs() if element(x, "executable") == str(d2)]
    hook.wait_element(saved, "crash_function")
    assert element(saved, "crash_function") == "crash_write_null"
