"""Which kernel line starts which kind of report, and the lines that end or reset one.

Start markers follow ABRT's "suspicious strings" (docs/formats/libreport.md §5.2) and the
report headers the kernel prints (lib/bug.c, kernel/panic.c, mm/kasan/report.c,
kernel/locking/lockdep.c, kernel/watchdog.c, kernel/hung_task.c, kernel/rcu/tree_stall.h,
mm/oom_kill.c, arch/x86/kernel/traps.c, ...).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from collectors.oops.headlines import HEADERS, Header, header_of
from collectors.oops import possessive

# Stable kind identifiers (documented in docs/oops.md).
KINDS: tuple[str, ...] = (
    "null-ptr-deref", "paging-request", "oops", "gpf", "bug", "warning", "panic",
    "soft-lockup", "hard-lockup", "hung-task", "rcu-stall", "kasan", "kmsan", "kcsan",
    "ubsan", "kfence", "lockdep", "sleeping-in-atomic", "scheduling-while-atomic",
    "list-corruption", "refcount", "bad-page", "workqueue-lockup", "stack-protector",
    "double-fault", "divide-error", "invalid-opcode", "mce", "page-alloc-failure",
    "stack-overflow", "oom", "info", "memory-leak", "slab-corruption", "unwinder", "rust-panic",
    "netdev-refcount", "vfs", "assertion", "reboot", "harness",
)

# Kinds whose body runs to a line of "=" (mm/kasan/report.c end_report(), kcsan, kmsan, kfence).
SANITIZER_BODY = frozenset({"kasan", "kmsan", "kcsan", "kfence"})
# Kinds syzkaller has no headline for: their title stays theirs even when a headline joins
# them (the "Kernel panic" that follows an OOM kill, a hard lockup, a machine check).
OWN_TITLE = frozenset({"oom", "mce", "hard-lockup", "page-alloc-failure"})
# Kinds whose report is their first line (the harness's messages, a reboot, refcount waits).
ONE_LINE = frozenset({"reboot", "harness", "netdev-refcount", "vfs", "assertion"})
# Kinds whose dependency chains contain frames before the real "stack backtrace:".
LOCKDEP_BODY = frozenset({"lockdep"})


class Marker(NamedTuple):
    """A start marker found on a line."""

    kind: str
    detail: str  # kind-specific sub-type ("use-after-free", the lockdep headline, ...)
    weak: bool  # only starts a report when none is open (else it is part of the open one)
    die: bool  # an "Oops"/trap line that continues a preceding BUG/unable-to-handle line


# Lines that user-space traps print; they are not kernel reports (arch/x86/kernel/traps.c).
_USER_TRAP = possessive.compile(r"traps: \S+\[\d++\] |segfault at |DEBUG:")

_DIE_CODE = r": [0-9a-f]{1,8} \[#\d++\]"
_DIE_NAMES = (
    r"general protection fault|invalid opcode|divide error|double fault|stack segment|bounds"
    r"|coprocessor segment overrun|invalid TSS|segment not present|alignment check"
    r"|fpu exception|simd exception|iret exception|int3"
)
_LOCKDEP = (
    r"possible circular locking dependency detected|possible recursive locking detected"
    r"|inconsistent lock state|possible irq lock inversion dependency detected"
    r"|suspicious RCU usage|bad unlock balance detected|held lock freed"
    r"|lock held when returning to user space|nested lock was not taken"
    r"|bad contention detected|lock held at task exit time"
    r"|(?:SOFT|HARD)IRQ-safe -> (?:SOFT|HARD)IRQ-unsafe lock order detected"
    r"|Nested lock was not taken|chain_key collision|lockdep bfs error"
)

# (regex, kind, weak, die); first match wins, so specific patterns come first. A ".*X" after
# a literal starts at the literal's first occurrence only ("^(?>.*?LIT)"): if X is not after
# the first one it is after none, and search() from every occurrence would be quadratic.
_TABLE: list[tuple[re.Pattern[str], str, bool, bool]] = [
    (possessive.compile(r"Kernel panic - not syncing: (stack-protector: Kernel stack is corrupted in: ?(.*))"), "stack-protector", False, False),
    (possessive.compile(r"^(?>.*?Kernel panic - not syncing: )((?i:.*?machine check.*))"), "mce", False, False),
    (possessive.compile(r"Kernel panic - not syncing: ?(.*)"), "panic", False, False),
    (possessive.compile(r"BUG: KASAN: ([\w-]++)"), "kasan", False, False),
    (possessive.compile(r"KASAN: ([\w-]++) in range"), "kasan", True, False),
    (possessive.compile(r"BUG: KMSAN: ([\w-]++)"), "kmsan", False, False),
    (possessive.compile(r"BUG: KCSAN: ([\w-]++)"), "kcsan", False, False),
    (possessive.compile(r"BUG: KFENCE: ([\w-]++(?: (?:read|write))?)"), "kfence", False, False),
    (possessive.compile(r"UBSAN: ([\w-]++(?: behaviour)?) in "), "ubsan", False, False),
    (possessive.compile(r"BUG: (?:unable to handle )?[Kk]ernel NULL pointer dereference"), "null-ptr-deref", False, False),
    # powerpc (arch/powerpc/mm/fault.c bad_kernel_fault / __bad_page_fault)
    (possessive.compile(r"BUG: Unable to handle kernel (?:data access|instruction fetch)"), "paging-request", False, False),
    (possessive.compile(r"[Uu]nable to handle kernel NULL pointer dereference"), "null-ptr-deref", False, False),
    (possessive.compile(r"BUG: unable to handle (?:kernel paging request|page fault)"), "paging-request", False, False),
    (possessive.compile(r"[Uu]nable to handle kernel (?:paging request|access|pointer dereference)"), "paging-request", False, False),
    (possessive.compile(r"BUG: unable to handle kernel"), "paging-request", False, False),
    (possessive.compile(r"BUG: soft lockup"), "soft-lockup", False, False),
    (possessive.compile(r"(?:Watchdog detected hard LOCKUP|BUG: hard lockup)"), "hard-lockup", False, False),
    (possessive.compile(r"BUG: workqueue lockup"), "workqueue-lockup", False, False),
    (possessive.compile(r"BUG: sleeping function called from invalid context"), "sleeping-in-atomic", False, False),
    (possessive.compile(r"BUG: scheduling while atomic"), "scheduling-while-atomic", False, False),
    (possessive.compile(r"BUG: Bad (?:page state|page map|rss-counter state)"), "bad-page", False, False),
    (possessive.compile(r"INFO: task .{1,64} blocked for more than"), "hung-task", False, False),
    (possessive.compile(r"INFO: rcu_\w++ (?:self-)?detected (?:stall|expedited stall)"), "rcu-stall", False, False),
    (possessive.compile(r"(?:INFO|WARNING): (" + _LOCKDEP + r")"), "lockdep", False, False),
    (possessive.compile(r"\[ INFO: (" + _LOCKDEP + r")\.? \]"), "lockdep", False, False),
    (possessive.compile(r"(list_(?:add|del) corruption)"), "list-corruption", False, False),
    (possessive.compile(r"refcount_t: (.*)"), "refcount", False, False),
    (possessive.compile(r"(?:Oops: )?(?:traps: )?PANIC: double fault|^(?:Oops: )?double fault" + _DIE_CODE), "double-fault", False, True),
    (possessive.compile(r"^(?:Oops: )?divide error" + _DIE_CODE), "divide-error", False, True),
    (possessive.compile(r"^(?:Oops: )?invalid opcode" + _DIE_CODE), "invalid-opcode", False, True),
    (possessive.compile(r"general protection fault"), "gpf", False, False),
    (possessive.compile(r"^(?:Oops: )?(?:" + _DIE_NAMES + r")" + _DIE_CODE), "oops", False, True),
    (possessive.compile(r"^Oops\b.*\[#\d++\]|^(?>.*?Internal error: Oops\b).*\[#\d++\]"), "oops", False, True),
    (possessive.compile(r"^(?>.*?Internal error: )(.*)\[#\d++\]"), "oops", False, True),
    (possessive.compile(r"[Kk]ernel BUG at"), "bug", False, False),
    (possessive.compile(r"WARNING: (?:at |CPU: )"), "warning", False, False),
    (possessive.compile(r"^Badness at "), "warning", False, False),
    (possessive.compile(r"(?:Machine Check Exception:|Machine check events logged|\[Hardware Error\]: (?:CPU \d+: )?Machine Check)"), "mce", False, False),
    (possessive.compile(r"invoked oom-killer:"), "oom", False, False),
    (possessive.compile(r"^oom-kill:constraint="), "oom", False, False),
    (possessive.compile(r"(?:Memory cgroup out of memory|Out of memory(?: \(oom_kill_allocating_task\))?): Kill(?:ed)? process"), "oom", False, False),
    (possessive.compile(r"page allocation failure: order:"), "page-alloc-failure", False, False),
    (possessive.compile(r"do_IRQ: stack overflow:|ear stack overflow \(cur:|BUG: stack guard page was hit"), "stack-overflow", False, False),
    (possessive.compile(r"BUG: memory leak"), "memory-leak", False, False),
    (possessive.compile(r"INFO: trying to register non-static key"), "lockdep", False, False),
    (possessive.compile(r"WARNING: kernel stack (?:regs|frame pointer) at "), "unwinder", False, False),
    (possessive.compile(r"rust_kernel: panicked"), "rust-panic", False, False),
    # SLUB debugging (mm/slub.c slab_bug(): "BUG <cache> (<taint>): <what>"; the old "INFO:" lines)
    (possessive.compile(r"BUG [\w.:-]++ \((?:Not tainted|Tainted: [^()]*+)\): (.*+)"), "slab-corruption", False, False),
    (possessive.compile(r"INFO: (?:Allocated|Freed) in "), "slab-corruption", False, False),
    (possessive.compile(r"Unhandled fault:|Alignment trap:|stack segment: "), "oops", False, False),
    (possessive.compile(r"unregister_netdevice: waiting for "), "netdev-refcount", False, False),
    (possessive.compile(r"VFS: Close: file count is 0|VFS: Busy inodes after unmount"), "vfs", False, False),
    (possessive.compile(r"trusty: panic"), "assertion", False, False),
    (possessive.compile(r"NETDEV WATCHDOG|IRQ handler type mismatch|RTNL: assertion failed|sysctl table check failed"), "warning", True, False),
    (possessive.compile(r": nobody cared|Eeek! page_mapcount\(page\) went negative!"), "bug", True, False),
    (possessive.compile(r"BUG: "), "bug", False, False),
]

# Cheap substrings: a line can only match _TABLE if it contains one of these (found in whole
# blocks at once by collectors.oops.prefilter, which is what makes scanning a large log fast).
ANCHORS: tuple[str, ...] = (
    "BUG", "WARNING:", "INFO:", "Oops", "protection fault", "nable to handle", "Kernel panic",
    "achine check", "achine Check", "ouble fault", "divide error", "divide_error", "invalid opcode", "UBSAN:",
    " corruption", "refcount_t:", "LOCKUP", "oom-kill", "ut of memory", "page allocation failure",
    "Badness at", "NETDEV WATCHDOG", "nobody cared", "IRQ handler type mismatch", "stack overflow",
    "RTNL: assertion", "page_mapcount", "sysctl table check", " [#", "KASAN", "Internal error",
    "Linux version", "stack segment: ", "rust_kernel: panicked", "Booting the kernel", "unregister_netdevice",
    "VFS: ", "Unhandled fault:", "Alignment trap:", "trusty: panic", "fatal error:", "SYZFAIL:", "SYZFATAL:",
    "panic:",
) + tuple(h.literal for h in HEADERS)

# Reboot / new boot: whatever report was open was cut off.
BOOT_RE = possessive.compile(
    r"^(?:Linux version (\S+)|Command line: |Kernel command line: |Booting (?:Linux|the kernel|paravirtualized kernel)"
    r"|-- (?:Boot [0-9a-f]+|Reboot) --)"
)


def is_suppressed(text: str, header: Header | None) -> bool:
    """A line with a header's literal that the header's own list says is no report
    ("INFO: lockdep is turned off", "WARNING: The mand mount option ...")."""
    return header is None and any(h.literal in text for h in HEADERS)


def classify(text: str, header: Header | None | bool = False) -> Marker | None:
    """Return the start marker on a (prefix-stripped, left-stripped) line, or None.

    ``header`` is :func:`collectors.oops.headlines.header_of` of the line when the caller
    has it (``False``: compute it here)."""
    if not text or _USER_TRAP.search(text):
        return None
    found = header_of(text) if header is False else header
    if not isinstance(found, Header):
        found = None
    if is_suppressed(text, found):
        return None
    for rx, kind, weak, die in _TABLE:
        m = rx.search(text)
        if m:
            detail = m.group(1) if m.groups() and m.group(1) is not None else ""
            return Marker(kind, detail, weak, die)
    if found is not None:
        return Marker(found.kind, "", False, False)
    return None
