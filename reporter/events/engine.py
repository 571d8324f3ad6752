"""Running an event on a problem directory, and listing the events that apply (§3.3).

As libreport's ``run_event_on_dir_name``: all rules are loaded; repeatedly the first
remaining rule whose conditions hold *now* is taken out and its command run, so a command
can create an element that enables a later rule; the run stops at the first non-zero exit.
Conditions are checked against the directory opened read-only (and locked) for the check
only, released while the command runs. ``list_possible_events`` reproduces libreport's
loop too, including its reuse of an ``EVENT=`` value seen on a rule that then failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from reporter.dumpdir import DumpDir
from reporter.errors import ProblemDirError, ReporterError
from reporter.events.conditions import ElementGetter, element_condition_holds, event_matches
from reporter.events.rules import Rule

EXIT_CANCEL_BY_USER = 69
EXIT_STOP_EVENT_RUN = 70

Warn = Callable[[str], None]


class EventError(ReporterError):
    """An event could not be run (the directory can't be opened, no rules...)."""


@contextmanager
def _elements(path: str) -> Iterator[ElementGetter]:
    """An element getter over *path* opened read-only, closed (unlocked) afterwards."""
    try:
        dd = DumpDir.open(path, readonly=True)
    except ProblemDirError as exc:
        raise EventError(str(exc)) from None

    def get(name: str) -> str:
        try:
            return dd.load_text(name)
        except (ProblemDirError, OSError):
            return ""  # invalid name, symlink, unreadable: libreport loads ""

    try:
        yield get
    finally:
        dd.close()


class _LazyDir:
    """The directory's elements, opened on the first element condition and closed at the
    end of the scan, as ``pop_next_command`` does. Without a path every element condition
    holds (libreport: "without dir to match, we assume match for all conditions")."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._cm: Any = None
        self._get: ElementGetter | None = None

    def getter(self) -> ElementGetter | None:
        if self.path is None:
            return None
        if self._get is None:
            self._cm = _elements(self.path)
            self._get = self._cm.__enter__()
        return self._get

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = None


def _rule_holds(rule: Rule, event: str, prefix: bool, lazy: _LazyDir, warn: Warn | None,
                seen_event: list[str | None]) -> bool:
    for cond in rule.conditions:
        if cond.startswith("EVENT="):
            if not event_matches(cond[6:], event, prefix=prefix):
                return False
            seen_event[0] = cond[6:]
            continue
        get = lazy.getter()
        if get is not None and not element_condition_holds(cond, get, warn):
            return False
    return True


def pop_next(rules: list[Rule], path: str | None, event: str, *, prefix: bool = False,
             warn: Warn | None = None, seen_event: list[str | None] | None = None) -> Rule | None:
    """Remove and return the first rule of *rules* whose conditions hold for *path* now.

    *seen_event* (a one-item list) receives the last ``EVENT=`` value that matched, even on
    a rule whose other conditions then failed (libreport's ``pp_event_name``).
    """
    seen: list[str | None] = seen_event if seen_event is not None else [None]
    lazy = _LazyDir(path)
    try:
        for index, rule in enumerate(rules):
            if _rule_holds(rule, event, prefix, lazy, warn, seen):
                return rules.pop(index)
        return None
    finally:
        lazy.close()


def list_possible_events(rules: list[Rule], path: str | None, prefix: str = "",
                         warn: Warn | None = None) -> list[str]:
    """Event names whose rules apply to *path* and start with *prefix*, deduplicated, in
    file order (libreport ``list_possible_events``)."""
    remaining = list(rules)
    names: list[str] = []
    while True:
        seen: list[str | None] = [None]
        rule = pop_next(remaining, path, prefix, prefix=True, warn=warn, seen_event=seen)
        if rule is None:
            return names
        if seen[0] is not None and seen[0] not in names:
            names.append(seen[0])


@dataclass
class CommandOutcome:
    """One command of an event: its exit status and last output line."""

    rule: Rule
    rc: int
    last_line: str = ""


@dataclass
class EventRun:
    """The outcome of running one event."""

    event: str
    commands: list[CommandOutcome] = field(default_factory=list)

    @property
    def rc(self) -> int:
        """The exit status of the last command run (0 when none ran or all succeeded)."""
        return self.commands[-1].rc if self.commands else 0

    @property
    def handled(self) -> bool:
        """True when at least one rule applied ("No actions are found for event" otherwise)."""
        return bool(self.commands)


def run_event(rules: list[Rule], path: str, event: str, run_command: Callable[[Rule], CommandOutcome],
              warn: Warn | None = None) -> EventRun:
    """Run *event* on *path*: commands of the applying rules, one at a time, conditions
    re-checked before each; stops after the first non-zero exit status."""
    remaining = list(rules)
    result = EventRun(event)
    while True:
        rule = pop_next(remaining, path, event, warn=warn)
        if rule is None:
            return result
        outcome = run_command(rule)
        result.commands.append(outcome)
        if outcome.rc != 0:
            return result


def dump_dir_path(path: str) -> str:
    """``DUMP_DIR`` for the commands: the real path (libreport exports ``realpath``)."""
    return os.path.realpath(path)
