"""The persistent outbox: reports that could not be delivered yet, kept until they are.

Location: ``$CRASHKIT_OUTBOX``, else ``[report] outbox`` of crashkit.toml, else
``<spool>/.outbox`` (the spool's listing skips it: it is no problem directory). Layout::

    OUTBOX/.lock              flock(2) taken by a flush, so two flushes never send twice
    OUTBOX/tmp/ID/            an entry being written (removed if writing fails)
    OUTBOX/queue/ID/          queued: meta.json, payload, and secret.json (0600) if the
                              delivery needs credentials
    OUTBOX/failed/ID/         given up: meta.json with the server's message (no payload)

``ID`` is the client-generated report id the server de-duplicates by, so delivering an
entry twice (a response lost after the server stored it) stores one report. Entries are
written to ``tmp/``, fsynced and renamed into ``queue/``: a crash or a full disk leaves
either a complete entry or none. Directories are 0700, files 0600; credentials stay in
``secret.json`` and never reach ``meta.json``, logs or ``reported_to``.

Retries: exponential backoff from :data:`BASE_DELAY` doubling to :data:`MAX_DELAY`, each
delay multiplied by a random factor in [0.5, 1.5) (jitter, so that hosts queued during one
outage do not come back in step); a server's ``Retry-After`` is a floor. Entries older than
:data:`MAX_AGE` go to ``failed/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from reporter.errors import ReporterError

OUTBOX_ENV = "CRASHKIT_OUTBOX"
OUTBOX_NAME = ".outbox"
BASE_DELAY = 60.0
MAX_DELAY = 6 * 3600.0
MAX_AGE = 30 * 86400.0
META = "meta.json"
PAYLOAD = "payload"
SECRET = "secret.json"


class OutboxError(ReporterError):
    """The outbox cannot be used (e.g. no space left to queue a report)."""


def new_report_id() -> str:
    """A fresh client report id (32 hex digits)."""
    return uuid.uuid4().hex


@dataclass
class Entry:
    """One queued delivery: what to send where, and its retry state."""

    id: str
    kind: str                       # upload | ureport | ureport-attach | sentry
    url: str                        # target URL, never with credentials
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    form_field: str | None = None   # multipart/form-data field holding the payload, or raw body
    form_filename: str = "payload"
    content_type: str = "application/octet-stream"
    dump_dir: str | None = None
    force: bool = False             # sent even if dump_dir becomes not-reportable (--force)
    tls: dict[str, Any] = field(default_factory=dict)      # verify, ca_file, client_cert, client_key
    context: dict[str, Any] = field(default_factory=dict)  # what the kind needs after delivery
    created: float = 0.0
    attempts: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    last_status: int | None = None
    failed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``meta.json`` object."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Entry:
        """Inverse of :meth:`to_json` (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})


def next_delay(attempts: int, retry_after: float | None = None, rng: Callable[[], float] = random.random) -> float:
    """Seconds until the next try after *attempts* failed ones (>= 1): exponential, jittered,
    at least *retry_after* when the server said so."""
    base = min(MAX_DELAY, BASE_DELAY * float(2 ** max(0, attempts - 1)))
    delay = base * (0.5 + rng())
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def default_path(spool: str | None = None) -> str:
    """``$CRASHKIT_OUTBOX`` > ``[report] outbox`` > ``<spool>/.outbox``."""
    env = os.environ.get(OUTBOX_ENV)
    if env:
        return env
    from reporter import report_config
    from reporter.spool import spool_path

    cfg = report_config.load()
    return cfg.outbox or os.path.join(spool_path(spool), OUTBOX_NAME)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: str, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class OutboxStats:
    """Depth and age of the queue (for ``crashkit check``)."""

    queued: int
    failed: int
    oldest_created: float | None
    bytes: int


class Outbox:
    """The outbox directory at *path* (created on first use, 0700)."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)

    @classmethod
    def default(cls, spool: str | None = None) -> Outbox:
        """The configured outbox."""
        return cls(default_path(spool))

    def _dir(self, name: str) -> str:
        d = os.path.join(self.path, name)
        os.makedirs(d, mode=0o700, exist_ok=True)
        return d

    # ---------------------------------------------------------------- queueing

    def put(self, entry: Entry, write_payload: Callable[[BinaryIO], object],
            secret: dict[str, Any] | None = None, now: float | None = None) -> str:
        """Queue *entry*; *write_payload* writes the body into the open payload file.

        Raises :class:`OutboxError` (nothing left behind) when it can't be written, e.g.
        on ENOSPC.
        """
        now = time.time() if now is None else now
        if not entry.created:
            entry.created = now
        if not entry.next_attempt:
            entry.next_attempt = now
        try:
            tmp = os.path.join(self._dir("tmp"), entry.id)
            queue_dir = self._dir("queue")
        except OSError as exc:
            raise OutboxError(f"can't create the outbox {self.path}: {exc.strerror}") from None
        try:
            os.mkdir(tmp, 0o700)
            fd = os.open(os.path.join(tmp, PAYLOAD), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                write_payload(f)
                f.flush()
                os.fsync(f.fileno())
            if secret:
                _write_file(os.path.join(tmp, SECRET), json.dumps(secret).encode())
            _write_file(os.path.join(tmp, META), json.dumps(entry.to_json(), indent=1).encode())
            _fsync_dir(tmp)
            os.rename(tmp, os.path.join(queue_dir, entry.id))
            _fsync_dir(queue_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise OutboxError(f"can't queue the report in {self.path}: {exc.strerror or exc}") from None
        return os.path.join(queue_dir, entry.id)

    # ---------------------------------------------------------------- reading

    def entry_dir(self, entry_id: str, where: str = "queue") -> str:
        """Directory of an entry."""
        return os.path.join(self.path, where, entry_id)

    def entries(self, where: str = "queue") -> list[Entry]:
        """Entries of ``queue`` (or ``failed``), oldest first; unreadable ones skipped."""
        d = os.path.join(self.path, where)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            try:
                with open(os.path.join(d, name, META), "rb") as f:
                    out.append(Entry.from_json(json.loads(f.read(1 << 20))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(out, key=lambda e: (e.created, e.id))

    def payload_path(self, entry: Entry) -> str:
        """Path of a queued entry's body."""
        return os.path.join(self.entry_dir(entry.id), PAYLOAD)

    def secret(self, entry: Entry) -> dict[str, Any]:
        """A queued entry's credentials (empty when it needs none)."""
        try:
            with open(os.path.join(self.entry_dir(entry.id), SECRET), "rb") as f:
                data = json.loads(f.read(1 << 16))
                return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    # ---------------------------------------------------------------- changing

    def reschedule(self, entry: Entry, error: str, status: int | None, retry_after: float | None,
                   now: float | None = None) -> None:
        """Record a failed try and when to try again (meta.json rewritten atomically)."""
        now = time.time() if now is None else now
        entry.attempts += 1
        entry.last_error = error
        entry.last_status = status
        entry.next_attempt = now + next_delay(entry.attempts, retry_after)
        self._rewrite(entry)

    def _rewrite(self, entry: Entry, where: str = "queue") -> None:
        d = self.entry_dir(entry.id, where)
        tmp = os.path.join(d, META + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        _write_file(tmp, json.dumps(entry.to_json(), indent=1).encode())
        os.rename(tmp, os.path.join(d, META))

    def remove(self, entry: Entry) -> None:
        """Drop a delivered entry."""
        shutil.rmtree(self.entry_dir(entry.id), ignore_errors=True)

    def fail(self, entry: Entry, error: str, status: int | None, now: float | None = None) -> None:
        """Give up on *entry*: move it to ``failed/`` with the reason; its body and
        credentials are deleted."""
        entry.last_error = error
        entry.last_status = status
        entry.failed_at = time.time() if now is None else now
        src = self.entry_dir(entry.id)
        for name in (PAYLOAD, SECRET):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(src, name))
        self._rewrite(entry)
        dst = os.path.join(self._dir("failed"), entry.id)
        try:
            os.rename(src, dst)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(src, ignore_errors=True)

    def record_failure(self, entry: Entry, error: str, status: int | None) -> None:
        """Record a delivery that failed for good without ever being queued."""
        entry.last_error, entry.last_status, entry.failed_at = error, status, time.time()
        d = os.path.join(self._dir("failed"), entry.id)
        os.makedirs(d, mode=0o700, exist_ok=True)
        self._rewrite(entry, "failed")

    @contextlib.contextmanager
    def flush_lock(self, wait: bool = True) -> Iterator[bool]:
        """Hold the outbox's flush lock; yields False when *wait* is off and it is taken."""
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.path, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def stats(self) -> OutboxStats:
        """Queued and failed counts, the oldest queued entry's time, bytes queued."""
        queued = self.entries()
        size = 0
        for e in queued:
            with contextlib.suppress(OSError):
                size += os.path.getsize(self.payload_path(e))
        return OutboxStats(len(queued), len(self.entries("failed")),
                           min((e.created for e in queued), default=None), size)

    def clean_tmp(self, older_than: float = 3600.0) -> None:
        """Remove half-written entries a crashed reporter left in ``tmp/``."""
        d = os.path.join(self.path, "tmp")
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        limit = time.time() - older_than
        for name in names:
            p = os.path.join(d, name)
            with contextlib.suppress(OSError):
                if os.lstat(p).st_mtime < limit:
                    shutil.rmtree(p, ignore_errors=True)
