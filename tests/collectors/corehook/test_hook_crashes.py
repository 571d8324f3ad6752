"""Real crashes through the kernel's core_pattern pipe into crashkit-hook.

Oracles: the process itself (pid, argv, environment, fds we planted), the host (uname,
/etc/os-release), gdb on the saved core, and the file system (modes, owners). Skips only
where core_pattern is not writable; where it is (root, CI), these must pass.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from testlib import core_pattern
from hookenv import crasher_fixture, element, hook_fixture  # noqa: F401 - fixtures crasher, hook

pytestmark = pytest.mark.root


def _as_nobody() -> None:
    os.setgroups([])
    os.setresgid(65534, 65534, 65534)
    os.setresuid(65534, 65534, 65534)


def test_segv_directory_element_by_element(hook, crasher):  # type: ignore[no-untyped-def]
    hook.configure(postprocess=True)
    planted = hook.base / "planted-fd.txt"
    planted.write_text("x")
    planted.chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "CK_DB_PASSWORD": "hunter2-secret-value", "CK_PLAIN": "visible value"}
    t0 = int(time.time())
    # sh opens fd 7 on the planted file and execs the crasher (same pid, crasher's argv).
    pid, sig = hook.crash(["/bin/sh", "-c", f"exec 7<{planted}; exec {crasher} segv"], env=env,
                          preexec=_as_nobody)
    t1 = int(time.time())
    assert sig == signal.SIGSEGV
    [d] = hook.dirs()
    assert hook.leftovers() == []
    assert d.name.startswith("ccpp-") and d.name.endswith(f"-{pid}")

    assert element(d, "type") == "CCpp"
    assert element(d, "analyzer") == "abrt-ccpp"
    assert element(d, "pid") == str(pid)
    assert element(d, "global_pid") == str(pid)
    assert element(d, "tid") == str(pid)  # crashes in the main thread
    assert element(d, "uid") == "65534"
    assert element(d, "executable") == str(crasher)
    assert element(d, "cmdline") == f"{crasher} segv"
    assert element(d, "reason") == "crasher killed by SIGSEGV"
    assert element(d, "signal") == str(int(signal.SIGSEGV))
    assert element(d, "pwd") == os.getcwd()
    assert t0 <= int(element(d, "time")) <= t1
    assert element(d, "last_occurrence") == element(d, "time")
    assert element(d, "count") == "1"
    uname = os.uname()
    assert element(d, "kernel") == uname.release
    assert element(d, "architecture") == uname.machine
    assert element(d, "hostname") == uname.nodename
    assert element(d, "os_info") == Path("/etc/os-release").read_text()

    environ = element(d, "environ").splitlines()
    assert "CK_DB_PASSWORD=<redacted>" in environ
    assert "'CK_PLAIN=visible value'" in environ  # libreport quotes the whole VAR=value string
    for name in os.listdir(d):
        if (d / name).is_file() and name != "coredump":  # the core is the process's memory
            assert b"hunter2-secret-value" not in (d / name).read_bytes(), name

    maps = element(d, "maps")
    assert str(crasher) in maps and "[stack]" in maps
    assert all(re.match(r"^[0-9a-f]+-[0-9a-f]+ [rwxsp-]{4} ", line) for line in maps.splitlines())
    fds = element(d, "open_fds")
    blocks = fds.split("\n\n")
    assert any(b.startswith(f"7:{planted}\npos:\t") for b in blocks), fds
    for block in blocks:
        assert re.match(r"^\d+:.+\npos:\t\d+\nflags:\t\d+\n", block), block
    assert re.fullmatch(r"(\w+ : (default|own|unknown)\n)+", element(d, "namespaces"))
    assert "pid : default" in element(d, "namespaces") and "mnt : default" in element(d, "namespaces")
    assert "Uid:\t65534\t65534\t65534\t65534" in element(d, "proc_pid_status")
    assert "Max core file size" in element(d, "limits")

    assert (d.stat().st_mode & 0o777) == 0o750
    for name in os.listdir(d):
        if (d / name).is_file():
            assert ((d / name).stat().st_mode & 0o777) == 0o640, name
    assert (d / ".libreport" / "owner").read_text() == "65534"

    # The saved (minimized) core still gives the full backtrace in gdb.
    assert (d / "coredump").stat().st_size > 0
    gdb = subprocess.run(["gdb", "-nx", "-batch", "-ex", "bt", str(crasher), str(d / "coredump")],
                         capture_output=True, text=True, timeout=120)
    frames = dict(re.findall(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\w+)", gdb.stdout, re.M))
    assert [frames.get(str(i)) for i in range(4)] == ["crash_write_null", "crash_level2", "crash_level1", "main"], gdb.stdout

    # Post-processing (detached) adds core_backtrace, duphash and crash_function.
    hook.wait_element(d, "crash_function")
    assert element(d, "crash_function") == "crash_write_null"
    assert re.fullmatch(r"[0-9a-f]{40}", element(d, "duphash"))


def test_same_crash_twice_is_one_directory_with_count_2(hook, crasher):  # type: ignore[no-untyped-def]
    hook.crash([crasher, "segv"])
    hook.crash([crasher, "segv"])
    [d] = hook.dirs()
    assert element(d, "count") == "2"
    assert int(element(d, "last_occurrence")) >= int(element(d, "time"))
    assert "duplicate of" in hook.log_text()
    # A different crash of the same program is a different problem.
    hook.crash([crasher, "abort"])
    assert len(hook.dirs()) == 2


@pytest.mark.slow
def test_crash_loop_limit_folds_the_loop_into_one_count(hook, crasher):  # type: ignore[no-untyped-def]
    hook.configure(crash_loop_limit=3, crash_loop_window=600)
    modes = ["segv", "abort", "fpe"]
    for i in range(30):
        hook.crash([crasher, modes[i % 3]])
    dirs = hook.dirs()
    # Three distinct crashes were captured before the limit; the other 27 only counted.
    assert len(dirs) == 3
    counts = sorted(int(element(d, "count")) for d in dirs)
    assert sum(counts) == 30 and counts[-1] == 28
    assert hook.log_text().count("crash loop") == 27


@pytest.mark.slow
def test_spool_cap_deletes_the_oldest_largest_directory(hook, crasher, programs):  # type: ignore[no-untyped-def]
    hook.configure(keep="full")
    hook.crash([crasher, "segv"])
    [first] = hook.dirs()
    size = sum(f.stat().st_size for f in first.iterdir() if f.is_file())
    other = hook.program(programs.crasher(), "crasher2")
    hook.configure(keep="full", max_spool_size=int(size * 1.5))
    time.sleep(1.1)  # make the first one older
    hook.crash([other, "segv"])
    dirs = hook.dirs()
    assert first not in dirs
    assert [element(d, "executable") for d in dirs] == [str(other)]
    assert "deleted" in hook.log_text()


def test_setuid_crash_is_saved_root_only(hook, programs):  # type: ignore[no-untyped-def]
    suid = hook.program(programs.crasher(), "suidcrasher", mode=0o4755)
    os.chown(suid, 0, 0)
    suid.chmod(0o4755)
    path = Path("/proc/sys/fs/suid_dumpable")
    with core_pattern(hook.pattern, pipe_limit=16):  # holds the lock while we change suid_dumpable
        old = path.read_text().strip()
        try:
            path.write_text("2")
            proc = subprocess.Popen([str(suid), "segv"], preexec_fn=lambda: (
                resource.setrlimit(resource.RLIMIT_CORE, (-1, -1)), _as_nobody()),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rc = proc.wait(timeout=60)
        finally:
            path.write_text(old)
        hook.wait_final(1)
    assert rc == -signal.SIGSEGV
    [d] = hook.dirs()
    assert (d.stat().st_mode & 0o777) == 0o700
    assert d.stat().st_uid == 0
    for f in d.iterdir():
        if f.is_file():
            assert (f.stat().st_mode & 0o777) == 0o600, f.name
            assert f.stat().st_uid == 0
    assert (d / ".libreport" / "owner").read_text() == "0"
    assert element(d, "uid") == "0"


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare (util-linux)")
def test_crash_in_new_pid_and_mount_namespace(hook, crasher):  # type: ignore[no-untyped-def]
    script = f"{crasher} segv; exit 0"
    hook.crash(["unshare", "--pid", "--mount", "--fork", "sh", "-c", script])
    [d] = hook.dirs()
    pid, global_pid = int(element(d, "pid")), int(element(d, "global_pid"))
    assert pid == 2 and global_pid != pid  # sh is 1 in the new namespace
    ns = element(d, "namespaces")
    assert "pid : own" in ns and "mnt : own" in ns and "net : default" in ns
    assert element(d, "container") == "unknown"
    assert element(d, "container_cmdline") == f"sh -c '{script}'"
    assert element(d, "executable") == str(crasher)


def test_rlimit_core_zero_saves_directory_without_coredump(hook, crasher):  # type: ignore[no-untyped-def]
    hook.crash([crasher, "segv"], preexec=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))
    [d] = hook.dirs()
    assert not (d / "coredump").exists()
    assert "RLIMIT_CORE" in element(d, "coredump_error")
    assert element(d, "reason") == "crasher killed by SIGSEGV"


def test_planted_rate_file_symlink_is_not_followed(hook, crasher):  # type: ignore[no-untyped-def]
    victim = hook.base / "victim"
    victim.write_text("untouched")
    state = hook.spool / ".crashkit-hook"
    state.mkdir(mode=0o700)
    (state / "rate.json").symlink_to(victim)
    hook.crash([crasher, "segv"])
    assert victim.read_text() == "untouched"
    assert len(hook.dirs()) == 1  # captured anyway, limit not applied
    assert "crash-loop state unusable" in hook.log_text()


def test_symlinked_spool_is_refused(hook, crasher):  # type: ignore[no-untyped-def]
    real = hook.base / "elsewhere"
    real.mkdir(mode=0o700)
    link = hook.base / "spool-link"
    link.symlink_to(real)
    hook.configure(spool=str(link))
    pid, sig = hook.crash([crasher, "segv"])
    assert sig == signal.SIGSEGV
    assert os.listdir(real) == []
    assert "symbolic link" in hook.log_text()


@pytest.mark.slow
def test_the_hooks_own_crash_does_not_recurse(hook, crasher):  # type: ignore[no-untyped-def]
    sleeper = subprocess.Popen([str(crasher), "sleep"], stdout=subprocess.PIPE)
    try:
        assert sleeper.stdout is not None and b"ready" in sleeper.stdout.readline()
        with core_pattern(hook.pattern, pipe_limit=16):
            r, w = os.pipe()
            victim = subprocess.Popen([str(hook.launcher), str(sleeper.pid), str(sleeper.pid),
                                       str(sleeper.pid), str(sleeper.pid), "0", "0", "11",
                                       str(int(time.time())), "0", "1", "h", "crasher"],
                                      stdin=r, env={})
            os.close(r)
            time.sleep(1.0)  # let it reach the blocking read of the core
            victim.send_signal(signal.SIGSEGV)
            rc = victim.wait(timeout=30)
            os.close(w)
            time.sleep(1.0)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert rc == -signal.SIGSEGV
    assert hook.dirs() == []
    # Only the hand-started run logged (its "dumping core"); the kernel never ran a second hook.
    assert hook.log_text().count("dumping core") <= 1
    # The killed run's half-built .new directory is swept by the next capture.
    hook.crash([crasher, "segv"])
    assert hook.leftovers() == [] and len(hook.dirs()) == 1
