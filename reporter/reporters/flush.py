"""``crashkit report --flush``: deliver what the outbox holds.

Entries are sent oldest first by a few worker threads, under the outbox's flush lock (a
second flush waits, or with ``wait=False`` gives up at once, as the systemd timer's run
does). Delivered entries update their problem directory (:mod:`reporter.reporters.handlers`)
and leave the queue; temporary failures are rescheduled with backoff; final ones go to
``failed/`` with the server's message; entries older than :data:`reporter.outbox.MAX_AGE`
expire. ``due_only`` sends only entries whose next try has come. An upload or Sentry event
whose problem directory is marked ``not-reportable`` by now (a uReport server's solution, a
user) is not sent unless it was queued with ``--force``: it goes to ``failed/`` with the
reason and counts as ``refused`` (:mod:`reporter.reporters.reportable`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

from reporter.outbox import MAX_AGE, Entry, Outbox
from reporter.redact import Scrubber

DEFAULT_WORKERS = 4


@dataclass
class FlushResult:
    """Counts of one flush, and the lines it logged."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    refused: int = 0
    not_due: int = 0
    busy: bool = False
    messages: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        """Entries still queued afterwards."""
        return self.retried + self.not_due


def _deliver_one(outbox: Outbox, entry: Entry, log: Callable[[str], None]) -> str:
    from reporter.reporters import delivery, handlers, reportable

    if entry.kind in reportable.REFUSING_KINDS and entry.dump_dir and not entry.force:
        refused = reportable.refusal(entry.dump_dir)
        if refused is not None:
            outbox.fail(entry, refused, None)
            log(f"{entry.id}: {entry.kind} of {entry.dump_dir} not sent: {refused}")
            return "refused"
    secret = outbox.secret(entry)
    scrub = Scrubber([secret.get("password"), secret.get("token"), *(secret.get("headers") or {}).values()])
    try:
        body: IO[bytes] = open(outbox.payload_path(entry), "rb")
    except OSError as exc:
        outbox.fail(entry, f"payload unreadable: {exc.strerror}", None)
        return "failed"
    with body:
        outcome = delivery.send(entry, body, secret, scrub=scrub)
    if outcome.delivered:
        handlers.apply(entry, outcome, log)
        outbox.remove(entry)
        return "delivered"
    if outcome.state == "final":
        outbox.fail(entry, outcome.message, outcome.status)
        log(scrub(f"{entry.id}: {entry.kind} to {entry.url} failed for good: {outcome.message}"))
        return "failed"
    outbox.reschedule(entry, outcome.message, outcome.status, outcome.retry_after)
    return "retried"


def flush(outbox: Outbox, *, due_only: bool = False, workers: int = DEFAULT_WORKERS, wait: bool = True,
          log: Callable[[str], None] | None = None, now: float | None = None) -> FlushResult:
    """Try every queued entry (or only the due ones) once."""
    result = FlushResult()
    say = log or (lambda _m: None)

    def note(message: str) -> None:
        result.messages.append(message)
        say(message)

    if not os.path.isdir(outbox.path):
        return result
    with outbox.flush_lock(wait=wait) as locked:
        if not locked:
            result.busy = True
            return result
        outbox.clean_tmp()
        now = time.time() if now is None else now
        todo: list[Entry] = []
        for entry in outbox.entries():
            if now - entry.created > MAX_AGE:
                outbox.fail(entry, f"expired after {entry.attempts} attempts: {entry.last_error}", entry.last_status)
                result.failed += 1
            elif due_only and entry.next_attempt > now:
                result.not_due += 1
            else:
                todo.append(entry)
        with ThreadPoolExecutor(max(1, workers)) as pool:
            for state in pool.map(lambda e: _deliver_one(outbox, e, note), todo):
                setattr(result, state, getattr(result, state) + 1)
    return result
