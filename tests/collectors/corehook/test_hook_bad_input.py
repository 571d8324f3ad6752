"""The hook run by hand (as the kernel would: empty environment, argv from the pattern) on
hostile input: garbage and truncated cores, a vanished PID, a full disk, a stalled pipe.
Each must exit 0, log one line, and leave no ``*.new`` directory behind."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from testlib import require_core_pattern
from hookenv import HookEnv, element

from reporter.dumpdir import iter_problem_dirs


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
            core_limit, "1", os.uname().nodename, "crasher-pie"]


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


@pytest.mark.slow
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


# ------------------------------------------------------------------ unreadable /proc entries


def test_unreadable_proc_entries_are_recorded_and_logged(hook, programs):  # type: ignore[no-untyped-def]
    # The hook confined without capabilities (as a CapabilityBoundingSet= sandbox would)
    # cannot read a process of another user: exe, environ, maps, fd, ns/* fail with EACCES
    # while status and cmdline stay readable. A real unreadable /proc, no fake root.
    if not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("needs setpriv (util-linux)")
    victim = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               str(programs.crasher()), "sleep"], stdout=subprocess.PIPE)
    try:
        assert victim.stdout is not None and b"ready" in victim.stdout.readline()
        argv = hook_argv(victim.pid)
        argv[4] = argv[5] = "65534"
        result = subprocess.run(["/usr/bin/setpriv", "--bounding-set=-all", str(hook.launcher), *argv],
                                input=b"not a core", env={}, capture_output=True, timeout=60)
    finally:
        victim.kill()
        victim.wait()
    assert result.returncode == 0 and result.stderr == b""
    [d] = hook.dirs()
    assert hook.leftovers() == []
    errors = element(d, "proc_error").splitlines()
    for name in ("environ", "exe", "maps", "fd", "ns/pid"):
        assert f"/proc/{victim.pid}/{name}: Permission denied" in errors, errors
    assert not (d / "environ").exists() and not (d / "maps").exists() and not (d / "executable").exists()
    assert element(d, "cmdline").endswith(" sleep")  # readable without privileges
    assert "pid : unknown" in element(d, "namespaces")
    assert element(d, "reason") == "crasher-pie killed by SIGSEGV"
    assert "not a usable core" in element(d, "coredump_error")
    [why] = [line for line in hook.log_text().splitlines() if "could not read" in line]
    assert "environ" in why and "Permission denied" in why


# ------------------------------------------------------------------ planted symlinks


def test_symlink_planted_as_the_new_directory_name(hook, sleeper, cores):  # type: ignore[no-untyped-def]
    core = cores.standard("segv").core
    assert core is not None
    victim = hook.base / "victim"
    victim.mkdir()
    argv = hook_argv(sleeper.pid)
    name = "ccpp-" + time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(int(argv[7]))) + f"-{sleeper.pid}"
    (hook.spool / f"{name}.new").symlink_to(victim)
    result = hook.run_hook(argv, core.read_bytes())
    assert result.returncode == 0
    assert os.listdir(victim) == []
    [d] = hook.dirs()
    assert d.name == name and not d.is_symlink()
    assert (hook.spool / f"{name}.new").is_symlink()  # not ours: left as it was
    assert hook.leftovers() == [f"{name}.new"]


def _first_capture(hook, sleeper, cores) -> tuple[list[str], bytes, Path]:  # type: ignore[no-untyped-def]
    core = cores.standard("segv").core
    assert core is not None
    data = core.read_bytes()
    argv = hook_argv(sleeper.pid)
    assert hook.run_hook(argv, data).returncode == 0
    [d] = hook.dirs()
    return argv, data, d


@pytest.mark.parametrize("planted", ["count", "last_occurrence"])
def test_duplicate_path_does_not_follow_a_planted_element_symlink(hook, sleeper, cores, planted):  # type: ignore[no-untyped-def]
    argv, data, d = _first_capture(hook, sleeper, cores)
    victim = hook.base / "victim"
    victim.write_text("untouched")
    before = element(d, planted)
    (d / planted).unlink()
    (d / planted).symlink_to(victim)
    result = hook.run_hook(argv, data)
    assert result.returncode == 0 and result.stderr == b""
    assert victim.read_text() == "untouched"
    assert hook.leftovers() == []
    # Counted (the link was replaced, never written through) or, where the element could
    # not be read, saved as a directory of its own: the crash is never lost.
    dirs = hook.dirs()
    if len(dirs) == 1:
        assert not (d / planted).is_symlink()
        assert int(element(d, "count")) >= 1 and int(element(d, "last_occurrence")) >= int(before)
    else:
        assert len(dirs) == 2 and "saving separately" in hook.log_text()
        # The broken directory does not defeat deduplication: the next copy counts.
        assert hook.run_hook(argv, data).returncode == 0
        assert len(hook.dirs()) == 2
        assert sorted(element(x, "count") for x in hook.dirs() if x != d) == ["2"]


def test_planted_lock_symlink_is_not_followed(hook, sleeper, cores):  # type: ignore[no-untyped-def]
    argv, data, d = _first_capture(hook, sleeper, cores)
    victim = hook.base / "victim"
    victim.write_text("untouched")
    (d / ".lock").symlink_to(victim)  # not a pid: a stale lock by libreport's rules
    result = hook.run_hook(argv, data)
    assert result.returncode == 0
    assert victim.read_text() == "untouched"
    assert hook.dirs() == [d] and element(d, "count") == "2"
    assert not (d / ".lock").exists() and not (d / ".lock").is_symlink()


def test_duplicate_locked_by_a_live_process_is_saved_separately(hook, sleeper, cores, monkeypatch):  # type: ignore[no-untyped-def]
    # abrtd may hold a directory's lock for minutes while it runs an event: the crash is kept
    # in a directory of its own instead of waiting or being lost. In-process, with a short
    # lock wait (the hook waits 10 s).
    from collectors.corehook import capture, dedup, hooklog
    from collectors.corehook.args import parse_args
    from collectors.corehook.config import load_config

    argv, data, d = _first_capture(hook, sleeper, cores)
    (d / ".lock").symlink_to(str(sleeper.pid))  # a live holder
    monkeypatch.setattr(dedup, "BUMP_TIMEOUT", 0.5)
    cfg = load_config(hook.paths.hook_config)
    hooklog.setup(cfg.log_file, use_syslog=False)
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    try:
        outcome = capture.capture(parse_args(argv), cfg, stdin_fd=r, spawn_postprocess=False)
    finally:
        writer.join()
        os.close(r)
    assert outcome.action == "saved"
    assert len(hook.dirs()) == 2 and element(d, "count") == "1"
    assert "saving separately" in hook.log_text()


def test_full_disk_through_the_kernel_still_counts_known_crashes(hook, programs):  # type: ignore[no-untyped-def]
    require_core_pattern()
    small = hook.base / "small"
    small.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k,mode=0700", "tmpfs", str(small)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        crasher = hook.program(programs.crasher(), "crasher")
        hook.configure(spool=str(small))
        hook.crash([crasher, "segv"])
        [d] = [Path(p) for p in iter_problem_dirs(str(small))]
        fd = os.open(small / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        hook.crash([crasher, "segv"])   # known: counted in a few bytes
        hook.crash([crasher, "abort"])  # new: no room, dropped with a reason
        assert [Path(p) for p in iter_problem_dirs(str(small))] == [d]
        assert element(d, "count") == "2"
        assert not [n for n in os.listdir(small) if n.endswith(".new")]
        log = hook.log_text()
        assert "(count 2; no space left in" in log, log
        assert "SIGABRT - ignoring (no space left in" in log, log
        assert "Traceback" not in log
    finally:
        subprocess.run(["umount", str(small)], check=False)
