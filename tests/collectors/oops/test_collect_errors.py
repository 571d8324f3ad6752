"""`oops collect`'s boundary per source: a damaged log is one line in the summary and the
other sources go on; a bug of ours re-raises under CRASHKIT_STRICT (the tests) instead of
hiding as a source error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.oops.collect import collect
from collectors.oops.kerneloops_dir import HostInfo
from collectors.oops.sources import LogUnit


class FailingSource:
    """A source whose units raise *error* when they are read."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    def units(self, section: dict[str, Any]) -> Iterator[LogUnit]:
        raise self.error
        yield  # pragma: no cover - makes this a generator


class EmptySource:
    name = "empty"

    def units(self, section: dict[str, Any]) -> Iterator[LogUnit]:
        return iter(())


def _host() -> HostInfo:
    return HostInfo.from_root("/")


def test_a_damaged_log_is_one_error_line_and_the_next_source_runs(tmp_path: Path) -> None:
    damaged = FailingSource("syslog", OSError(5, "Input/output error", "/var/log/kern.log"))
    summaries = collect([damaged, EmptySource()], str(tmp_path / "spool"), host=_host())
    assert [s.source for s in summaries] == ["syslog", "empty"]
    assert summaries[0].errors == ["syslog: /var/log/kern.log: Input/output error"]
    assert summaries[1].errors == []


def test_a_bug_in_a_source_reraises_under_strict(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHKIT_STRICT", "1")
    buggy = FailingSource("kmsg", KeyError("offset"))
    with pytest.raises(KeyError):
        collect([buggy, EmptySource()], str(tmp_path / "spool"), host=_host())


def test_a_bug_is_an_error_line_when_not_strict(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHKIT_STRICT", "0")
    buggy = FailingSource("kmsg", KeyError("offset"))
    summaries = collect([buggy, EmptySource()], str(tmp_path / "spool"), host=_host())
    assert len(summaries[0].errors) == 1 and summaries[0].errors[0].startswith("kmsg: ")
    assert summaries[1].errors == []
