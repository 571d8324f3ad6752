"""The hook run by hand (as the kernel would: empty environment, argv from the pattern) on
hostile input: garbage and truncated cores, a vanished PID, a full disk, a stalled pipe.
Each must exit 0, log one line, and leave no ``*.new`` directory behind."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from hookenv import HookEnv, element


@pytest.fixture
def hook():  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        pytest.skip("the hook checks that its spool is owned by root")
    env = HookEnv()
    yield env
    env.cleanup()


@pytest.fixture
def sleeper(programs):  # type: ignore[no-untyped-def]
    proc = subprocess.Popen([str(programs.crasher()), "sleep"], stdout=subprocess.PIPE)
    assert proc.stdout is not None and b"ready" in proc.stdout.readline()
    yield proc
    proc.kill()
    proc.wait()


def hook_argv(pid: int, signo: int = 11, core_limit: str = "18446744073709551615") -> list[str]:
    return [str(pid), str(pid), str(pid), str(pid), "0", "0", str(signo), str(int(time.time())),
            core_limit, os.uname().nodename, "1", "crasher-pie"]


def test_garbage_stdin_still_records_the_process(hook, sleeper):  # type: ignore[no-untyped-def]
    garbage = os.urandom(3 << 20)
    result = hook.run_hook(hook_argv(sleeper.pid), garbage)
    assert result.returncode == 0 and result.stderr == b""
    [d] = hook.dirs()
    assert hook.leftovers() == []
    assert not (d / "coredump").exists()
    assert "not a usable core" in element(d, "coredump_error")
    assert element(d, "executable") == os.path.realpath(f"/proc/{sleeper.pid}/exe")
    assert element(d, "cmdline").endswith(" sleep")
    assert element(d, "reason") == "crasher-pie killed by SIGSEGV"


def test_truncated_core_keeps_what_arrived(hook, sleeper, cores):  # type: ignore[no-untyped-def]
    core = cores.standard("segv").core
    assert core is not None
    data = core.read_bytes()
    result = hook.run_hook(hook_argv(sleeper.pid), data[: len(data) // 2])
    assert result.returncode == 0
    [d] = hook.dirs()
    assert hook.leftovers() == []
    assert "truncated" in element(d, "coredump_error")
    assert (d / "coredump").stat().st_size > 0
    assert (d / "coredump").read_bytes()[:4] == b"\x7fELF"


def test_pid_already_gone_writes_the_directory_from_argv(hook, cores):  # type: ignore[no-untyped-def]
    gone = subprocess.Popen(["true"])
    gone.wait()
    core = cores.standard("segv").core
    assert core is not None
    result = hook.run_hook(hook_argv(gone.pid), core.read_bytes())
    assert result.returncode == 0
    [d] = hook.dirs()
    assert element(d, "global_pid") == str(gone.pid)
    assert element(d, "reason") == "crasher-pie killed by SIGSEGV"
    assert "proc_error" in os.listdir(d) and not (d / "maps").exists()
    assert (d / "coredump").stat().st_size > 0


def test_full_disk_leaves_nothing_behind(hook, sleeper):  # type: ignore[no-untyped-def]
    small = hook.base / "small"
    small.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(small)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        hook.configure(spool=str(small), keep="full")
        core = os.urandom(1 << 20)  # more than fits
        result = hook.run_hook(hook_argv(sleeper.pid), b"\x7fELF" + core)
        assert result.returncode == 0
        assert os.listdir(small) in ([], [".crashkit-hook"])
        assert "No space left on device" in hook.log_text()
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_time_limit_gives_up_cleanly(hook, sleeper):  # type: ignore[no-untyped-def]
    hook.configure(time_limit=1)
    r, w = os.pipe()
    os.write(w, b"\x7fELF\x02\x01\x01" + b"\0" * 57)  # an ELF header start, then the pipe stalls
    closer = threading.Timer(4.0, os.close, (w,))
    closer.start()
    started = time.monotonic()
    try:
        result = hook.run_hook(hook_argv(sleeper.pid), r)
    finally:
        os.close(r)
        closer.join()
    assert result.returncode == 0
    assert 1.0 <= time.monotonic() - started < 30
    assert "time limit of 1 s" in hook.log_text()
    assert hook.dirs() == [] and hook.leftovers() == []


def test_bad_argv_is_logged_and_drained(hook):  # type: ignore[no-untyped-def]
    result = hook.run_hook(["not", "numbers"], b"x" * (2 << 20))
    assert result.returncode == 0
    assert "error: HookError: expected 12 arguments" in hook.log_text()
    assert hook.dirs() == []


def test_ignored_signal_is_drained_not_saved(hook, sleeper):  # type: ignore[no-untyped-def]
    result = hook.run_hook(hook_argv(sleeper.pid, signo=15), b"x" * 1000)
    assert result.returncode == 0
    assert hook.dirs() == []
    assert "ignoring (signal 15" in hook.log_text()
