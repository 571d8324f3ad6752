"""A check's bug: status ``error`` for a user, a failed test under the tests (CRASHKIT_STRICT,
which testlib sets)."""

from __future__ import annotations

import pytest

from collectors.checks.base import Check, Result, passed
from collectors.checks.host import Host, HostConfig
from collectors.checks.run import run_one
from coripper.errors import STRICT_ENV


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch) -> type[Check]:
    """A check with a bug, registered only for this test."""
    monkeypatch.setattr(Check, "registry", list(Check.registry))

    class Buggy(Check):
        id = "runtime.buggy-for-test"
        phase = "runtime"
        title = "a check with a bug"

        def run(self, host: Host) -> Result:
            return passed(f"{len(host.config.extra['absent'])} things")

    return Buggy


def test_a_check_bug_fails_the_tests(buggy: type[Check], tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError, match="absent"):
        run_one(buggy, Host(HostConfig(root=str(tmp_path))))


def test_a_check_bug_is_status_error_for_a_user(buggy: type[Check], tmp_path,  # type: ignore[no-untyped-def]
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(STRICT_ENV, "0")
    with caplog.at_level("ERROR", logger="collectors.checks.run"):
        record = run_one(buggy, Host(HostConfig(root=str(tmp_path))))
    assert record.result.status == "error"
    assert record.result.summary == "the check failed: KeyError: 'absent'"
    assert [r.getMessage() for r in caplog.records] == ["internal error in check runtime.buggy-for-test"]

