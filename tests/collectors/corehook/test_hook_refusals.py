"""Crashes the kernel refused to pipe are counted from its log lines (issue 17). The lines are
the kernel's own: the first test makes this kernel refuse real crashes (``core_pipe_limit`` 1
and a pipe helper that holds its slot) and reads what it printed from /dev/kmsg."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from testlib import core_pattern, require_core_pattern

from collectors.corehook import refusals, shedding
from reporter.dumpdir import DumpDir, iter_problem_dirs


def _kmsg_since(mark: int) -> list[str]:
    """Messages of /dev/kmsg with a sequence number after *mark*."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    out = []
    try:
        while True:
            try:
                record = os.read(fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue
            head, _, message = record.partition(";")
            if int(head.split(",")[1]) > mark:
                out.append(message.split("\n", 1)[0])
    finally:
        os.close(fd)
    return out


def _kmsg_last_seq() -> int:
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.lseek(fd, 0, os.SEEK_END)  # SEEK_END: the next record to come
        last = -1
        try:
            record = os.read(fd, 8192).decode()
            last = int(record.split(",")[1])
        except BlockingIOError:
            pass
        return last
    finally:
        os.close(fd)


@pytest.mark.root
def test_real_refusals_are_parsed(tmp_path: Path) -> None:
    require_core_pattern()
    mark = _kmsg_last_seq()
    with core_pattern("|/bin/sleep 2", pipe_limit=1):
        procs = [subprocess.Popen(["/bin/sh", "-c", "ulimit -c unlimited; kill -SEGV $$"])
                 for _ in range(4)]
        pids = {p.pid for p in procs}
        for p in procs:
            p.wait(timeout=60)
    time.sleep(0.2)
    # The kernel log is the host's: keep the records of our crashes.
    found = [r for r in map(refusals.parse_refusal, _kmsg_since(mark)) if r is not None and r.pid in pids]
    assert found, "the kernel logged no refusal of our crashes"
    assert {r.reason for r in found} == {"over core_pipe_limit, skipping core dump"}
    assert all(r.comm == "sh" for r in found)


def test_old_and_suppressed_forms() -> None:
    assert refusals.parse_refusal("Pid 77(crasher) over core_pipe_limit") == \
        refusals.Refusal("over core_pipe_limit", 77, "crasher")
    assert refusals.parse_refusal("Core dump to |/x/hook pipe failed") == \
        refusals.Refusal("core dump to |/x/hook pipe failed")
    assert refusals.parse_refusal("vfs_coredump: 4 callbacks suppressed") == \
        refusals.Refusal("refusals the kernel did not print", suppressed=4)
    assert refusals.parse_refusal("Skipping core dump") is None
    assert refusals.parse_refusal("coredump: 5(a b): |/usr/lib/x pipe failed") == \
        refusals.Refusal("|/usr/lib/x pipe failed", 5, "a b")


def _spool(tmp_path: Path) -> Path:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    return spool


def test_a_refusal_counts_in_the_programs_directory(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    with DumpDir.create(str(spool), "ccpp-1") as dd:
        for name, value in (("time", "1700000000"), ("type", "CCpp"), ("count", "1"),
                            ("executable", "/usr/bin/a-very-long-program-name")):
            dd.save_text(name, value)
        path = dd.commit()
    counted = refusals.account(str(spool), [refusals.Refusal("over core_pipe_limit", 9, "a-very-long-pro")])
    assert counted == 1
    with DumpDir.open(path, readonly=True) as dd:
        assert dd.load_text("count") == "2"
        assert dd.load_text(shedding.WITHOUT_CORE_ELEMENT) == "1"


def test_unknown_programs_get_a_minimal_directory_that_says_why(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    found = [refusals.Refusal("over core_pipe_limit, skipping core dump", 9, "ghost"),
             refusals.Refusal("over core_pipe_limit, skipping core dump", 10, "ghost"),
             refusals.Refusal("refusals the kernel did not print", suppressed=5)]
    assert refusals.account(str(spool), found) == 7
    dirs = {}
    for path in iter_problem_dirs(str(spool)):
        with DumpDir.open(path, readonly=True) as dd:
            dirs[dd.load_text("reason")] = (dd.load_text("count"), dd.load_text(shedding.WITHOUT_CORE_ELEMENT))
    assert dirs == {
        "ghost killed (no core: the kernel refused it: over core_pipe_limit, skipping core dump)": ("2", "2"),
        "unknown program killed (no core: the kernel refused it: refusals the kernel did not print)": ("5", "5"),
    }
