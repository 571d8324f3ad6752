"""``crash.self_test`` through the real kernel: a throw-away program crashes through a private
crashkit hook installation (host-wide core_pattern lock, pattern restored afterwards), the
check finds the complete problem directory with core_backtrace and removes it; with
post-processing off it fails at its deadline, naming what is missing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corehook"))

from testlib import core_pattern  # noqa: E402
from hookenv import HookEnv, hook_fixture  # noqa: E402,F401 - fixture hook

from collectors.checks.host import Host, HostConfig  # noqa: E402
from collectors.checks.run import run_checks, select  # noqa: E402


def _self_test(hook: HookEnv, deadline: float) -> tuple[str, str, tuple[str, ...], float]:
    host = Host(HostConfig(state_dir=str(hook.state), opt_ins=frozenset({"self_test"}),
                           self_test_deadline=deadline))
    start = time.monotonic()
    with core_pattern(hook.pattern, 16):
        (rec,) = run_checks(host, select((), ("crash.self_test",)))
    return rec.status, rec.result.summary, rec.result.evidence, time.monotonic() - start


@pytest.mark.slow
def test_self_test_passes_with_a_working_hook(hook: HookEnv) -> None:
    hook.configure(postprocess=True)
    status, summary, evidence, _ = _self_test(hook, 90)
    assert status == "pass", (summary, evidence, hook.log_text())
    assert "complete problem directory" in summary
    frames = next(e for e in evidence if e.startswith("crash thread frames: "))
    assert "nanosleep" in frames or "sleep" in frames, frames
    assert hook.dirs() == []        # the test's own directory is removed again
    assert "crashkit-selftest" in hook.log_text()


@pytest.mark.slow
def test_self_test_fails_without_post_processing(hook: HookEnv) -> None:
    hook.configure(postprocess=False)
    status, summary, evidence, took = _self_test(hook, 4)
    assert status == "fail", (summary, evidence)
    assert "missing core_backtrace" in summary
    assert took < 30
