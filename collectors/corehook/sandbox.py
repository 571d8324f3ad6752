"""A confined child process for work on hostile input (the unwinder on a crash's core).

The crash hook's post-processing runs as root; the core and every file it names belong to
whoever crashed, possibly a container's root. :func:`run_confined` forks a child that, before
it touches any of that:

* has imported everything it will ever import, then loses the means to import more
  (``sys.path``, ``sys.meta_path`` and the path hooks emptied but for the built-in and frozen
  importers), so no module can come from a tree the crashing side controls;
* sits in a process group of its own, which the parent kills whole on its deadline;
* has a network and IPC namespace of its own (no socket reaches the host's 127.0.0.1 or
  abstract sockets), ``PR_SET_NO_NEW_PRIVS`` and is not dumpable (nobody ptraces it);
* runs as the crashing uid or ``nobody``, with no supplementary groups, capped in address
  space and CPU time, and unable to fork (``RLIMIT_NPROC`` 0, which binds every uid but root);
* reports back over a pipe only: the result or a one-line error, as JSON. It never logs
  itself (logging would open files or sockets, or import ``syslog``).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: Address-space cap of the child: a hostile core (giant notes, 100k threads) or a hostile
#: module file must fail there, not exhaust the host.
MEMORY_LIMIT = 2 << 30
#: Most bytes of result the parent accepts.
MAX_RESULT = 32 << 20
#: Extra seconds the parent grants past the child's own limits before SIGKILL (a child the
#: crashing user SIGSTOPs never acts on its SIGALRM).
KILL_GRACE = 5

# <linux/sched.h>, <linux/prctl.h>
_CLONE_NEWIPC, _CLONE_NEWNET = 0x08000000, 0x40000000
_PR_SET_DUMPABLE, _PR_SET_NO_NEW_PRIVS = 4, 38


@dataclass(frozen=True)
class ChildResult:
    """What came back: the job's value (``None`` on failure) and why it failed."""

    value: dict[str, object] | None
    error: str | None = None
    notes: tuple[str, ...] = field(default=())


def _libc_call(name: str, *args: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def drop_privileges(uid: int, gid: int) -> None:
    """Become *uid*:*gid* for good: no supplementary groups, real = effective = saved ids
    (setresuid to a non-zero uid clears every capability) and no new privileges by exec."""
    if os.geteuid() != 0 or uid == 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise PermissionError("could not drop privileges")


def limit_resources(time_limit: int) -> None:
    """Address space, CPU seconds (SIGXCPU, then SIGKILL from the kernel) and no forks.
    RLIMIT_CORE stays at the hook's 1 (no recursion)."""
    for which, value in ((resource.RLIMIT_AS, MEMORY_LIMIT),
                         (resource.RLIMIT_CPU, max(1, time_limit)),
                         (resource.RLIMIT_NPROC, 0)):
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))


def isolate() -> list[str]:
    """New network and IPC namespaces (as root), no new privileges, not dumpable. Returns
    notes on what could not be done (an unprivileged caller, a kernel without namespaces)."""
    notes = []
    if os.geteuid() == 0:
        try:
            _libc_call("unshare", _CLONE_NEWNET | _CLONE_NEWIPC)
        except OSError as exc:
            notes.append(f"no private network namespace: {exc.strerror}")
    for option in (_PR_SET_NO_NEW_PRIVS, _PR_SET_DUMPABLE):
        value = 1 if option == _PR_SET_NO_NEW_PRIVS else 0
        try:
            _libc_call("prctl", option, value, 0, 0, 0)
        except OSError as exc:
            notes.append(f"prctl {option}: {exc.strerror}")
    return notes


def forbid_imports() -> None:
    """From here on only built-in and frozen modules can be imported: every other import
    raises ImportError instead of searching a path."""
    import importlib.machinery

    allowed = (importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter)
    sys.meta_path[:] = [f for f in sys.meta_path if f in allowed]
    sys.path[:] = []
    sys.path_hooks[:] = []
    sys.path_importer_cache.clear()


def close_other_fds(keep: Iterable[int]) -> None:
    """Close every descriptor but *keep* and 0-2 (the root parent's problem directory, lock
    and log descriptors must not reach the child)."""
    if "syslog" in sys.modules:
        sys.modules["syslog"].closelog()
    low = 3
    for fd in sorted(set(keep)):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 65536)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


@dataclass(frozen=True)
class Confinement:
    """Who the child becomes and what it may keep."""

    uid: int
    gid: int
    time_limit: int
    keep_fds: tuple[int, ...] = ()


def _child_main(job: Callable[[], dict[str, object]], prepare: Callable[[], None],
                how: Confinement, out_fd: int) -> None:
    """The child's whole life; never returns."""
    status = 1
    try:
        os.setpgid(0, 0)
        close_other_fds(how.keep_fds + (out_fd,))
        prepare()
        signal.alarm(how.time_limit)
        limit_resources(how.time_limit)
        notes = isolate()
        drop_privileges(how.uid, how.gid)
        forbid_imports()
        try:
            reply: dict[str, object] = {"value": job(), "notes": notes}
            status = 0
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, not raised
            reply = {"error": _one_line(exc), "notes": notes}
        _write_all(out_fd, json.dumps(reply).encode())
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        pass
    finally:
        os._exit(status)


def _collect(rfd: int, deadline: float) -> tuple[bytes, bool]:
    """Read the child's reply until EOF, the deadline or the size cap; (data, cut short)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([rfd], [], [], left)[0]:
            return b"".join(chunks), True
        chunk = os.read(rfd, 1 << 20)
        if not chunk:
            return b"".join(chunks), False
        size += len(chunk)
        if size > MAX_RESULT:
            return b"", True
        chunks.append(chunk)


def _parse_reply(data: bytes) -> ChildResult:
    try:
        reply = json.loads(data)
    except ValueError:
        return ChildResult(None, "unreadable reply from the child")
    if not isinstance(reply, dict):
        return ChildResult(None, "unreadable reply from the child")
    notes = tuple(str(n) for n in reply.get("notes") or () if isinstance(n, str))
    value = reply.get("value")
    if isinstance(value, dict):
        return ChildResult(value, None, notes)
    return ChildResult(None, str(reply.get("error") or "no result"), notes)


def run_confined(job: Callable[[], dict[str, object]], how: Confinement,
                 prepare: Callable[[], None] = lambda: None) -> ChildResult:
    """Run *job* in a confined child (module docstring) and return its JSON-able result.

    *prepare* runs in the child before confinement: it imports what *job* needs. The parent
    kills the child's whole process group after ``time_limit`` + :data:`KILL_GRACE` seconds
    of wall time, whatever state it is in."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        _child_main(job, prepare, how, wfd)
    os.close(wfd)
    try:
        os.setpgid(pid, pid)  # also here: no window in which a kill misses the group
    except OSError:
        pass
    try:
        data, killed = _collect(rfd, time.monotonic() + how.time_limit + KILL_GRACE)
    finally:
        os.close(rfd)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        _, status = os.waitpid(pid, 0)
    if killed:
        return ChildResult(None, f"killed after {how.time_limit + KILL_GRACE} s or oversized reply")
    result = _parse_reply(data)
    if result.value is None and result.error == "unreadable reply from the child" and status != 0:
        return ChildResult(None, f"child failed (wait status {status})")
    return result
