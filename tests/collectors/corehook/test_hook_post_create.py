"""The hook runs libreport's post-create event after post-processing when ``[report]
post_create`` is set (issue 13): a real crash through the kernel, a rules file of the test's
own, and the event's command leaving an element in the problem directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testlib import Programs, require_core_pattern
from hookenv import HookEnv, element

pytestmark = pytest.mark.root


@pytest.fixture
def hook() -> Iterator[HookEnv]:
    require_core_pattern()
    env = HookEnv()
    yield env
    env.cleanup()


def test_post_create_runs_on_a_new_problem(hook: HookEnv, programs: Programs) -> None:
    rules = hook.base / "report_event.conf"
    rules.write_text("EVENT=post-create type=CCpp\n"
                     "        test -s core_backtrace && echo analysed > post_create_seen\n")
    hook.configure(postprocess=True)
    with open(hook.paths.hook_config, "a") as f:
        f.write(f'\n[report]\npost_create = true\nevent_conf = "{rules}"\n')
    crasher = hook.program(programs.crasher(), "pc_crasher")
    hook.crash([crasher, "segv"])
    [d] = hook.dirs()
    hook.wait_element(d, "post_create_seen", timeout=90)
    assert element(d, "post_create_seen").strip() == "analysed"
    assert "post-create on" in hook.log_text()


def test_no_post_create_unless_configured(hook: HookEnv, programs: Programs) -> None:
    hook.configure(postprocess=True)
    crasher = hook.program(programs.crasher(), "pc_crasher")
    hook.crash([crasher, "segv"])
    [d] = hook.dirs()
    hook.wait_element(d, "crash_function", timeout=90)
    assert not Path(d, "event_log").exists()
    assert "post-create on" not in hook.log_text()
