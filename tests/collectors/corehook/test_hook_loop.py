"""A program in a tight crash loop (the issue: "a program crashing 100 times a minute
produces one directory with its count, not 100"), crashed through the kernel as fast as the
kernel lets it: each crash starts as soon as the previous process is reaped, i.e. while the
previous hook may still be committing. Duplicate detection and the crash-loop limit together
must fold all of them into one directory whose ``count`` is exactly the number of crashes."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from testlib import core_pattern, require_core_pattern, wait_for
from hookenv import HookEnv, element

pytestmark = pytest.mark.root

# No libc, no threads: the core is a few pages, so the loop measures the hook, not the dump.
TINY_C = """/* tiny: written for crashkit's crash-loop test; dies of SIGSEGV at once. */
void _start(void) { *(volatile int *)0 = 0; for (;;) ; }
"""
CRASHES = 100


@pytest.fixture
def hook():  # type: ignore[no-untyped-def]
    require_core_pattern()
    env = HookEnv()
    yield env
    env.cleanup()


@pytest.mark.slow
def test_hundred_crashes_in_a_loop_are_one_directory_with_count_100(hook):  # type: ignore[no-untyped-def]
    src = hook.base / "tiny.c"
    src.write_text(TINY_C)
    tiny = hook.bin / "tiny"
    subprocess.run(["gcc", "-O1", "-static", "-nostdlib", "-fno-pie", "-no-pie", "-o", str(tiny),
                    str(src)], check=True, capture_output=True)
    hook.configure(crash_loop_limit=5, crash_loop_window=60)
    loop = f"ulimit -c unlimited; i=0; while [ $i -lt {CRASHES} ]; do {tiny}; i=$((i+1)); done; exit 0"
    started = time.monotonic()
    with core_pattern(hook.pattern, pipe_limit=16):
        subprocess.run(["sh", "-c", loop], check=True, capture_output=True, timeout=120)
        # Other processes crashing meanwhile would also reach our hook: look at tiny's only.
        mine = lambda: [d for d in hook.dirs() if element(d, "executable") == str(tiny)]  # noqa: E731
        wait_for(lambda: sum(int(element(d, "count")) for d in mine()) >= CRASHES, timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"{CRASHES} crashes took {elapsed:.1f} s"
    time.sleep(0.2)  # a straggler would bump the count further: it must not
    [d] = mine()
    assert hook.leftovers() == []
    assert element(d, "count") == str(CRASHES), hook.log_text()
    assert int(element(d, "last_occurrence")) >= int(element(d, "time"))
    log = hook.log_text()
    assert log.count("saved /") == 1
    assert log.count("error") == 0, log


def test_simultaneous_hooks_of_one_crash_commit_one_directory(hook, programs, cores):  # type: ignore[no-untyped-def]
    # Eight workers of one service hitting the same bug at once: eight hooks run side by
    # side (by hand, as the kernel starts them: empty environment, same argv shape). The
    # duplicate look-up and the commit are one step under the spool lock, so exactly one
    # directory is committed and it counts all eight.
    hook.configure(crash_loop_limit=0)
    core = cores.standard("segv").core
    assert core is not None
    data = core.read_bytes()
    sleeper = subprocess.Popen([str(programs.crasher()), "sleep"], stdout=subprocess.PIPE)
    try:
        assert sleeper.stdout is not None and b"ready" in sleeper.stdout.readline()
        pid = str(sleeper.pid)
        argv = [pid, pid, pid, pid, "0", "0", "11", str(int(time.time())), "18446744073709551615",
                "1", "h", "crasher-pie"]
        procs = [subprocess.Popen([str(hook.launcher), *argv], stdin=subprocess.PIPE, env={})
                 for _ in range(8)]
        for proc in procs:  # every hook is started (and past its imports) before any gets a core
            assert proc.stdin is not None
        time.sleep(0.3)
        writers = [threading.Thread(target=proc.communicate, args=(data,)) for proc in procs]
        for w in writers:
            w.start()
        for w in writers:
            w.join(timeout=60)
        assert all(proc.wait(timeout=60) == 0 for proc in procs)
    finally:
        sleeper.kill()
        sleeper.wait()
    [d] = hook.dirs()
    assert element(d, "count") == "8", hook.log_text()
    assert hook.leftovers() == []
