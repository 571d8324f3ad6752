"""``crashkit oops watch``: a synthetic WARNING injected into the real kernel log through
/dev/kmsg becomes a problem directory; the journal follower over a real journal file;
timeouts and bad arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from collectors.oops.collect import collect
from collectors.oops.kerneloops_dir import HostInfo
from collectors.oops.sources import KmsgSource, read_boot_id
from collectors.oops.watch import JournalFollower, follow
from reporter.dumpdir import DumpDir, iter_problem_dirs

HOST = HostInfo(kernel="6.1.0-test", architecture="x86_64", hostname="testhost", os_info=None,
                os_release=None, cmdline="", proc_modules="", fips_enabled=None)
CRASHKIT = [sys.executable, "-m", "collectors.cli"]


def _need_kmsg() -> None:
    if not os.access("/dev/kmsg", os.R_OK | os.W_OK):
        pytest.skip("needs read and write access to /dev/kmsg (root)")


def _backtraces(spool: Path) -> dict[str, str]:
    out = {}
    for path in iter_problem_dirs(str(spool)):
        with DumpDir.open(path, readonly=True) as dd:
            out[path] = dd.load_text("backtrace") + "\n" + dd.load_text("oops_title")
    return out


def _start_watch(spool: Path, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*CRASHKIT, "--debug", "oops", "watch", "--spool", str(spool), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Wait until it follows (it logs "following ..." at debug level).
    deadline = time.monotonic() + 20
    for line in proc.stderr:  # type: ignore[union-attr]
        if "following" in line:
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"watch did not start: {proc.communicate()}")


@pytest.mark.slow
def test_watch_once_turns_an_injected_warning_into_a_directory(tmp_path: Path) -> None:
    """Leaves one small synthetic WARNING (9 lines, tagged with a unique function name) in
    the host's kernel log: that is what the kernel log is for. /dev/kmsg rate-limits
    writers to 10 records per 5 s per open file, hence one open and 9 records."""
    _need_kmsg()
    spool = tmp_path / "spool"
    collect([KmsgSource()], str(spool), host=HOST)  # the cursor moves to the end of the log
    before = set(_backtraces(spool))
    proc = _start_watch(spool, "--source", "kmsg", "--once", "--timeout", "60")
    # letters beyond "f": a run of hex digits in a title is an address and becomes ADDR
    tag = "".join("ghijklmnopqrstuv"[int(c, 16)] for c in uuid.uuid4().hex[:12])
    func = f"crashkit_selftest_{tag}"
    report = [
        "------------[ cut here ]------------",
        f"WARNING: CPU: 0 PID: 1 at drivers/misc/crashkit_selftest.c:42 {func}+0x10/0x20",
        "Modules linked in: crashkit_selftest(O)",
        "CPU: 0 PID: 1 Comm: crashkit-test Tainted: G           O       6.1.0-test #1",
        f"RIP: 0010:{func}+0x10/0x20",
        "Call Trace:",
        f" {func}_caller+0x5/0x10",
        " do_one_initcall+0x41/0x200",
        "---[ end trace 0000000000000000 ]---",
    ]
    fd = os.open("/dev/kmsg", os.O_WRONLY)
    try:
        for line in report:
            os.write(fd, f"<4>{line}\n".encode())
    finally:
        os.close(fd)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    new = {p: bt for p, bt in _backtraces(spool).items() if p not in before}
    ours = [p for p, bt in new.items() if func in bt]
    assert len(ours) == 1, (new, err)
    path = ours[0]
    assert path in out
    with DumpDir.open(path, readonly=True) as dd:
        assert dd.load_text("type") == "Kerneloops"
        assert dd.load_text("oops_title") == f"WARNING in {func}"
        assert dd.load_text("kernel") == "6.1.0-test"
        assert dd.load_text("kernel_tainted_short") == "GO"
        assert f"{func}_caller" in dd.load_text("backtrace")
    # The cursor moved past it: collect finds nothing new from kmsg.
    again = collect([KmsgSource()], str(spool), host=HOST)[0]
    assert again.new == 0 and not any(func in p for p in again.dirs)


@pytest.mark.slow
def test_watch_timeout_on_an_idle_log(tmp_path: Path) -> None:
    _need_kmsg()
    spool = tmp_path / "spool"
    collect([KmsgSource()], str(spool), host=HOST)
    start = time.monotonic()
    res = subprocess.run([*CRASHKIT, "oops", "watch", "--source", "kmsg", "--spool", str(spool),
                          "--timeout", "1", "--json"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - start < 15
    assert '"sources"' in res.stdout


@pytest.mark.slow
def test_journal_follower_over_a_journal_file(tmp_path: Path, fixtures_dir: Path) -> None:
    from test_sources_journal import make_journal  # sibling test helper

    text = (fixtures_dir / "abrt-oops" / "oops6.test").read_text()
    journal = tmp_path / "k.journal"
    make_journal(journal, [(read_boot_id() or "ab" * 16, line) for line in text.splitlines() if line])
    spool = tmp_path / "spool"
    follower = JournalFollower(extra_args=("--file", str(journal)))
    summary = follow(follower, str(spool), timeout=3, quiet=0.5, host=HOST)
    assert summary.new == 1 and len(summary.dirs) == 1
    from collectors.oops import parse
    assert _backtraces(spool)[summary.dirs[0]].endswith(parse.scan_text(text)[0].title)
    again = follow(JournalFollower(extra_args=("--file", str(journal))), str(spool), timeout=2,
                   quiet=0.5, host=HOST)
    assert again.reports == 0


@pytest.mark.parametrize("args, message", [
    (["--source", "syslog"], "syslog"),
    (["--source", "kmsg", "--source", "journal"], "one source"),
    (["--timeout", "-1"], "timeout"),
])
def test_watch_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    res = subprocess.run([*CRASHKIT, "oops", "watch", "--spool", str(tmp_path), *args],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def _refusal_dirs(spool: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for path in iter_problem_dirs(str(spool)):
        with DumpDir.open(path, readonly=True) as dd:
            if dd.load_text("kernel_refusal"):
                out[dd.load_text("reason")] = (dd.load_text("count"), dd.load_text("counted_without_core"))
    return out


@pytest.mark.slow
def test_watch_counts_kernel_refusals_from_a_trusted_journal_once(tmp_path: Path) -> None:
    from test_sources_journal import make_journal  # sibling test helper

    journal = tmp_path / "k.journal"
    boot = read_boot_id() or "ab" * 16
    make_journal(journal, [(boot, "coredump: 77(storm2): over core_pipe_limit, skipping core dump"),
                           (boot, "coredump_pipe: 2 callbacks suppressed")])
    spool = tmp_path / "spool"
    forged = follow(JournalFollower(extra_args=("--file", str(journal))), str(spool), timeout=2,
                    quiet=0.5, host=HOST)
    assert forged.refusals == 0 and not _refusal_dirs(spool)
    spool = tmp_path / "spool2"  # (the first spool's cursor is past these entries now)
    trusted = follow(JournalFollower(extra_args=("--file", str(journal)), trusted=True), str(spool),
                     timeout=3, quiet=0.5, host=HOST)
    assert trusted.refusals == 3
    assert _refusal_dirs(spool) == {
        "storm2 killed (no core: the kernel refused it: over core_pipe_limit, skipping core dump)": ("1", "1"),
        "unknown program killed (no core: the kernel refused it: refusals the kernel did not print)": ("2", "2"),
    }
    again = follow(JournalFollower(extra_args=("--file", str(journal)), trusted=True), str(spool),
                   timeout=2, quiet=0.5, host=HOST)
    assert again.refusals == 0


@pytest.mark.slow
def test_watch_counts_a_real_refusal_from_kmsg(tmp_path: Path) -> None:
    """The kernel refuses a real crash (core_pipe_limit 1, a pipe helper that holds its slot)
    while ``oops watch`` follows /dev/kmsg: the refused crash is counted."""
    from testlib import core_pattern, require_core_pattern

    _need_kmsg()
    require_core_pattern()
    spool = tmp_path / "spool"
    collect([KmsgSource()], str(spool), host=HOST)  # the cursor moves to the end of the log
    before = {reason: int(count) for reason, (count, _) in _refusal_dirs(spool).items()}
    proc = _start_watch(spool, "--source", "kmsg", "--timeout", "8", "--json")
    with core_pattern("|/bin/sleep 1", pipe_limit=1):
        crashes = [subprocess.Popen(["/bin/sh", "-c", "ulimit -c unlimited; kill -SEGV $$"])
                   for _ in range(2)]
        for p in crashes:
            p.wait(timeout=60)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    counted = json.loads(out)["sources"][0]["refusals"]
    added = {reason: int(count) - before.get(reason, 0) for reason, (count, _) in _refusal_dirs(spool).items()}
    sh = "sh killed (no core: the kernel refused it: over core_pipe_limit, skipping core dump)"
    assert added.get(sh, 0) >= 1, (added, err)
    assert counted == sum(added.values())
