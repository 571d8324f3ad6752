"""The end-to-end self-test (opt-in, ``--self-test``): crash a throw-away program through the
real core_pattern and wait for a complete problem directory with ``core_backtrace``.

The program is a private copy of ``sleep`` under a fresh directory (its own path, so the
hook never counts it as a duplicate of an earlier self-test or of a real crash), killed
with SIGSEGV after RLIMIT_CORE is raised. The problem directory it produced is deleted
afterwards, and so is the copy.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

from collectors import runner
from collectors.checks import facts
from collectors.checks.base import Check, Result, fail, passed, skip
from collectors.checks.host import Host
from collectors.checks.parsers.corepattern import parse_core_pattern

SELF_TEST_NAME = "crashkit-selftest"
REQUIRED = ("time", "type", "executable", "reason", "core_backtrace")
# Runs in a child interpreter: start the victim with RLIMIT_CORE unlimited, wait until it is
# the victim (exec done), SIGSEGV it, report "pid exit-status core-dumped".
_CHILD = r"""
import os, resource, signal, sys, time
exe = sys.argv[1]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    os.execv(exe, [exe, "30"])
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        if os.readlink(f"/proc/{pid}/exe") == exe:
            break
    except OSError:
        pass
    time.sleep(0.01)
time.sleep(0.05)
os.kill(pid, signal.SIGSEGV)
_, status = os.waitpid(pid, 0)
print(pid, status, int(os.WCOREDUMP(status)))
"""


class SelfTest(Check):
    id = "crash.self_test"
    phase = "crash"
    title = "End-to-end self-test: a crash becomes a complete problem directory"
    opt_in = "self_test"

    def run(self, host: Host) -> Result:
        if not host.live:
            return skip("the self-test crashes a program on this host; not on a recorded root")
        cp = parse_core_pattern(host.text("/proc/sys/kernel/core_pattern") or "")
        hk = facts.hook(host)
        ours = bool(hk.status.get("installed")) or (cp.executable and _launcher_is_ours(cp.executable))
        if not ours:
            return skip(f"core_pattern {cp.raw!r} is not crashkit's hook: the self-test verifies "
                        "crashkit problem directories", (f"core_pattern {cp.raw!r}",),
                        "crashkit hook install, then crashkit check --self-test")
        workdir = tempfile.mkdtemp(prefix="crashkit-selftest-", dir="/var/tmp")
        try:
            os.chmod(workdir, 0o755)
            exe = os.path.join(workdir, SELF_TEST_NAME)
            shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
            os.chmod(exe, 0o755)
            return self._crash_and_wait(host, hk.spool, exe)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _crash_and_wait(self, host: Host, spool: str, exe: str) -> Result:
        start = time.monotonic()
        res = runner.run([sys.executable, "-I", "-c", _CHILD, exe], timeout=30)
        words = res.stdout.decode().split()
        if not res.ok or len(words) != 3:
            return fail("could not crash the test program", (res.failure or res.stderr.decode()[:200],))
        pid, status, dumped = (int(w) for w in words)
        ev = [f"crashed {exe} (pid {pid}) with SIGSEGV, wait status {status}, core dumped {bool(dumped)}",
              f"spool {spool}"]
        deadline = start + host.config.self_test_deadline
        found, missing = None, list(REQUIRED)
        while time.monotonic() < deadline:
            found = _find_dir(spool, pid)
            if found:
                missing = [e for e in REQUIRED if not os.path.exists(os.path.join(found, e))]
                if not missing:
                    break
            time.sleep(0.1)
        took = time.monotonic() - start
        if found is None:
            return fail(f"no problem directory appeared within {host.config.self_test_deadline:g} s", ev,
                        "Read the hook's log (journalctl -t crashkit-hook, or its log_file) and "
                        "`crashkit hook status`.")
        try:
            detail = _verify(found)
            while not detail[0] and time.monotonic() < deadline:  # still being written
                time.sleep(0.2)
                detail = _verify(found)
        finally:
            _delete(found)
        ev.append(f"problem directory {found} after {took:.1f} s")
        ev.extend(detail[1])
        if missing or not detail[0]:
            return fail(f"the problem directory is incomplete: missing {', '.join(missing) or 'frames'}",
                        ev, "Post-processing did not finish: see the hook's log for its error.")
        return passed(f"a test crash became a complete problem directory in {took:.1f} s", ev)


def _launcher_is_ours(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"collectors.corehook.hook" in f.read(4096)
    except OSError:
        return False


def _find_dir(spool: str, pid: int) -> str | None:
    from reporter.dumpdir import iter_problem_dirs

    for path in iter_problem_dirs(spool):
        try:
            with open(os.path.join(path, "global_pid"), "rb") as f:
                if f.read(32).strip() == str(pid).encode():
                    return path
        except OSError:
            continue
    return None


def _verify(path: str) -> tuple[bool, list[str]]:
    """Frames of the crash thread in ``core_backtrace``, and the elements present."""
    ev = [f"elements: {' '.join(sorted(os.listdir(path)))}"]
    try:
        with open(os.path.join(path, "core_backtrace"), encoding="utf-8") as f:
            bt = json.load(f)
    except (OSError, ValueError) as exc:
        return False, ev + [f"core_backtrace: {exc}"]
    threads = bt.get("stacktrace") or []
    crash = next((t for t in threads if t.get("crash_thread")), threads[0] if threads else {})
    frames = [fr.get("function_name") or hex(fr.get("address", 0)) for fr in crash.get("frames", [])]
    ev.append("crash thread frames: " + " <- ".join(frames[:6]))
    return bool(frames), ev


def _delete(path: str) -> None:
    from reporter.dumpdir import DumpDir
    from reporter.errors import ReporterError

    try:
        with DumpDir.open(path, timeout=10) as dd:
            dd.delete()
    except (ReporterError, OSError):
        pass
