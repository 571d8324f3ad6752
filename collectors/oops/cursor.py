"""Per-source read positions of ``crashkit oops collect/watch``, kept in the spool.

The state is one JSON file, ``<spool>/.oops-cursors.json``: ``{"version": 1, "sources":
{name: {...}}, "occurrences": {fingerprint: dir name}}``. Each source keeps what it
needs in its own section (kmsg: boot id + sequence number; journal: a cursor per boot;
files: a :class:`FileMark` per path; pstore: hashes of records already seen).
``occurrences`` remembers reports already turned into problem directories, so one
oops seen through several sources (kmsg, the journal and kern.log all carry it) is
counted once; ``refusals`` (key -> [time, line mark] pairs) does the same for the kernel's refusals of core
dumps (:mod:`collectors.corehook.refusals`), which carry no text to fingerprint but a pid,
a comm and a time.

The file is written atomically (temporary name, fsync, rename) under an exclusive
``flock`` on ``<spool>/.oops-cursors.lock`` held for the whole run, so ``collect`` and
``watch`` may run at the same time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

CURSOR_FILE = ".oops-cursors.json"
LOCK_FILE = ".oops-cursors.lock"
STATE_VERSION = 1
# Bytes hashed at the start of a file and before its scanned offset.
BLOCK = 4096
# Occurrence fingerprints kept; the oldest are forgotten first.
MAX_OCCURRENCES = 20000
# Kernel refusals of core dumps already counted (``refusals``: key -> [time, mark] pairs): the
# same mark is the same line; the same key from the other source within the window is the
# same refusal. Keys, and pairs per key, kept at most.
REFUSAL_WINDOW = 120.0
MAX_REFUSALS = 20000
MAX_TIMES_PER_REFUSAL = 16


class CursorStore:
    """The cursor file of one spool; use as a context manager (lock, load … save, unlock)."""

    def __init__(self, spool: str) -> None:
        self.spool = spool
        self.path = os.path.join(spool, CURSOR_FILE)
        self._lock_fd: int | None = None
        self.state: dict[str, Any] = _empty_state()

    def __enter__(self) -> CursorStore:
        self.lock()
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    def lock(self) -> None:
        """Take the spool's cursor lock (blocks while another collector holds it)."""
        if self._lock_fd is not None:
            return
        os.makedirs(self.spool, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(self.spool, LOCK_FILE),
                     os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock`."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def load(self) -> None:
        """Read the state file; a missing or corrupt file gives an empty state (logged)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            self.state = _empty_state()
            return
        try:
            with os.fdopen(fd, "rb") as f:
                data = json.loads(f.read().decode("utf-8"))
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError("unknown layout")
            if not isinstance(data.get("sources"), dict) or not isinstance(data.get("occurrences"), dict):
                raise ValueError("unknown layout")
            self.state = data
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cursor file, starting over: %s", self.path, exc)
            self.state = _empty_state()

    def save(self) -> None:
        """Write the state atomically (temporary file, fsync, rename)."""
        occ = self.state["occurrences"]
        if len(occ) > MAX_OCCURRENCES:  # dicts keep insertion order: drop the oldest
            for key in list(occ)[: len(occ) - MAX_OCCURRENCES]:
                del occ[key]
        refusals = self._refusals()
        if len(refusals) > MAX_REFUSALS:  # the ones last seen longest ago go first
            by_age = sorted(refusals, key=lambda k: max((e[0] for e in refusals[k]), default=0))
            for key in by_age[: len(refusals) - MAX_REFUSALS]:
                del refusals[key]
        data = json.dumps(self.state, indent=1, sort_keys=True).encode("utf-8")
        tmp = f"{self.path}.tmp.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def section(self, source: str) -> dict[str, Any]:
        """The mutable state of one source (created empty on first use)."""
        sections: dict[str, Any] = self.state["sources"]
        sec = sections.get(source)
        if not isinstance(sec, dict):
            sec = sections[source] = {}
        return sec

    def seen_occurrence(self, fingerprint: str) -> str | None:
        """Problem directory name already made for this occurrence, if any."""
        value = self.state["occurrences"].get(fingerprint)
        return value if isinstance(value, str) else None

    def add_occurrence(self, fingerprint: str, dirname: str) -> None:
        """Remember that this occurrence went into ``dirname``."""
        occ = self.state["occurrences"]
        occ.pop(fingerprint, None)
        occ[fingerprint] = dirname

    def _refusals(self) -> dict[str, Any]:
        found = self.state.get("refusals")
        if not isinstance(found, dict):
            found = self.state["refusals"] = {}
        return found

    def seen_refusal(self, key: str, when: float, mark: str, window: float = REFUSAL_WINDOW) -> bool:
        """True when the kernel refusal *key* was counted already: from the same line (*mark*),
        or from the other source (a mark of another kind: ``k`` kmsg, ``j`` journal) within
        *window* seconds of *when*."""
        entries = self._refusals().get(key)
        if not isinstance(entries, list):
            return False
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], (int, float))):
                continue
            if entry[1] == mark or (str(entry[1])[:1] != mark[:1] and abs(entry[0] - when) <= window):
                return True
        return False

    def add_refusal(self, key: str, when: float, mark: str) -> None:
        """Remember that the kernel refusal *key* at *when* (line *mark*) was counted."""
        refusals = self._refusals()
        entries = refusals.get(key)
        entries = [e for e in entries if isinstance(e, list)] if isinstance(entries, list) else []
        refusals[key] = (entries + [[when, mark]])[-MAX_TIMES_PER_REFUSAL:]


def _empty_state() -> dict[str, Any]:
    return {"version": STATE_VERSION, "sources": {}, "occurrences": {}}


# ---------------------------------------------------------------- file positions

ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, length)`` over a file's (decompressed) content; short at EOF."""


@dataclass(frozen=True)
class FileMark:
    """How far a log file was scanned, and enough of its content to recognise it again.

    A mark matches a file when the file starts with the same ``head_len`` bytes and has
    the same ``BLOCK`` bytes just before ``offset``. Content, not the path, identifies
    it, so a log rotated to ``.1`` and later compressed to ``.2.gz`` resumes where the
    previous run stopped, while a truncated or replaced file (copytruncate, a new log)
    is scanned from the start. ``inode`` is informational.
    """

    path: str
    inode: int
    offset: int
    head_len: int
    head_sha: str
    tail_sha: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict of the mark."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> FileMark | None:
        """Mark from its JSON form; None when malformed."""
        if not isinstance(data, dict):
            return None
        try:
            mark = cls(path=str(data["path"]), inode=int(data["inode"]), offset=int(data["offset"]),
                       head_len=int(data["head_len"]), head_sha=str(data["head_sha"]),
                       tail_sha=str(data["tail_sha"]))
        except (KeyError, TypeError, ValueError):
            return None
        if mark.offset < 0 or not 0 <= mark.head_len <= BLOCK:
            return None
        return mark


def _sha(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def make_mark(path: str, inode: int, offset: int, read_at: ReadAt) -> FileMark:
    """Mark recording that ``path`` was scanned up to byte ``offset``."""
    head = read_at(0, min(offset, BLOCK))
    tail_start = max(0, offset - BLOCK)
    tail = read_at(tail_start, offset - tail_start)
    return FileMark(path=path, inode=inode, offset=offset, head_len=len(head),
                    head_sha=_sha(head), tail_sha=_sha(tail))


def resume_offset(marks: list[FileMark], read_at: ReadAt, size: int | None = None) -> int:
    """Byte offset to resume scanning at: the furthest mark the content matches, else 0.

    ``size`` (when known, i.e. for uncompressed files) lets marks beyond the end of the
    file be rejected without reading.
    """
    best = 0
    heads: dict[int, str] = {}
    for mark in sorted(marks, key=lambda m: -m.offset):
        if mark.offset <= best or mark.head_len == 0:
            continue
        if size is not None and mark.offset > size:
            continue
        if mark.head_len not in heads:
            heads[mark.head_len] = _sha(read_at(0, mark.head_len))
        if heads[mark.head_len] != mark.head_sha:
            continue
        tail_start = max(0, mark.offset - BLOCK)
        tail = read_at(tail_start, mark.offset - tail_start)
        if len(tail) == mark.offset - tail_start and _sha(tail) == mark.tail_sha:
            best = mark.offset
    return best


def load_marks(section: dict[str, Any]) -> list[FileMark]:
    """The file marks stored in a source's section (malformed entries dropped)."""
    raw = section.get("files")
    if not isinstance(raw, dict):
        return []
    marks = (FileMark.from_json(v) for v in raw.values())
    return [m for m in marks if m is not None]
