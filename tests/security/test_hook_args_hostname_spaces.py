"""Issue 15 §6: on kernels before 5.3 a ``%h`` with spaces shifted the hook's arguments.

Those kernels expand the whole core_pattern and then split it on white space (``argv_split``);
5.3 ("coredump: split pipe command whitespace before expanding template") splits first, so
each specifier is one argv word. A hostname is set by whoever owns the UTS namespace (any
container root, any user with ``unshare -Ur -u``) and may hold spaces; ``comm`` (``%e``) is
set by the process itself (``prctl(PR_SET_NAME)``). With ``%h`` before ``%d`` a hostname such
as ``"x 1"`` made the hook read ``%d`` = 1 for a ``%d`` = 2 ("suidsafe", root-only) crash.

Both kernels are modelled on the pattern ``crashkit hook install`` writes; the fields the hook
decides on must come out right whatever the hostname and comm hold.
"""

from __future__ import annotations

import itertools
import re

import pytest

from collectors.corehook import install
from collectors.corehook.args import parse_args

LAUNCHER = "/var/lib/crashkit/crashkit-hook"
HOSTNAMES = ["host", "x 1", "evil 2 1", "a 0 b 3", "1", "2 2", "", " lead", "trail ", "many   spaces"]
COMMS = ["crasher", "Web Content", "", "1 2", "x 1 2 3 4 5 6"]


def values(hostname: str, comm: str, dumpable: int) -> dict[str, str]:
    return {"%P": "4242", "%p": "7", "%i": "8", "%I": "4243", "%u": "1000", "%g": "1001", "%s": "11",
            "%t": "1700000000", "%c": "18446744073709551615", "%h": hostname, "%d": str(dumpable),
            "%e": comm}


def expand(word: str, table: dict[str, str]) -> str:
    return re.sub(r"%[a-zA-Z]", lambda m: table[m.group()], word)


def argv_before_5_3(pattern: str, table: dict[str, str]) -> list[str]:
    """format_corename() expands everything, then argv_split() splits on white space."""
    return expand(pattern[1:], table).split()[1:]


def argv_since_5_3(pattern: str, table: dict[str, str]) -> list[str]:
    """The template is split on spaces first: one argv word per specifier, even an empty one."""
    return [expand(word, table) for word in pattern[1:].split()][1:]


CASES = list(itertools.product(HOSTNAMES, COMMS, (1, 2)))


@pytest.mark.parametrize(("hostname", "comm", "dumpable"), CASES)
def test_fixed_fields_never_shift(hostname: str, comm: str, dumpable: int) -> None:
    pattern = install.pattern_for(LAUNCHER)
    for argv in (argv_before_5_3(pattern, values(hostname, comm, dumpable)),
                 argv_since_5_3(pattern, values(hostname, comm, dumpable))):
        a = parse_args(argv)
        assert (a.global_pid, a.pid, a.tid, a.global_tid, a.uid, a.gid, a.signal, a.time) == \
            (4242, 7, 8, 4243, 1000, 1001, 11, 1700000000), argv
        assert a.core_limit is None and a.dumpable == dumpable, argv


@pytest.mark.parametrize(("hostname", "comm", "dumpable"), CASES)
def test_text_fields(hostname: str, comm: str, dumpable: int) -> None:
    pattern = install.pattern_for(LAUNCHER)
    a = parse_args(argv_since_5_3(pattern, values(hostname, comm, dumpable)))
    assert (a.hostname, a.comm) == (hostname, comm)  # one word each: exact
    a = parse_args(argv_before_5_3(pattern, values(hostname, comm, dumpable)))
    if hostname and not any(c.isspace() for c in hostname):
        # The usual case on old kernels: a plain hostname, a comm that may have spaces.
        assert (a.hostname, a.comm) == (hostname, " ".join(comm.split())), (hostname, comm)
    else:
        # Which words were the hostname's cannot be known then; but the text fields only
        # ever hold words of the hostname and comm, never a value of another specifier.
        words = set((a.hostname + " " + a.comm).split())
        assert words <= set((hostname + " " + comm).split()), (hostname, comm, a)
