"""The crash hook's command line: what the kernel passes through core_pattern.

Our installed pattern (``crashkit hook install``) is::

    |<launcher> %P %p %i %I %u %g %s %t %c %d %h %e

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
10     ``%d``      dump mode (PR_GET_DUMPABLE: 1 = normal, 2 = suid_dumpable "suidsafe")
11     ``%h``      hostname (uts nodename of the *crashing* process)
12     ``%e``      comm (thread name, at most 15 bytes)
=====  ==========  ==========================================================================

The two free-text specifiers come last, after every number. Since Linux 5.3 ("coredump:
split pipe command whitespace before expanding template") each specifier is exactly one argv
word. Older kernels expand the whole pattern and then split it on white space, so a hostname
(set by whoever owns the UTS namespace: a container root, any user after ``unshare -Ur -u``)
or a comm (``prctl(PR_SET_NAME)``) with spaces becomes several words, and an empty one none.
Placed before ``%d``, a hostname ``"x 1"`` read as dump mode 1 for a suidsafe crash. Now the
ten numbers are words 1-10 on every kernel; what follows is split back into hostname and
comm by :func:`_text_fields` (exact with two words, best effort otherwise).

Options may precede the specifiers (the generated launcher passes them): ``--config=PATH``.
Pure: argv in, :class:`HookArgs` out; :class:`~collectors.errors.HookError` on garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.errors import HookError

PATTERN_SPECIFIERS = "%P %p %i %I %u %g %s %t %c %d %h %e"
N_FIELDS = 12
N_NUMBERS = 10  # %P .. %d: one word each on every kernel
COMM_MAX = 15  # TASK_COMM_LEN 16, with the NUL
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
    if len(words) < N_NUMBERS:
        raise HookError(f"expected {N_FIELDS} arguments ({PATTERN_SPECIFIERS}), got {len(words)}")
    if not (words[9].isascii() and words[9].isdigit()):
        raise HookError(f"%d: not a decimal number: {words[9][:40]!r} (a core_pattern from before "
                        "%d moved ahead of %h? run `crashkit hook install` again)")
    hostname, comm = _text_fields(words[N_NUMBERS:])
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
        dumpable=_int(words[9], "%d", 0, 3),
        hostname=hostname[:256],
        comm=comm[:256],
        config=config,
    )


def _text_fields(words: list[str]) -> tuple[str, str]:
    """``(hostname, comm)`` from the words after ``%d``.

    Two words: one each (always so since Linux 5.3). Otherwise an older kernel split or
    dropped one of them, and which words were whose is a guess: the first word is a
    one-word hostname (the usual case) when the rest fits a comm (15 bytes); if it does not,
    the hostname had spaces: it is left unknown (``""``) and the last word taken as comm.
    """
    if len(words) == 2:
        return words[0], words[1]
    if not words:
        return "", ""
    comm = " ".join(words[1:])
    if len(comm.encode("utf-8", "surrogateescape")) <= COMM_MAX:
        return words[0], comm
    return "", words[-1]
