"""The guilty frame(s) of a report: walking its stack the way its headline form says.

A form (:mod:`collectors.oops.headlines`) lists ``parts``: line patterns to pass in order
(their captures are candidate frames, a RIP line's function say) and :data:`STACK`, a call
trace to read frame by frame. Frames of infrastructure (:mod:`collectors.oops.skiplist`)
are dropped as they are read; when a stack ends, one frame is picked from what was
collected: the first, or for stalls and hangs the one :func:`stall_frame` /
:func:`hang_frame` choose. A stack that yields nothing gives ``corrupted``. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ahocorasick_rs import MATCHKIND_LEFTMOST_FIRST, BytesAhoCorasick

from collectors.oops.headlines import STACK
from collectors.oops.rustsym import demangle
from collectors.oops.skiplist import SkipSet, compile_skips, skips, with_extra

CORRUPTED = "corrupted"

# Lines where one stack ends and another begins (a second trace is a new part).
STACK_START = [
    re.compile(r"Call [Tt]race"), re.compile(r"Allocated:"), re.compile(r"Allocated by task [0-9]++:"),
    re.compile(r"Freed:"), re.compile(r"Freed by task [0-9]++:"),
    re.compile(r"[^k] backtrace(?: \(crc [0-9a-fA-F]*+\))?:"),  # not "stack backtrace:"; kmemleak's crc
    re.compile(r"Backtrace:"), re.compile(r"Uninit was stored to memory at"),
    # RISC-V prints its kernel-mode stack right after show_regs()' last line
    re.compile(r"status: [0-9a-f]{16} badaddr: [0-9a-f]{16} cause: [0-9a-f]{16}"),
]
_RISCV_START = STACK_START[-1]
# All of them in one pattern (a line starts a stack when any of them is found in it).
_ANY_STACK_START = re.compile("|".join(f"(?:{rx.pattern})" for rx in STACK_START))
# A frame line: "[<addr>] [<addr>] name+0x..", "name.isra.0+0x.."; arm also names the caller.
FRAME_LINES = [
    re.compile(r"^ *+(?:\[<?(?:0x)?[0-9a-f]++>?\] ){0,2}([a-zA-Z0-9_]++)[.+]"),
    re.compile(r"^ *+\[<?(?:0x)?[0-9a-f]++>?\] \(([a-zA-Z0-9_.]++)\) from \[<?(?:0x)?[0-9a-f]++>?\] "
               r"\(([a-zA-Z0-9_]++)[.+]"),
]
# Fault injection stacks get mixed into reports: a report that shows one is unreliable.
CORRUPTED_LINE = re.compile(r"^(?: \[<?(?:0x)?[0-9a-f]++>?\])? should_fail(?:slab)?(?:\.[a-z0-9.]++)?\+0x")

# Syscall entry prefixes, which differ by architecture and kernel version: the shortest
# name left after removing one of them is the one a title uses.
SYSCALL_PREFIXES = ("SYSC_", "SyS_", "sys_", "__x64_", "__ia32_", "__arm64_", "____sys_", "___sys_", "__sys_",
                    "__se_", "__se_sys_", "__do_sys_", "compat_SYSC_", "compat_SyS_", "ksys_")

# Stalls and lockups loop across several functions; the frame that names them is the
# caller of the first of these dispatch points (syscall entry, softirq, workqueue...),
# or for ioctl/read/write-like entries the function the dispatch reached. Matched as
# substrings ("^"/"$" anchor, as in the skip list notation).
STALL_ANCHORS = compile_skips((
    # generic dispatchers (and some of their callers, so a renamed one does not lose the stack)
    "process_one_work", "do_syscall_", "do_fast_syscall_", "sysenter_dispatch", "tracesys_phase2",
    "el0_svc_handler", "invoke_syscall", "ret_fast_syscall", "netif_receive_skb", "do_softirq", "call_timer_fn",
    "_run_timers", "run_timer_softirq", "hrtimer_run", "run_ksoftirqd", "smpboot_thread_fn", "^kthread$",
    "start_secondary", "cpu_startup_entry", "ret_from_fork",
    # entries whose callee says what was done (file operations, ioctls)
    "vfs_write", "vfs_read", "vfs_iter_read", "vfs_iter_write", "do_iter_read", "do_iter_write", "call_read_iter",
    "call_write_iter", "new_sync_read", "new_sync_write", "vfs_ioctl", "ksys_ioctl", "compat_ioctl",
    "compat_sys_ioctl", "blkdev_driver_ioctl", "blkdev_ioctl", "do_iter_readv_writev", "^call_mmap", "mmap_region",
    "do_mmap", "do_dentry_open", "vfs_open",
    # socket operations
    "^sock_sendmsg", "^sock_recvmsg", "^sock_release", "^__sock_release", "^setsockopt$", "kernel_setsockopt",
    "sock_common_setsockopt", "^listen$", "kernel_listen", "sk_common_release", "^sock_mmap", "^accept$",
    "kernel_accept", "^sock_do_ioctl", "^sock_ioctl", "^compat_sock_ioctl", "^nfnetlink_rcv_msg",
    "^rtnetlink_rcv_msg", "^netlink_dump", "^socketpair", "^connect", "^ioctl", "^sys_socketpair",
    "^sys_connect", "^sys_ioctl",
    # page faults
    "__do_fault", "do_page_fault", "^page_fault$",
    # work done on the way back to user space
    "__fput", "task_work_run", "exit_to_usermode", "smp_call_function", "tasklet_action", "tasklet_hi_action",
))

# Hung tasks wait where the real problem is elsewhere: hangs in rtnl_lock and in the RCU
# grace-period waits are grouped, else the first frame that is not waiting machinery.
_HANG_ANCHORS = (("rtnl_lock", ""), ("synchronize_rcu", "synchronize_rcu"), ("synchronize_srcu", "synchronize_rcu"),
                 ("synchronize_net", "synchronize_rcu"), ("synchronize_sched", "synchronize_rcu"))
_HANG_WAITING = ("sched", "_lock", "_slowlock", "down", "rwsem", "completion", "kthread", "wait", "synchronize",
                 "context_switch", "__switch_to", "cancel_delayed_work", "rcu_barrier")


def strip_syscall_prefix(name: str) -> str:
    """``name`` without the longest syscall-entry prefix it has."""
    best = name
    for prefix in SYSCALL_PREFIXES:
        if name.startswith(prefix) and len(name) - len(prefix) < len(best):
            best = name[len(prefix):]
    return best


def stall_frame(frames: Sequence[str]) -> int:
    """Index of the frame a stall is titled with (``-1``: no dispatch point in the stack).

    A ``smp_call_function*`` anchor titles the report ``smp_call_function`` itself."""
    for i, frame in enumerate(frames):
        if skips(STALL_ANCHORS, frame):
            return i if "smp_call_function" in frame or i == 0 else i - 1
    return -1


def hang_frame(frames: Sequence[str]) -> tuple[int, str]:
    """``(index, name)`` of the frame a hung task is titled with (``(-1, "")``: none)."""
    for i, frame in enumerate(frames):
        for anchor, replacement in _HANG_ANCHORS:
            if anchor in frame:
                return i, replacement or frame
    for i, frame in enumerate(frames):
        if not any(word in frame for word in _HANG_WAITING):
            return i, frame
    return -1, ""


def pick(frames: Sequence[str], extractor: str) -> str:
    """The frame one stack contributes to a title (``""`` when it has none)."""
    if not frames:
        return ""
    stripped = [strip_syscall_prefix(f) for f in frames]
    if extractor == "stall":
        i = stall_frame(stripped)
        if i < 0:
            return ""
        return "smp_call_function" if "smp_call_function" in stripped[i] else stripped[i]
    if extractor == "hang":
        return hang_frame(stripped)[1]
    return stripped[0]


_SKIPS: dict[tuple[str, ...], SkipSet] = {}


def skip_set(extra: tuple[str, ...]) -> SkipSet:
    """The infrastructure skip list with a form's own entries (built once per form)."""
    found = _SKIPS.get(extra)
    if found is None:
        found = _SKIPS[extra] = with_extra(extra)
    return found


def _add(frames: list[str], match: re.Match[str] | None, skip: SkipSet) -> None:
    if match is None:
        return
    for group in match.groups():
        if group is None:
            continue
        name = demangle(group)
        if not skips(skip, name):
            frames.append(name)


def _is_stack_start(line: str) -> bool:
    return _ANY_STACK_START.search(line) is not None


def _frame_match(line: str) -> re.Match[str] | None:
    for rx in FRAME_LINES:
        m = rx.search(line)
        if m:
            return m
    return None


def walk(lines: Sequence[str], parts: Sequence[re.Pattern[str] | str], skip: SkipSet,
         choose: Callable[[list[str]], str], first_only: bool = False) -> tuple[list[str], bool]:
    """Frames picked by ``parts`` from ``lines`` (one per stack part, :data:`CORRUPTED`
    where a stack had none) and whether the walk found all it looked for. ``first_only``:
    ``choose`` takes the first frame of a stack, so a stack's later frames need not be read."""
    results: list[str] = []
    collected: list[str] = []
    ok = True
    stacks = 0
    at = 0
    index = 0
    while True:
        if index == len(parts) or (parts[index] == STACK and stacks > 0):
            frame = choose(collected)
            if not frame:
                frame, ok = CORRUPTED, False
            results.append(frame)
            collected = []
        if index == len(parts):
            return results, ok
        part = parts[index]
        if isinstance(part, str):
            stacks += 1
            following = parts[index + 1] if index + 1 < len(parts) else None
            at, clean, passed = _read_stack(lines, at, following, collected, skip, first_only)
            ok = ok and clean
            index += passed
        else:
            while at < len(lines):
                line = lines[at]
                at += 1
                if CORRUPTED_LINE.search(line):
                    ok = False
                    break
                m = part.search(line)
                if m:
                    _add(collected, m, skip)
                    break
        index += 1


# A literal that every line which starts a stack (STACK_START) or is a fault-injection frame
# (CORRUPTED_LINE) holds: where to look for the end of a stack whose first frame is known.
_STOP_WORDS = ("Call Trace", "Call trace", "Allocated", "Freed", "backtrace", "Backtrace:", "Uninit was stored",
               "status: ", "should_fail")


_STOP_AUTOMATON = BytesAhoCorasick([w.encode() for w in _STOP_WORDS], matchkind=MATCHKIND_LEFTMOST_FIRST)


def _skip_stack(lines: Sequence[str], at: int) -> tuple[int, bool]:
    """Pass the rest of a stack from ``lines[at]`` without reading its frames: ``(the index
    after the line that ended it, False when that was a fault-injection frame)``. The lines
    holding a stop word are found in one automaton pass over them all (the words are ASCII,
    so the UTF-8 bytes hold them where the text does; a line is one line in both)."""
    rest = "\n".join(lines[at:]).encode("utf-8", "surrogatepass")
    index, counted, done = at, 0, -1  # the line at byte `counted`; lines up to `done` were looked at
    for _, hit, _ in _STOP_AUTOMATON.find_matches_as_indexes(rest):
        index += rest.count(b"\n", counted, hit)
        counted = hit
        if index <= done:
            continue
        done = index
        line = lines[index]
        if CORRUPTED_LINE.search(line):
            return index + 1, False
        if _is_stack_start(line):
            return index + 1, True
    return len(lines), True


def _read_stack(lines: Sequence[str], at: int, following: re.Pattern[str] | str | None, collected: list[str],
                skip: SkipSet, first_only: bool) -> tuple[int, bool, int]:
    """Read one stack from ``lines[at]`` into ``collected``, up to a line that starts another
    stack or matches ``following`` (the next part, when a pattern); returns the line index to
    go on from, False when a fault-injection frame made the stack unreliable, and 1 when
    ``following`` matched (its part is passed too), else 0."""
    watch = following if isinstance(following, re.Pattern) else None
    while at < len(lines):
        if first_only and collected and watch is None:
            at, clean = _skip_stack(lines, at)
            return at, clean, 0
        line = lines[at]
        at += 1
        if CORRUPTED_LINE.search(line):
            return at, False, 0
        if _is_stack_start(line):
            return at, True, 0
        if watch is not None:
            m = watch.search(line)
            if m:
                _add(collected, m, skip)
                return at, True, 1
        _add(collected, _frame_match(line), skip)
    return at, True, 0


def guilty_frames(lines: Sequence[str], parts: Sequence[re.Pattern[str] | str],
                  parts2: Sequence[re.Pattern[str] | str], extra_skip: tuple[str, ...],
                  extractor: str) -> tuple[list[str], bool]:
    """Frames of a form's stack ``parts`` (``parts2`` when those find none) over ``lines``,
    which start where the form's headline matched."""
    skip = skip_set(extra_skip)

    def choose(frames: list[str]) -> str:
        return pick(frames, extractor)

    first_only = extractor not in ("stall", "hang")
    frames, ok = walk(lines, parts, skip, choose, first_only)
    if ok or not parts2:
        return frames, ok
    return walk(lines, parts2, skip, choose, first_only)


def has_riscv_stack(lines: Sequence[str]) -> bool:
    """Whether the report has the RISC-V register line that a kernel-mode stack follows."""
    return any(_RISCV_START.search(line) for line in lines)
