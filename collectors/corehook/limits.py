"""Spool limits of the crash hook: size cap, free-space floor, crash-loop rate file.

* :func:`trim_spool` deletes problem directories while the spool is over its cap, the one
  with the largest ``size_KiB × age_minutes`` first (abrtd's rule, docs/formats/libreport.md
  §1.7), skipping locked directories and the ones the caller protects.
* :func:`has_free_space` is the floor below which new crashes are not saved.
* :class:`RateFile` is ``<spool>/.crashkit-hook/rate.json``: per ``uid + executable``, the
  start of the current window, how many crashes it saw, and the directory to bump once
  the crash-loop limit is reached. Opened ``O_NOFOLLOW`` and ``flock``-ed.
"""

from __future__ import annotations

from typing import Any

import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from collectors.corehook import gate
from reporter import dirfs
from reporter.dumpdir import DumpDir, iter_problem_dirs
from reporter.errors import ReporterError

STATE_DIR = gate.STATE_DIR
RATE_FILE = "rate.json"
MAX_RATE_BYTES = 1 << 20
MAX_RATE_ENTRIES = 1000
MAX_TRIM_DELETIONS = 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def has_free_space(spool: str, floor: int) -> bool:
    """True when the spool's filesystem has at least *floor* bytes available (0 = no floor)."""
    if floor <= 0:
        return True
    st = os.statvfs(spool)
    return st.f_bavail * st.f_frsize >= floor


def dir_size(path: str) -> int:
    """Bytes used by the regular files of a problem directory (one level + .libreport), no symlinks."""
    total = 0
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return 0
    try:
        with os.scandir(fd) as it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    total += st.st_blocks * 512 or st.st_size
    finally:
        os.close(fd)
    return total


@dataclass(frozen=True)
class SpoolEntry:
    path: str
    size: int
    mtime: float


def pick_victim(entries: list[SpoolEntry], now: float) -> SpoolEntry | None:
    """abrtd's choice: the entry with the largest ``size_KiB × age_minutes`` (pure)."""
    best, best_score = None, -1.0
    for entry in entries:
        age_min = max(0.0, (now - entry.mtime) / 60.0)
        # +1 minute keeps a very young big directory comparable instead of scoring 0.
        score = (entry.size / 1024.0) * (age_min + 1.0)
        if score > best_score:
            best, best_score = entry, score
    return best


def _is_locked(path: str) -> bool:
    try:
        holder = os.readlink(os.path.join(path, ".lock"))
    except OSError:
        return False
    return holder.isdigit() and os.path.exists(f"/proc/{holder}")


def scan_spool(spool: str) -> list[SpoolEntry]:
    """Size and mtime of every problem directory in *spool*."""
    entries = []
    for path in iter_problem_dirs(spool):
        try:
            mtime = os.stat(path, follow_symlinks=False).st_mtime
        except OSError:
            continue
        entries.append(SpoolEntry(path, dir_size(path), mtime))
    return entries


def trim_spool(spool: str, cap: int, protect: set[str] | frozenset[str] = frozenset(),
               now: float | None = None) -> list[str]:
    """Delete directories until the spool uses at most *cap* bytes; returns what was deleted."""
    if cap <= 0:
        return []
    now = time.time() if now is None else now
    entries = scan_spool(spool)
    total = sum(e.size for e in entries)
    protected = {os.path.realpath(p) for p in protect}
    candidates = [e for e in entries if os.path.realpath(e.path) not in protected]
    deleted: list[str] = []
    while total > cap and candidates and len(deleted) < MAX_TRIM_DELETIONS:
        victim = pick_victim(candidates, now)
        assert victim is not None
        candidates.remove(victim)
        if _is_locked(victim.path):
            continue
        try:
            dd = DumpDir.open(victim.path, wait=False)
            dd.delete()
        except (OSError, ReporterError):  # locked or vanished meanwhile: next candidate
            continue
        total -= victim.size
        deleted.append(victim.path)
    return deleted


def _remove_tree(spool: str, name: str) -> None:
    """rm -r of *name* in *spool*, never following symlinks (dirfs works relative to fds)."""
    spool_fd = dirfs.open_dir(spool)
    try:
        dirfs.remove_subtree(spool_fd, name)
    finally:
        os.close(spool_fd)


def sweep_abandoned(spool: str, now: float | None = None, min_age: float = 60.0) -> list[str]:
    """Remove ``*.new`` directories whose creator died (a hook killed mid-capture).

    A creator holds the ``.lock`` symlink for the whole capture, so a ``.new`` directory
    whose lock names a dead process is abandoned at once; one without any lock only after
    *min_age* seconds (the creator may be between mkdir and locking)."""
    now = time.time() if now is None else now
    removed: list[str] = []
    try:
        names = [n for n in os.listdir(spool) if n.endswith(".new")]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(spool, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            continue
        try:
            holder = os.readlink(os.path.join(path, ".lock"))
        except FileNotFoundError:
            holder = None
        except OSError:
            continue
        if holder is not None and holder.isdigit() and os.path.exists(f"/proc/{holder}"):
            continue
        if holder is None and now - st.st_mtime < min_age:
            continue
        try:
            _remove_tree(spool, name)
            removed.append(path)
        except OSError:
            continue
    return removed


# ------------------------------------------------------------------ spool-wide lock

DEDUP_LOCK = "dedup.lock"


class SpoolLock:
    """``flock`` on ``<spool>/.crashkit-hook/dedup.lock`` for the duplicate look-up + commit.

    A lock file that cannot be used (planted symlink, foreign owner) is reported through
    *on_error* and the block runs unlocked: a broken lock must never cost a crash.
    """

    def __init__(self, spool: str, on_error: Callable[[OSError], object] | None = None) -> None:
        self.spool = spool
        self.on_error = on_error
        self._fd = -1

    def __enter__(self) -> SpoolLock:
        try:
            dfd = open_state_dir(self.spool)
            try:
                fd = os.open(DEDUP_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             0o600, dir_fd=dfd)
            finally:
                os.close(dfd)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                os.close(fd)
                raise PermissionError(errno.EPERM, "lock file is not a plain file", DEDUP_LOCK)
            self._fd = fd
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self.on_error is not None:
                self.on_error(exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the flock
            self._fd = -1


try_slot = gate.try_slot


# ------------------------------------------------------------------ crash-loop rate file

def open_state_dir(spool: str) -> int:
    """Open (creating, mode 0700) ``<spool>/.crashkit-hook``; refuses a symlink or foreign owner."""
    return gate.open_state(spool, check_spool=False)


class RateFile:
    """The locked crash-loop table; use as a context manager (holds ``flock`` while open)."""

    def __init__(self, spool: str) -> None:
        dfd = open_state_dir(spool)
        try:
            self._fd = os.open(RATE_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                               0o600, dir_fd=dfd)
        finally:
            os.close(dfd)
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(self._fd)
            raise PermissionError(errno.EPERM, "rate file is not a plain file", RATE_FILE)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        raw = os.pread(self._fd, MAX_RATE_BYTES, 0)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        self.entries: dict[str, dict[str, Any]] = data if isinstance(data, dict) else {}

    def __enter__(self) -> RateFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the flock
            self._fd = -1

    def save(self) -> None:
        if len(self.entries) > MAX_RATE_ENTRIES:
            newest = sorted(self.entries.items(), key=lambda kv: kv[1].get("start", 0))
            self.entries = dict(newest[-MAX_RATE_ENTRIES:])
        data = json.dumps(self.entries, separators=(",", ":")).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def hit(self, key: str, now: float, window: int, limit: int) -> dict[str, Any]:
        """Count one crash of *key*; returns its entry (``n`` = crashes in the window)."""
        entry = self.entries.get(key)
        if not isinstance(entry, dict) or now - float(entry.get("start", 0)) > window:
            entry = {"start": now, "n": 0, "dir": entry.get("dir") if isinstance(entry, dict) else None,
                     "pending": 0}
        entry["n"] = int(entry.get("n", 0)) + 1
        self.entries[key] = entry
        # Forget other stale entries so the file stays small.
        for other in [k for k, v in self.entries.items()
                      if isinstance(v, dict) and now - float(v.get("start", 0)) > max(window, 3600)]:
            if other != key:
                del self.entries[other]
        return entry


def rate_key(uid: int, executable: str) -> str:
    return f"{uid}:{executable}"


def check_crash_loop(spool: str, key: str, now: float, window: int, limit: int) -> str | None:
    """Count this crash; when *key* is over *limit* in its window, return the directory that
    absorbs it (``None``: capture normally). Over the limit with no directory yet, the crash
    is remembered as ``pending`` and added when the capturing hook calls :func:`record_dir`.
    Returns ``""`` for "over the limit, counted as pending"."""
    if limit <= 0:
        return None
    with RateFile(spool) as rate:
        entry = rate.hit(key, now, window, limit)
        over = entry["n"] > limit
        target = entry.get("dir") if over else None
        if over and not (isinstance(target, str) and _is_dir(spool, target)):
            entry["pending"] = int(entry.get("pending", 0)) + 1
            target = ""
        rate.save()
    return target


def record_dir(spool: str, key: str, dirname: str, now: float) -> int:
    """Remember *dirname* as *key*'s directory; returns (and clears) the pending count."""
    with RateFile(spool) as rate:
        entry = rate.entries.get(key)
        if not isinstance(entry, dict):
            entry = {"start": now, "n": 1, "pending": 0}
        pending = int(entry.get("pending", 0))
        entry["pending"] = 0
        entry["dir"] = dirname
        rate.entries[key] = entry
        rate.save()
    return pending


def retarget_dir(spool: str, old: str, new: str) -> None:
    """Crash-loop entries that count into directory *old* count into *new* from now on
    (post-processing merged *old* into *new*). No rate file: nothing to do."""
    try:
        if not stat.S_ISDIR(os.lstat(os.path.join(spool, STATE_DIR)).st_mode):
            return
    except FileNotFoundError:
        return
    with RateFile(spool) as rate:
        changed = False
        for entry in rate.entries.values():
            if isinstance(entry, dict) and entry.get("dir") == old:
                entry["dir"] = new
                changed = True
        if changed:
            rate.save()


def _is_dir(spool: str, name: str) -> bool:
    if "/" in name or name in (".", ".."):
        return False
    try:
        return stat.S_ISDIR(os.stat(os.path.join(spool, name), follow_symlinks=False).st_mode)
    except OSError:
        return False
