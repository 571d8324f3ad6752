"""Crash storms lose no crash (issue 17): load shedding counts what it does not capture, and a
real storm through the kernel is accounted for in full.

Accounting: the crashes that happened = the sum of ``count`` over the spool's problem
directories (each directory also says, in ``counted_without_core``, how many of them it holds
no analysed core for).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlib import Programs, crash_many_with_pattern, require_core_pattern, wait_for
from hookenv import HookEnv, element

from collectors.corehook import limits, shedding

pytestmark = pytest.mark.root


@pytest.fixture
def hook() -> Iterator[HookEnv]:
    require_core_pattern()
    env = HookEnv()
    yield env
    env.cleanup()


def hold_all_slots(env: HookEnv, slots: int) -> list[int]:
    """Take every full-capture slot, as *slots* busy hooks would."""
    dfd = limits.open_state_dir(str(env.spool))
    try:
        held = [limits.try_slot(dfd, shedding.SLOT_PREFIX, slots) for _ in range(slots)]
    finally:
        os.close(dfd)
    assert all(fd is not None for fd in held)
    return [fd for fd in held if fd is not None]


def counts(env: HookEnv) -> int:
    return sum(int(element(d, "count")) for d in env.dirs())


@pytest.mark.slow
def test_shed_crash_is_counted_without_its_core(hook: HookEnv, programs: Programs) -> None:
    hook.configure(max_full_hooks=2)
    crasher = hook.program(programs.crasher(), "stormy")
    held = hold_all_slots(hook, 2)
    try:
        hook.crash([crasher, "segv"])
        hook.crash([crasher, "segv"])
    finally:
        for fd in held:
            os.close(fd)
    [d] = hook.dirs()
    assert element(d, "count") == "2" and element(d, shedding.WITHOUT_CORE_ELEMENT) == "2"
    assert not (d / "coredump").exists()
    assert "(no core: load shedding, 2 hooks already capturing)" in element(d, "reason")
    assert element(d, "executable") == str(crasher)
    assert hook.log_text().count("counted without core in") == 2

    # With a slot free again the next crash is captured fully, and takes the coreless
    # occurrences over: one directory, three occurrences, two of them without a core.
    hook.crash([crasher, "segv"])
    [full] = hook.dirs()
    assert (full / "coredump").exists()
    assert element(full, "count") == "3" and element(full, shedding.WITHOUT_CORE_ELEMENT) == "2"


def test_shed_crash_counts_into_a_full_directory_of_the_same_program(hook: HookEnv,
                                                                     programs: Programs) -> None:
    hook.configure(max_full_hooks=1)
    crasher = hook.program(programs.crasher(), "stormy")
    hook.crash([crasher, "segv"])
    held = hold_all_slots(hook, 1)
    try:
        hook.crash([crasher, "segv"])
    finally:
        for fd in held:
            os.close(fd)
    [d] = hook.dirs()
    assert (d / "coredump").exists()
    assert element(d, "count") == "2" and element(d, shedding.WITHOUT_CORE_ELEMENT) == "1"


def test_a_crash_loop_is_counted_not_dropped(hook: HookEnv, programs: Programs) -> None:
    hook.configure(crash_loop_limit=2, crash_loop_window=600)
    crasher = hook.program(programs.crasher(), "looper")
    for _ in range(5):
        hook.crash([crasher, "abort"])
    assert counts(hook) == 5, hook.log_text()


@pytest.mark.slow
def test_storm_of_50_crashes_is_fully_accounted(hook: HookEnv, programs: Programs) -> None:
    """50 crashes at once, 10 each of 5 programs, with core_pipe_limit 0 as install sets it."""
    hook.configure(postprocess=False)
    names = [hook.program(programs.crasher(), f"storm{i}") for i in range(5)]
    argvs = [[exe, "segv"] for exe in names for _ in range(10)]
    before = len(hook.final_lines())
    sigs = crash_many_with_pattern(argvs, hook.pattern, pipe_limit=0)
    assert sigs == [signal.SIGSEGV] * 50
    assert wait_for(lambda: len(hook.final_lines()) >= before + 50, timeout=120), hook.log_text()
    assert counts(hook) == 50, hook.log_text()
    for exe in names:
        mine = [d for d in hook.dirs() if element(d, "executable") == str(exe)]
        assert sum(int(element(d, "count")) for d in mine) == 10
        assert any((d / "coredump").exists() for d in mine), "every program keeps a core"
    assert not hook.leftovers()


def test_slots_are_taken_and_given_back(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    first = shedding.acquire_full_slot(str(spool), 1)
    assert first is not None and first >= 0
    assert shedding.acquire_full_slot(str(spool), 1) is None
    os.close(first)
    again = shedding.acquire_full_slot(str(spool), 1)
    assert again is not None and again >= 0
    os.close(again)
    assert shedding.acquire_full_slot(str(spool), 0) == -1  # no limit
