"""The diagnose section plugin base and the context a section collects through.

A section is a small class with ``name``, ``title``, a ``time_limit`` (seconds), a size
``budget`` (bytes of collected text) and one method, :meth:`Section.collect`. Everything it
collects goes through :class:`SectionContext`: files (bounded, never a denied path),
commands (the one runner, cut at the section's remaining time) and generated text/JSON.
Each item becomes a manifest entry with its source, size, sha256, duration and error;
failures are recorded, never raised.
"""

from __future__ import annotations

import abc
import fnmatch
import hashlib
import json
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from collectors import runner

if TYPE_CHECKING:
    from collectors.diagnose.bundle import Bundle

MiB = 1 << 20
#: Paths whose content never goes into a bundle, with or without --clean.
DENIED = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd",
          "*/.ssh/id_*", "/etc/ssh/ssh_host_*_key", "*.key", "*.pem", "/proc/*/environ",
          "/etc/crashkit/*token*")


def denied(path: str) -> bool:
    """True for a path the bundle must never read (private keys, shadow files, environments)."""
    return any(fnmatch.fnmatch(path, pat) for pat in DENIED)


@dataclass
class Options:
    """What ``crashkit diagnose`` was asked for."""

    since: float
    clean: bool = False
    self_test: bool = False
    with_cores: bool = False
    spool: str | None = None
    root: str = "/"


@dataclass
class ManifestEntry:
    path: str
    section: str
    source: str
    size: int = 0
    sha256: str | None = None
    duration: float = 0.0
    error: str | None = None
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "section": self.section, "source": self.source, "size": self.size,
                "sha256": self.sha256, "duration": round(self.duration, 4), "error": self.error,
                "truncated": self.truncated}


class SectionContext:
    """What a section collects through (thread-safe; one per section run)."""

    def __init__(self, section: Section, bundle: Bundle, options: Options, shared: dict[str, Any],
                 deadline: float) -> None:
        self.section = section
        self.bundle = bundle
        self.options = options
        self.shared = shared           # results other sections and the report use
        self.deadline = deadline
        self.used = 0
        self.closed = False
        self.items = 0
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- budget
    def remaining_time(self) -> float:
        return max(self.deadline - time.monotonic(), 0.0)

    def _room(self) -> int:
        return max(min(self.section.budget - self.used, self.bundle.budget_left()), 0)

    def _store(self, arcname: str, source: str, data: bytes | None, start: float,
               error: str | None = None, truncated: bool = False, binary: bool = False) -> ManifestEntry:
        path = f"{self.section.name}/{arcname}"
        entry = ManifestEntry(path, self.section.name, source, error=error, truncated=truncated)
        if self.closed:
            entry.error = "section time limit reached"
            data = None
        if data is not None:
            room = self._room()
            if len(data) > room:
                data, entry.truncated = data[-room:] if room else b"", True
                entry.error = entry.error or "size budget reached"
            with self._lock:
                self.used += len(data)
            self.bundle.charge(len(data))
            entry.size = len(data)
            entry.sha256 = hashlib.sha256(data).hexdigest()
        entry.duration = time.monotonic() - start
        self.bundle.add(entry, data, binary=binary)
        self.items += 1
        return entry

    # ----------------------------------------------------------------- items
    def add_bytes(self, arcname: str, data: bytes, source: str) -> ManifestEntry:
        return self._store(arcname, source, data, time.monotonic())

    def add_text(self, arcname: str, text: str, source: str) -> ManifestEntry:
        return self._store(arcname, source, text.encode("utf-8", "surrogateescape"), time.monotonic())

    def add_json(self, arcname: str, obj: Any, source: str) -> ManifestEntry:
        return self.add_text(arcname, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n", source)

    def add_error(self, arcname: str, source: str, error: str) -> ManifestEntry:
        return self._store(arcname, source, None, time.monotonic(), error=error)

    def add_file(self, arcname: str, host_path: str, limit: int | None = None, tail: bool = True,
                 binary: bool = False) -> ManifestEntry:
        """A file (its last *limit* bytes when *tail*), or the reason it could not be read.
        *binary* content (a core) is stored as it is: no filter could keep it valid."""
        start = time.monotonic()
        path = host_path if self.options.root == "/" else os.path.join(self.options.root, host_path.lstrip("/"))
        if denied(host_path) or denied(os.path.realpath(path)):
            return self._store(arcname, host_path, None, start, error="not collected: may hold secrets")
        cap = min(limit or self.section.budget, self._room())
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            return self._store(arcname, host_path, None, start, error=exc.strerror or str(exc))
        try:
            data, truncated = _read_bounded(fd, cap, tail)
        except OSError as exc:
            return self._store(arcname, host_path, None, start, error=exc.strerror or str(exc))
        finally:
            os.close(fd)
        return self._store(arcname, host_path, data, start, truncated=truncated,
                           error="size budget reached" if truncated else None, binary=binary)

    def add_command(self, arcname: str, argv: Sequence[str], timeout: float = 30.0,
                    env: dict[str, str] | None = None) -> runner.CommandResult:
        """A command's stdout (stderr appended when it failed), cut at the section's time."""
        start = time.monotonic()
        limit = max(min(timeout, self.remaining_time()), 0.1)
        res = runner.run(list(argv), timeout=limit, env=env, max_stdout=max(self._room(), 1))
        source = " ".join(argv)
        if res.absent:
            self._store(arcname, source, None, start, error="not installed")
            return res
        data = res.stdout
        if not res.ok and res.stderr:
            data += b"\n--- stderr ---\n" + res.stderr
        self._store(arcname, source, data, start, error=res.failure, truncated=res.stdout_truncated)
        return res


def _read_bounded(fd: int, cap: int, tail: bool) -> tuple[bytes, bool]:
    """At most *cap* bytes; for a regular file read with *tail*, its last *cap* bytes."""
    try:
        size = os.fstat(fd).st_size
    except OSError:
        size = 0
    if tail and size > cap:
        os.lseek(fd, size - cap, os.SEEK_SET)
        data = _read_all(fd, cap)
        nl = data.find(b"\n")
        return (data[nl + 1:] if 0 <= nl < 4096 else data), True
    data = _read_all(fd, cap + 1)
    return data[:cap], len(data) > cap


def _read_all(fd: int, limit: int) -> bytes:
    chunks, left = [], limit
    while left > 0:
        try:
            chunk = os.read(fd, min(left, 1 << 20))
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Section(abc.ABC):
    """One part of the bundle. ``after`` names sections whose ``shared`` results it needs."""

    name: ClassVar[str]
    title: ClassVar[str]
    time_limit: ClassVar[float] = 10.0
    budget: ClassVar[int] = 8 * MiB
    after: ClassVar[tuple[str, ...]] = ()
    registry: ClassVar[list[type[Section]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Only the package's own modules register: a section defined elsewhere (a test, an
        # extension) is run by passing it to run_sections() explicitly.
        if "name" in cls.__dict__ and cls.__module__.startswith("collectors.diagnose.sections."):
            Section.registry.append(cls)

    @abc.abstractmethod
    def collect(self, ctx: SectionContext) -> None:
        """Collect this section's items through *ctx*; failures go into the manifest."""


@dataclass
class SectionRun:
    """How one section went (the manifest's ``sections`` list)."""

    name: str
    title: str
    time_limit: float
    budget: int
    duration: float = 0.0
    items: int = 0
    size: int = 0
    status: str = "pending"     # ok | error | timed out
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "time_limit": self.time_limit,
                "budget": self.budget, "duration": round(self.duration, 4), "items": self.items,
                "size": self.size, "status": self.status, "error": self.error}
