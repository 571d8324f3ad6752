"""libreport's ``.lock`` symlink protocol for problem directories (docs/formats/libreport.md §1).

A process locks a directory by creating the symlink ``.lock`` -> its decimal pid. A lock
whose holder no longer exists in ``/proc`` (or whose target is garbage) is stale and
removed; a lock naming our own pid is a recursive lock we must not remove. The same
protocol is used by abrtd and libreport tools, so either side can run concurrently.

Standard library only and cheap to import: the crash hook imports this module.
"""

from __future__ import annotations

import errno
import os
import time

from reporter.errors import LockedError, ProblemDirError

LOCK_NAME = ".lock"
# Waits of libreport's dd_lock() (microseconds there, seconds here).
WAIT_FOR_OTHER_PROCESS = 0.5  # opener waiting for a live lock holder
CREATE_LOCK_WAIT = 0.01  # creator waiting for a live lock holder
SYMLINK_RETRY_WAIT = 0.01  # .lock vanished between symlink() and readlink()


def try_lock(dir_fd: int, pid: str) -> tuple[str, str]:
    """libreport ``create_symlink_lockfile_at``: ("locked"|"ours"|"busy", holder pid)."""
    while True:
        try:
            os.symlink(pid, LOCK_NAME, dir_fd=dir_fd)
            return "locked", pid
        except FileExistsError:
            pass
        try:
            holder = os.readlink(LOCK_NAME, dir_fd=dir_fd)
        except FileNotFoundError:
            time.sleep(SYMLINK_RETRY_WAIT)  # unlocked meanwhile; don't spin
            continue
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # .lock is not a symlink: treat as stale junk
                holder = ""
            else:
                raise
        if holder == pid:
            return "ours", pid  # recursive lock: not ours to unlink on close
        if holder.isascii() and holder.isdigit() and os.path.exists(f"/proc/{holder}"):
            return "busy", holder
        # Stale: its holder died (or the target is garbage). It may be gone already.
        try:
            os.unlink(LOCK_NAME, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise ProblemDirError("'.lock' is a directory") from None


def acquire(dir_fd: int, where: str, *, wait: bool, sleep: float, deadline: float | None) -> bool:
    """Lock the directory at *dir_fd* (named *where* in messages) for this process.

    A live holder is polled every *sleep* seconds until the ``time.monotonic()``
    *deadline* (``None``: forever); :class:`LockedError` when *wait* is false or the
    deadline passes. Returns whether we created the lock (False: it was already ours).
    """
    pid = str(os.getpid())
    while True:
        state, holder = try_lock(dir_fd, pid)
        if state != "busy":
            return state == "locked"
        now = time.monotonic()
        if not wait or (deadline is not None and now >= deadline):
            raise LockedError(f"'{where}' is locked by process {holder}")
        time.sleep(sleep if deadline is None else min(sleep, deadline - now))


def release(dir_fd: int, pid: int) -> None:
    """Remove the ``.lock`` of the directory at *dir_fd* if it still names *pid*."""
    try:
        # Only remove the lock if it is still ours (never somebody else's).
        if os.readlink(LOCK_NAME, dir_fd=dir_fd) == str(pid):
            os.unlink(LOCK_NAME, dir_fd=dir_fd)
    except OSError:
        pass
