"""Running checks: select, run in parallel, turn a check's bug into status ``error``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from collectors.checks.base import PHASES, Check, CheckRecord, Result, skip
from collectors.checks.host import Host
from collectors.checks.registry import all_checks
from collectors.errors import CollectorError
from coripper.errors import capture_internal_exceptions

WORKERS = 8


def select(phases: Sequence[str] = (), only: Sequence[str] = ()) -> list[type[Check]]:
    """The checks of *phases* (all when empty), narrowed to the ids or id prefixes in *only*.

    Raises :class:`CollectorError` for an unknown phase or an id that names no check.
    """
    checks = all_checks()
    for p in phases:
        if p not in PHASES:
            raise CollectorError(f"unknown phase {p!r} (phases: {', '.join(PHASES)})")
    if phases:
        checks = [c for c in checks if c.phase in phases]
    if only:
        ids = {c.id for c in all_checks()}
        for o in only:
            if o not in ids and not any(i.startswith(o + ".") for i in ids):
                raise CollectorError(f"unknown check {o!r} (see crashkit check --list)")
        checks = [c for c in checks if c.id in only or any(c.id.startswith(o + ".") for o in only)]
    return checks


def run_one(cls: type[Check], host: Host) -> CheckRecord:
    """One check; never raises for the check's own failures."""
    start = time.monotonic()
    if cls.opt_in and not host.opted_in(cls.opt_in):
        result: Result = skip(f"opt-in: run with --{cls.opt_in.replace('_', '-')}")
    else:
        # A check raises only for bugs: logged, status "error"; re-raised under CRASHKIT_STRICT.
        with capture_internal_exceptions("check %s", cls.id, logger=__name__) as bug:
            result = cls().run(host)
        if bug.error is not None:
            result = Result("error", f"the check failed: {type(bug.error).__name__}: {bug.error}")
    return CheckRecord(cls.id, cls.phase, cls.title, result, time.monotonic() - start)


def run_checks(host: Host, checks: Sequence[type[Check]] | None = None) -> list[CheckRecord]:
    """Run *checks* (default: all) on *host* in parallel; results in the checks' order.

    The self-test runs after the others: it crashes a program, which the other checks must
    not see half-way.
    """
    checks = list(checks if checks is not None else all_checks())
    late = [c for c in checks if c.opt_in]
    early = [c for c in checks if not c.opt_in]
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="check") as pool:
        records = {c.id: r for c, r in zip(early, pool.map(lambda c: run_one(c, host), early), strict=True)}
    for c in late:
        records[c.id] = run_one(c, host)
    return [records[c.id] for c in checks]


def exit_code(records: Sequence[CheckRecord]) -> int:
    """0 when every check passed or was skipped, 1 otherwise."""
    return 0 if all(r.status in ("pass", "skip") for r in records) else 1
