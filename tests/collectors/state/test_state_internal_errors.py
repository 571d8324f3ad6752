"""A bug in a state plugin: an ``error`` result for a user, a failed test under the tests.

The boundary is coripper's ``capture_internal_exceptions`` (testlib sets CRASHKIT_STRICT);
``StateError`` and ``NotPresent`` are a plugin's legitimate outcomes and never raise."""

from __future__ import annotations

import pytest

from collectors.errors import StateError
from collectors.state.base import Context, NotPresent, Options, StatePlugin
from collectors.state.collect import run_plugin
from collectors.state.model import Instance
from coripper.errors import STRICT_ENV


class _Here(StatePlugin):
    """A technology that is always there; what its collect does is the test."""

    name = "here"
    description = "always available"

    def available(self, ctx: Context) -> bool:
        return True

    def collect(self, ctx: Context) -> list[Instance]:
        return []


class Buggy(_Here):
    """A plugin whose collect has a bug of ours (a wrong key)."""

    name = "buggy"

    def collect(self, ctx: Context) -> list[Instance]:
        fields: dict[str, str] = {}
        return [Instance(self.name, fields["missing"])]


class Failing(_Here):
    """Its tool failed."""

    def collect(self, ctx: Context) -> list[Instance]:
        raise StateError("tool: timed out after 1 s")


class Unused(_Here):
    """A client without its daemon."""

    def collect(self, ctx: Context) -> list[Instance]:
        raise NotPresent()


@pytest.fixture
def ctx(tmp_path) -> Context:  # type: ignore[no-untyped-def]
    return Context(Options(root=str(tmp_path)))


def test_a_plugin_bug_fails_the_tests(ctx: Context) -> None:
    with pytest.raises(KeyError, match="missing"):
        run_plugin(Buggy(), ctx)


def test_a_plugin_bug_is_an_error_result_for_a_user(ctx: Context, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(STRICT_ENV, "0")
    with caplog.at_level("ERROR", logger="collectors.state.collect"):
        res = run_plugin(Buggy(), ctx)
    assert res.status == "error"
    assert res.error == "internal error: KeyError: 'missing'"
    assert [r.getMessage() for r in caplog.records] == ["internal error in state plugin buggy"]
    assert caplog.records[0].exc_info is not None


def test_legitimate_failures_never_raise(ctx: Context) -> None:
    failed = run_plugin(Failing(), ctx)
    assert (failed.status, failed.error) == ("error", "tool: timed out after 1 s")
    assert run_plugin(Unused(), ctx).status == "absent"
