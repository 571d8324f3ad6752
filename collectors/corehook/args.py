"""The crash hook's command line: what the kernel passes through core_pattern.

Our installed pattern (``crashkit hook install``) is::

    |<launcher> %P %p %i %I %u %g %s %t %c %h %d %e

=====  ==========  ==========================================================================
argv   specifier   meaning (``man 5 core``)
=====  ==========  ==========================================================================
1      ``%P``      PID in the initial PID namespace ("global pid": /proc is read with it)
2      ``%p``      PID as seen in the process's own PID namespace (the ``pid`` element)
3      ``%i``      TID of the thread that triggered the dump, in its own namespace (``tid``)
4      ``%I``      TID in the initial PID namespace
5      ``%u``      real UID of the process (initial user namespace)
6      ``%g``      real GID
7      ``%s``      signal number
8      ``%t``      time of dump, seconds since the Epoch
9      ``%c``      RLIMIT_CORE soft limit (bytes; 18446744073709551615 = unlimited)
10     ``%h``      hostname (uts nodename of the *crashing* process)
11     ``%d``      dump mode (PR_GET_DUMPABLE: 1 = normal, 2 = suid_dumpable "suidsafe")
12     ``%e``      comm (thread name, at most 15 bytes) — last: older kernels (before 5.3's
                   "split pipe command whitespace before expanding template") split an
                   expanded ``%e`` containing spaces into several argv words, so everything
                   from word 12 on is joined back with single spaces.
=====  ==========  ==========================================================================

Options may precede the specifiers (the generated launcher passes them): ``--config=PATH``.
Pure: argv in, :class:`HookArgs` out; :class:`~collectors.errors.HookError` on garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.errors import HookError

PATTERN_SPECIFIERS = "%P %p %i %I %u %g %s %t %c %h %d %e"
N_FIELDS = 12
#: RLIMIT_CORE values at or above this mean "unlimited" (RLIM_INFINITY is 2**64-1; abrt
#: also accepted "-1").
UNLIMITED = 1 << 62
MAX_PID = 1 << 22  # PID_MAX_LIMIT


@dataclass(frozen=True)
class HookArgs:
    """The crash as the kernel describes it in argv."""

    global_pid: int
    pid: int
    tid: int
    global_tid: int
    uid: int
    gid: int
    signal: int
    time: int
    core_limit: int | None  # None = unlimited
    hostname: str
    dumpable: int
    comm: str
    config: str | None = None


def _int(value: str, what: str, low: int = 0, high: int = (1 << 64) - 1) -> int:
    if not value.isascii() or not value.isdigit():
        raise HookError(f"{what}: not a decimal number: {value[:40]!r}")
    number = int(value)
    if not low <= number <= high:
        raise HookError(f"{what}: out of range: {number}")
    return number


def _core_limit(value: str) -> int | None:
    if value == "-1":
        return None
    number = _int(value, "%c")
    return None if number >= UNLIMITED else number


def parse_args(argv: list[str]) -> HookArgs:
    """Parse the hook's argv (without argv[0])."""
    words = list(argv)
    config: str | None = None
    while words and words[0].startswith("--"):
        opt = words.pop(0)
        if opt.startswith("--config="):
            config = opt[len("--config="):]
            if not config.startswith("/"):
                raise HookError("--config needs an absolute path")
        else:
            raise HookError(f"unknown option {opt[:40]!r}")
    # Very old kernels passed the whole expanded pattern as one word: split it.
    if len(words) == 1 and " " in words[0]:
        words = words[0].split(" ")
    if len(words) < N_FIELDS - 1:
        raise HookError(f"expected {N_FIELDS} arguments ({PATTERN_SPECIFIERS}), got {len(words)}")
    comm = " ".join(words[N_FIELDS - 1:])
    return HookArgs(
        global_pid=_int(words[0], "%P", 1, MAX_PID),
        pid=_int(words[1], "%p", 0, MAX_PID),
        tid=_int(words[2], "%i", 0, MAX_PID),
        global_tid=_int(words[3], "%I", 0, MAX_PID),
        uid=_int(words[4], "%u", 0, (1 << 32) - 1),
        gid=_int(words[5], "%g", 0, (1 << 32) - 1),
        signal=_int(words[6], "%s", 0, 128),
        time=_int(words[7], "%t", 0, (1 << 63) - 1),
        core_limit=_core_limit(words[8]),
        hostname=words[9][:256],
        dumpable=_int(words[10], "%d", 0, 3),
        comm=comm[:256],
        config=config,
    )
