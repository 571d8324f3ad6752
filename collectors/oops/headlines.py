"""The headline forms of kernel reports and how each one is titled.

A report's title is made the way syzkaller's ``pkg/report`` makes it, so that a title
here buckets with the one syzbot shows: the report's first line names a *header* (``BUG:``,
``WARNING:``, ``INFO:``, ``general protection fault``, ...); each header has a list of
*forms*, tried in order; the form whose pattern matches earliest in the report (the first
in the list on a tie) gives the title ``fmt``, filled with the pattern's captures and the
guilty frame(s) read from the report's stack (:mod:`collectors.oops.guilty`).

Table entries, in order:

- ``title``: a one-line pattern (searched in each line of the report);
- ``fmt``: the title, ``{0}``, ``{1}``... being the captures and then the frames;
- ``parts`` / ``parts2``: how to find the frames (:data:`STACK` = "parse a stack here",
  other entries are line patterns passed over in order, their captures become frames);
  ``parts2`` is tried when ``parts`` yields no frame;
- ``skip``: entries added to the infrastructure skip list (:mod:`.skiplist` notation);
- ``report``: line patterns that must follow in order (the first one from the title's
  line on); when given, the captures come from them instead of ``title``;
- ``extractor``: ``"stall"`` / ``"hang"`` for the frame pickers of stalls and hangs;
- ``no_stack``: the form has no call trace of its own; ``corrupted``: the form only
  matches reports whose headline was damaged.

Every pattern here is linear in the line's length (tests/security/test_oops_redos.py):
quantifiers are possessive where what follows cannot match what they repeat, and a ``.*``
between two literals scans from the first occurrence of the literal only
(``^(?>.*?LIT)``), which finds a match exactly when one exists.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from collectors.oops import possessive

#: In ``parts``: parse a call trace from here.
STACK = "STACK"

# Building blocks (their Go spellings in syzkaller are {{FUNC}}, {{PC}}, {{SRC}}).
FUNC = r"([a-zA-Z0-9_]++)[.+]"
PC = r"\[<?(?:0x)?[0-9a-f]++>?\]"
# (a search tries SRC only where a run of path characters starts)
SRC = r"(?<![a-zA-Z0-9_/.-])([a-zA-Z0-9_/.-]+?\.[a-z]++:[0-9]++)"
# The instruction-pointer line of each architecture (x86 RIP/EIP/IP, powerpc NIP, arm
# "PC is at", arm64 "pc :"; s390 "Krnl PSW", which syzkaller does not read, added here).
_RIP = (r"(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]++:)?(?:" + PC + r" ++){0,2}" + FUNC
        + r"|(?:[0-9]++:)?0x[0-9a-f]|(?:[0-9]++:)?" + PC + r" ++\[< *+\(null\)>\] ++\(null\)|[0-9]++: ++\(null\))"
        + r"|Krnl PSW : [0-9a-f]++ [0-9a-f]++ \(" + FUNC)


def _w(rest: str) -> str:
    """A WARNING pattern with a ``.*`` after the header: scanned from its first occurrence."""
    return r"^(?>.*?WARNING: )" + rest


RIP = possessive.compile(_RIP)
CALL_TRACE = possessive.compile(r"Call [Tt]race:|Backtrace:")
_WARN_RIP = possessive.compile(_RIP + r"|--- interrupt: [0-9]++ at " + FUNC)
_PC_FUNC = possessive.compile(PC + r" ++" + FUNC)
_AT_FUNC = possessive.compile(r"at: (?:" + PC + r" ++)?" + FUNC)


class Form(NamedTuple):
    """One headline form (see the module docstring)."""

    title: re.Pattern[str]
    fmt: str
    parts: tuple[re.Pattern[str] | str, ...] = ()
    parts2: tuple[re.Pattern[str] | str, ...] = ()
    skip: tuple[str, ...] = ()
    report: tuple[re.Pattern[str], ...] = ()
    extractor: str = ""
    no_stack: bool = False
    corrupted: bool = False


_RIP_TRACE = (RIP, CALL_TRACE, STACK)
_TRACE = (CALL_TRACE, STACK)
_WARN_PARTS = (_WARN_RIP, STACK)
_WARN_PARTS2 = (CALL_TRACE, STACK)
_KMSAN_PARTS = (STACK, possessive.compile(r"^(?>.*?Local variable )(?>.*? created at:)|Uninit was created at:"), STACK)
_KASAN_HEAD = r"BUG: KASAN: [a-z-]++ in " + FUNC


def _warning(title: re.Pattern[str], fmt: str, *skip: str) -> Form:
    """A WARNING form whose frame is the RIP function, else the first frame of its trace."""
    return Form(title, fmt, _WARN_PARTS, _WARN_PARTS2, skip)


# --- BUG: ----------------------------------------------------------------------------------
BUG_FORMS = [
    Form(possessive.compile(r"BUG: KASAN:"), "KASAN: {0} {2} in {3}", (possessive.compile(_KASAN_HEAD), CALL_TRACE, STACK),
         skip=("kernel_fault", "tag_check", "mem_abort", "^el1_", "^el1h_"),
         report=(possessive.compile(r"BUG: KASAN: ([a-z-]++) in " + FUNC), possessive.compile(r"(Read|Write) (?:of size|at addr) [0-9a-f]"))),
    Form(possessive.compile(r"BUG: KASAN:"), "KASAN: invalid-free in {1}", (possessive.compile(_KASAN_HEAD), CALL_TRACE, STACK),
         skip=("slab_", "kfree", "vunmap", "vfree"),
         report=(possessive.compile(r"BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in " + FUNC),)),
    Form(possessive.compile(r"BUG: KASAN: [a-z-]++ on address"), "KASAN: {0} {1}",
         report=(possessive.compile(r"BUG: KASAN: ([a-z-]++) on address"), possessive.compile(r"(Read|Write) of size [0-9]"))),
    Form(possessive.compile(r"BUG: KASAN: (.*+)"), "KASAN: {0}", corrupted=True),
    Form(possessive.compile(r"BUG: KMSAN: kernel-usb-infoleak"), "KMSAN: kernel-usb-infoleak in {1}", _KMSAN_PARTS,
         skip=("alloc_skb", "usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg",
               "usb_control_msg"),
         report=(possessive.compile(r"BUG: KMSAN: kernel-usb-infoleak in " + FUNC),), no_stack=True),
    Form(possessive.compile(r"BUG: KMSAN:"), "KMSAN: {0} in {2}", _KMSAN_PARTS,
         # crypto routines are where uninit data is used, never the bug
         skip=("alloc_skb", "netlink_ack", "netlink_rcv_skb", "_encrypt$", "^crypto_", "^cipher_", "^drbg_",
               "^rng_"),
         report=(possessive.compile(r"BUG: KMSAN: ([a-z-]++) in " + FUNC),), no_stack=True),
    Form(possessive.compile(r"BUG: KCSAN: data-race"), "KCSAN: {0}", report=(possessive.compile(r"BUG: KCSAN: (.*+)"),), no_stack=True),
    Form(possessive.compile(r"BUG: KCSAN:"), "KCSAN: {0}", report=(possessive.compile(r"BUG: KCSAN: (.*+)"),), no_stack=True),
    Form(possessive.compile(r"BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in " + FUNC), "KFENCE: {0} {1} in {3}",
         (possessive.compile(r"BUG: KFENCE: (?:[a-z-]++ )+?in " + FUNC), STACK)),
    Form(possessive.compile(r"BUG: KFENCE: invalid free in " + FUNC), "KFENCE: invalid free in {1}",
         (possessive.compile(r"BUG: KFENCE: (?:[a-z-]++ )+?in " + FUNC), STACK), no_stack=True),
    Form(possessive.compile(r"BUG: KFENCE: invalid (read|write) in " + FUNC), "KFENCE: invalid {0} in {2}",
         (possessive.compile(r"BUG: KFENCE: (?:[a-z-]++ )+?in " + FUNC), STACK)),
    Form(possessive.compile(r"BUG: KFENCE: memory corruption in " + FUNC), "KFENCE: memory corruption in {1}",
         (possessive.compile(r"BUG: KFENCE: (?:[a-z-]++ )+?in " + FUNC), STACK), no_stack=True),
    Form(possessive.compile(r"BUG: (?:unable to handle kernel paging request|unable to handle page fault for address"
            r"|Unable to handle kernel data access)"),
         "BUG: unable to handle kernel paging request in {0}", _RIP_TRACE),
    Form(possessive.compile(r"BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference"
            r"|Kernel NULL pointer dereference)"),
         "BUG: unable to handle kernel NULL pointer dereference in {0}", _RIP_TRACE),
    # the second half of the headline is a separate printk that may be lost
    Form(possessive.compile(r"BUG: (?:unable to handle kernel|Unable to handle kernel)"), "BUG: unable to handle kernel",
         corrupted=True),
    Form(possessive.compile(r"BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion|bad magic"
            r"|wrong owner|wrong CPU|trylock failure on UP)"),
         "BUG: {0} {1} in {2}", _TRACE, skip=("spin_", "_lock", "_unlock")),
    Form(possessive.compile(r"BUG: soft lockup"), "BUG: soft lockup in {0}", _RIP_TRACE, extractor="stall"),
    Form(possessive.compile(r"^(?>.*?BUG: )(?>.*?still has locks held!)"), "BUG: still has locks held in {0}",
         report=(possessive.compile(r"^(?>.*?BUG: )(?>.*?still has locks held!)"), _PC_FUNC)),
    Form(possessive.compile(r"BUG: scheduling while atomic"), "BUG: scheduling while atomic in {0}", _TRACE, skip=("schedule",)),
    Form(possessive.compile(r"BUG: lock held when returning to user space"), "BUG: lock held when returning to user space in {0}",
         report=(possessive.compile(r"BUG: lock held when returning to user space"),
                 possessive.compile(r"leaving the kernel with locks still held"), _AT_FUNC), no_stack=True),
    Form(possessive.compile(r"BUG: bad unlock balance detected!"), "BUG: bad unlock balance in {0}",
         (_PC_FUNC, CALL_TRACE, STACK)),
    Form(possessive.compile(r"BUG: held lock freed!"), "BUG: held lock freed in {0}",
         report=(possessive.compile(r"BUG: held lock freed!"), _PC_FUNC)),
    Form(possessive.compile(r"BUG: Bad rss-counter state"), "BUG: Bad rss-counter state", no_stack=True),
    Form(possessive.compile(r"BUG: non-zero nr_ptes on freeing mm"), "BUG: non-zero nr_ptes on freeing mm", no_stack=True),
    Form(possessive.compile(r"BUG: non-zero nr_pmds on freeing mm"), "BUG: non-zero nr_pmds on freeing mm", no_stack=True),
    # the filesystem type and block device name are left out: they only split one bug
    Form(possessive.compile(r"^(?>.*?BUG: Dentry )(?>.*? still in use)"), "BUG: Dentry still in use in {0}",
         report=(possessive.compile(r"^(?>.*?BUG: Dentry )(?>.*? still in use )\([0-9]++\) \[(unmount) of ([^\]]++)\]"),)),
    Form(possessive.compile(r"BUG: Bad page (state|cache)"), "BUG: Bad page {0} in {1}", (possessive.compile(r"page last allocated"), STACK),
         skip=("free_page", "put_page", "get_page", "update_page", "release_page", "free_unref", "^folio",
               "^_folio", "^__folio", "^___folio", "truncate_inode_pages", "page_frag_free", "alloc", "vmap",
               "page_owner")),
    Form(possessive.compile(r"BUG: Bad page map"), "BUG: Bad page map"),
    Form(possessive.compile(r"BUG: workqueue lockup"), "BUG: workqueue lockup", no_stack=True),
    Form(possessive.compile(r"BUG: sleeping function called from invalid context at (.*+)"),
         "BUG: sleeping function called from invalid context in {1}", _TRACE),
    Form(possessive.compile(r"BUG: using ([a-z_]++)\(\) in preemptible"), "BUG: using {0}() in preemptible code in {1}", _TRACE,
         skip=("dump_stack", "preemption", "preempt", "debug_", "processor_id", "this_cpu")),
    Form(possessive.compile(r"BUG: workqueue leaked lock or atomic"), "BUG: workqueue leaked lock or atomic in {0}",
         report=(possessive.compile(r"BUG: workqueue leaked lock or atomic"), possessive.compile(r"last function: ([a-zA-Z0-9_]++)$")),
         no_stack=True),
    Form(possessive.compile(r"BUG: memory leak"), "memory leak in {0}", (possessive.compile(r"backtrace(?: \(crc [0-9a-fA-F]*+\))?:"), STACK),
         skip=("kmemleak", "mmap", "kmem", "slab", "alloc", "create_object", "idr_get", "list_lru_init",
               "kasprintf", "kvasprintf", "pcpu_create", "strdup", "strndup", "memdup")),
    Form(possessive.compile(r"^(?>.*?BUG: )(?>.*?stack guard page was hit at)"), "BUG: stack guard page was hit in {0}",
         _RIP_TRACE, extractor="stall"),
    # arm64 prints what x86 calls a locking bug this way: one title for both
    Form(possessive.compile(r"BUG: Invalid wait context"), "WARNING: locking bug in {0}", _TRACE,
         skip=("lock_sock", "release_sock")),
    Form(possessive.compile(r"BUG:\s*+$"), "BUG: corrupted", corrupted=True),
]
BUG_SUPPRESS = [possessive.compile(r"ODEBUG:"), possessive.compile(r"Boot_DEBUG:"), possessive.compile(r"xlog_status:"), possessive.compile(r"DEBUG:"),
                possessive.compile(r"BUG: no syscalls can create resource")]

# --- WARNING: ------------------------------------------------------------------------------
WARNING_FORMS = [
    # users of debugobjects are skipped too: the object's owner is the culprit
    _warning(possessive.compile(_w(r"(?>.*?lib/debugobjects\.c)(?>.*? (?:debug_print|debug_check|at))")), "WARNING: ODEBUG bug in {0}",
             "debug_", "rcu", "hrtimer_", "timer_", "work_", "percpu_", "vunmap", "vfree", "__free_", "debug_check",
             "kobject_"),
    _warning(possessive.compile(_w(r"(?>.*?mm/usercopy\.c)(?>.*? (?:usercopy_warn|at))")), "WARNING: bad usercopy in {0}",
             "usercopy", "__check"),
    _warning(possessive.compile(_w(r"(?>.*?lib/kobject\.c)(?>.*? (?:kobject_|at))")), "WARNING: kobject bug in {0}", "kobject_"),
    _warning(possessive.compile(_w(r"(?>.*?fs/proc/generic\.c)(?>.*? (?:proc_register|at))")), "WARNING: proc registration bug in {0}",
             "proc_"),
    _warning(possessive.compile(_w(r"(?>.*?lib/refcount\.c)(?>.*? (?:refcount_|at))")), "WARNING: refcount bug in {0}",
             "refcount", "kobject_"),
    _warning(possessive.compile(_w(r"(?>.*?kernel/locking/lockdep\.c)(?>.*?lock_)")), "WARNING: locking bug in {0}",
             "lock_sock", "release_sock"),
    Form(possessive.compile(_w(r"(?>.*?still has locks held!)")), "WARNING: still has locks held in {0}",
         report=(possessive.compile(_w(r"(?>.*?still has locks held!)")), possessive.compile(r"at: " + FUNC))),
    _warning(possessive.compile(r"WARNING: Nested lock was not taken"), "WARNING: nested lock was not taken in {0}"),
    Form(possessive.compile(r"WARNING: lock held when returning to user space"),
         "WARNING: lock held when returning to user space in {0}",
         report=(possessive.compile(r"WARNING: lock held when returning to user space"),
                 possessive.compile(r"leaving the kernel with locks still held"), _AT_FUNC), no_stack=True),
    _warning(possessive.compile(_w(r"(?>.*?mm/)(?>.*?\.c)(?>.*? k?.?malloc)")), "WARNING: kmalloc bug in {0}",
             "kmalloc", "krealloc", "slab", "kmem"),
    _warning(possessive.compile(_w(r"(?>.*?mm/vmalloc.c)(?>.*?__vmalloc_node)")), "WARNING: zero-size vmalloc in {0}"),
    _warning(possessive.compile(_w(r"(?>.*? usb_submit_urb)")), "WARNING in {0}/usb_submit_urb",
             "usb_submit_urb", "usb_start_wait_urb", "usb_bulk_msg", "usb_interrupt_msg", "usb_control_msg"),
    # the headline introduced with Linux 6.19: "WARNING: file.c:12 at 0x..., CPU#0: comm/pid"
    _warning(possessive.compile(r"WARNING: " + SRC + r" at 0x[0-9]++, CPU#[0-9]"), "WARNING in {1}"),
    _warning(possessive.compile(_w(r"(?>.*? at )" + SRC + r" " + FUNC)), "WARNING in {2}"),
    _warning(possessive.compile(r"WARNING: " + SRC + r" at " + FUNC), "WARNING in {2}"),
    _warning(possessive.compile(r"^(?>.*?WARNING: \[)[^\]]*+\] " + SRC + r" at " + FUNC), "WARNING in {2}"),
    Form(possessive.compile(r"WARNING: possible circular locking dependency detected"), "possible deadlock in {0}",
         (_AT_FUNC, _AT_FUNC, STACK),
         # workqueue code takes the locks of the work items it runs
         skip=("process_one_work", "flush_workqueue", "drain_workqueue", "destroy_workqueue"),
         report=(possessive.compile(r"WARNING: possible circular locking dependency detected"), possessive.compile(r"is trying to acquire lock"))),
    Form(possessive.compile(r"WARNING: possible irq lock inversion dependency detected"), "possible deadlock in {0}",
         report=(possessive.compile(r"WARNING: possible irq lock inversion dependency detected"),
                 possessive.compile(r"just changed the state of lock"), _AT_FUNC)),
    Form(possessive.compile(_w(r"(?>.*?-safe -> )(?>.*?-unsafe lock order detected)")), "possible deadlock in {0}",
         (possessive.compile(r"^(?>.*?which became )(?>.*? at:)"), STACK)),
    Form(possessive.compile(r"WARNING: possible recursive locking detected"), "possible deadlock in {0}",
         report=(possessive.compile(r"WARNING: possible recursive locking detected"), possessive.compile(r"is trying to acquire lock"), _AT_FUNC)),
    Form(possessive.compile(r"WARNING: inconsistent lock state"), "inconsistent lock state in {1}", _TRACE,
         report=(possessive.compile(r"WARNING: inconsistent lock state"), possessive.compile(r"takes"), _AT_FUNC)),
    Form(possessive.compile(r"WARNING: suspicious RCU usage"), "WARNING: suspicious RCU usage in {1}", _TRACE,
         skip=("rcu", "kmem", "slab"), report=(possessive.compile(r"WARNING: suspicious RCU usage"), possessive.compile(SRC))),
    Form(possessive.compile(r"WARNING: kernel stack regs at [0-9a-f]++ in [^ ]*+ has bad '([^']++)' value"),
         "WARNING: kernel stack regs has bad '{0}' value", no_stack=True),
    Form(possessive.compile(r"WARNING: kernel stack frame pointer at [0-9a-f]++ in [^ ]*+ has bad value"),
         "WARNING: kernel stack frame pointer has bad value", no_stack=True),
    Form(possessive.compile(r"WARNING: bad unlock balance detected!"), "WARNING: bad unlock balance in {0}",
         (_PC_FUNC, CALL_TRACE, STACK)),
    Form(possessive.compile(r"WARNING: held lock freed!"), "WARNING: held lock freed in {0}",
         report=(possessive.compile(r"WARNING: held lock freed!"), possessive.compile(r"at:(?: " + PC + r")? ++" + FUNC))),
    Form(possessive.compile(_w(r"(?>.*?kernel stack regs )(?>.*? has bad 'bp' value)")), "WARNING: kernel stack regs has bad value",
         no_stack=True),
    Form(possessive.compile(_w(r"(?>.*?kernel stack frame pointer )(?>.*? has bad value)")),
         "WARNING: kernel stack regs has bad value", no_stack=True),
    Form(possessive.compile(r"WARNING:\s*+$"), "WARNING: corrupted", corrupted=True),
]
# Lines with "WARNING:" that are no kernel report (user space, notices, boot banners).
WARNING_SUPPRESS = [
    possessive.compile(r"WARNING: /etc/ssh/moduli does not exist, using fixed modulus"),
    possessive.compile(r"WARNING: workqueue cpumask: online intersect > possible intersect"),
    possessive.compile(r"WARNING: [Tt]he mand mount option"),
    possessive.compile(r"WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1"),
    possessive.compile(r"WARNING: Unprivileged eBPF is enabled with eIBRS"),
    possessive.compile(r"WARNING: fbcon: Driver '[^']*+' missed to adjust virtual screen size"),
    possessive.compile(r"^(?>.*?WARNING: See https)(?>.*? for mitigation options\.)"),
    possessive.compile(r"WARNING: kernel not compiled with CPU_SRSO"),
    possessive.compile(r"EXT4-[Ff][Ss](?: \([^()]*+\))?:"),
    possessive.compile(r"(?i)^(?>.*?warning: )(?>.*? uses (?:deprecated v2 capabilities|wireless extensions))"),
    possessive.compile(r"XFS \(\w++\): WARNING"),
    # not in syzkaller's list: IMA at boot on a machine without a TPM
    possessive.compile(r"WARNING: TPM not found"),
]

# --- INFO: ---------------------------------------------------------------------------------
# the first five are the 2.6/3.x lockdep banners, "[ INFO: ... ]"
INFO_FORMS = [
    Form(possessive.compile(r"INFO: possible circular locking dependency detected"), "possible deadlock in {0}",
         report=(possessive.compile(r"INFO: possible circular locking dependency detected \]"), possessive.compile(r"is trying to acquire lock"),
                 possessive.compile(r"at: " + PC + r" ++" + FUNC))),
    Form(possessive.compile(r"INFO: possible irq lock inversion dependency detected"), "possible deadlock in {0}",
         report=(possessive.compile(r"INFO: possible irq lock inversion dependency detected \]"),
                 possessive.compile(r"just changed the state of lock"), possessive.compile(r"at: " + PC + r" ++" + FUNC))),
    Form(possessive.compile(r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected"), "possible deadlock in {0}",
         report=(possessive.compile(r"INFO: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \]"), possessive.compile(r"is trying to acquire"),
                 possessive.compile(r"at: " + PC + r" ++" + FUNC))),
    Form(possessive.compile(r"INFO: possible recursive locking detected"), "possible deadlock in {0}",
         report=(possessive.compile(r"INFO: possible recursive locking detected \]"), possessive.compile(r"is trying to acquire lock"),
                 possessive.compile(r"at: " + PC + r" ++" + FUNC))),
    Form(possessive.compile(r"INFO: inconsistent lock state"), "inconsistent lock state in {0}",
         report=(possessive.compile(r"INFO: inconsistent lock state \]"), possessive.compile(r"takes"), possessive.compile(r"at: " + PC + r" ++" + FUNC))),
    # The culprit of a stall is the code the timer interrupt found running: frames are read
    # from the interrupt's end on.
    Form(possessive.compile(r"INFO: rcu_(?:preempt|sched|bh|tasks(?:_[a-z]++)?) (?:self-)?detected(?: expedited)? stall"),
         "INFO: rcu detected stall in {0}", (possessive.compile(r"apic_timer_interrupt"), RIP, STACK),
         (possessive.compile(r"apic_timer_interrupt|Exception stack|el1h_64_irq"), STACK),
         skip=("apic_timer_interrupt", "rcu"), extractor="stall"),
    Form(possessive.compile(r"INFO: trying to register non-static key"), "INFO: trying to register non-static key in {0}", _TRACE,
         skip=("stack", "lock", "IRQ")),
    Form(possessive.compile(r"INFO: suspicious RCU usage"), "INFO: suspicious RCU usage in {1}", _TRACE,
         skip=("rcu", "kmem", "slab"), report=(possessive.compile(r"INFO: suspicious RCU usage"), possessive.compile(SRC))),
    # newer kernels tell a task blocked on I/O apart ("blocked in I/O wait for more than")
    Form(possessive.compile(r"^(?>.*?INFO: task )(?>.*? blocked (?:in I/O wait )?for more than )[0-9]++ seconds"), "INFO: task hung in {0}",
         _TRACE,
         extractor="hang"),
    Form(possessive.compile(r"^(?>.*?INFO: task )(?>.*? can't die for more than )(?>.*? seconds)"), "INFO: task can't die in {0}",
         _TRACE, skip=("schedule",)),
    # a task name (user controlled) with a line break in it splits the hung-task headline
    Form(possessive.compile(r"^(?>.*?INFO: task )(?!.*? blocked )(?!.*? can't die )"), "INFO: task hung in {0}", _TRACE, extractor="hang",
         report=(possessive.compile(r"INFO: task "), possessive.compile(r"^(?>.*? blocked (?:in I/O wait )?for more than )[0-9]++ seconds"))),
    # old-style SLUB reports whose headline was lost
    Form(possessive.compile(r"INFO: (Freed|Allocated) in (.*+)"), "INFO: {0} in {1}", corrupted=True),
    Form(possessive.compile(r"INFO:\s*+$"), "INFO: corrupted", corrupted=True),
]
INFO_SUPPRESS = [
    possessive.compile(r"INFO: lockdep is turned off"), possessive.compile(r"INFO: Stall ended before state dump start"), possessive.compile(r"INFO: NMI handler"),
    possessive.compile(r"INFO: recovery required on readonly filesystem"),
    possessive.compile(r"^(?>.*?(?:handler|interrupt))(?>.*?took too long)"),
    possessive.compile(r"^(?>.*?INFO: sys_)(?>.*? is not present in /proc/kallsyms)"), possessive.compile(r"INFO: no syscalls can create resource"),
    possessive.compile(r"rmt_storage:INFO:"), possessive.compile(r"_INFO:"),
]

# --- the other headers ---------------------------------------------------------------------
UNABLE_FORMS = [
    Form(possessive.compile(r"Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)"),
         "BUG: unable to handle kernel {0} in {1}", _RIP_TRACE),
]
GPF_FORMS = [Form(possessive.compile(r"^(?>.*?general protection fault)(?>.*?:)"), "general protection fault in {0}", _RIP_TRACE)]
GPF_SUPPRESS = [possessive.compile(r"^(?>.*?general protection fault )(?>.*? error:)[0-9]++ in ")]  # user-space traps
STACK_SEGMENT_FORMS = [Form(possessive.compile(r"stack segment: "), "stack segment fault in {0}", _RIP_TRACE)]
PANIC_FORMS = [
    # the stack may be too damaged for a symbol or an unwind
    Form(possessive.compile(r"Kernel panic - not syncing: stack-protector:"), "kernel panic: stack is corrupted in {0}",
         report=(possessive.compile(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: " + FUNC),),
         no_stack=True),
    Form(possessive.compile(r"Kernel panic - not syncing: stack-protector:"), "kernel panic: stack is corrupted in {0}", _TRACE,
         skip=("stack_chk",),
         report=(possessive.compile(r"Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]"),)),
    Form(possessive.compile(r"Kernel panic - not syncing: corrupted stack end"), "kernel panic: corrupted stack end in {0}", _TRACE,
         skip=("schedule", "retint_kernel"), extractor="stall",
         report=(possessive.compile(r"Kernel panic - not syncing: corrupted stack end detected inside scheduler"),)),
    Form(possessive.compile(r"Kernel panic - not syncing: kernel stack overflow"), "kernel stack overflow in {0}", _TRACE,
         skip=("bad_stack",), extractor="stall"),
    Form(possessive.compile(r"Kernel panic - not syncing: Attempted to kill init!"), "kernel panic: Attempted to kill init!"),
    Form(possessive.compile(r"Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]++ --- error -[0-9]"),
         "kernel panic: Couldn't open N_TTY ldisc"),
    # these follow another report: seen first, they mean its headline was lost
    Form(possessive.compile(r"Kernel panic - not syncing: Fatal exception"), "kernel panic: Fatal exception", corrupted=True),
    Form(possessive.compile(r"Kernel panic - not syncing: panic_on_warn set"), "kernel panic: panic_on_warn set", corrupted=True),
    Form(possessive.compile(r"Kernel panic - not syncing: hung_task: blocked tasks"), "kernel panic: hung_task: blocked tasks",
         corrupted=True),
    Form(possessive.compile(r"Kernel panic - not syncing: (.*+)"), "kernel panic: {0}"),
]
DOUBLE_FAULT_FORMS = [Form(possessive.compile(r"PANIC: double fault"), "PANIC: double fault in {0}", (RIP,))]
RUST_FORMS = [
    # the panic message is the line after "panicked at file:line:col:"
    Form(possessive.compile(r"rust_kernel: panicked"), "{0} in {1}", _TRACE, skip=("__rustc::rust_begin_unwind",),
         report=(possessive.compile(r"rust_kernel: panicked at "), possessive.compile(r"^(.++)$"))),
]
KERNEL_BUG_FORMS = [
    Form(possessive.compile(r"kernel BUG at mm/usercopy.c"), "BUG: bad usercopy in {0}", _TRACE, skip=("usercopy", "__check")),
    Form(possessive.compile(r"kernel BUG at lib/list_debug.c"), "BUG: corrupted list in {0}", _TRACE),
    # skb helpers BUG_ON() their caller's mistakes
    Form(possessive.compile(r"kernel BUG at (.*+)"), "kernel BUG in {1}", _RIP_TRACE, skip=("^skb_",)),
]
KERNEL_BUG2_FORMS = [Form(possessive.compile(r"Kernel BUG (.*+)"), "kernel BUG {0}")]
SLUB_FORMS = [Form(possessive.compile(r"^(?>.*?BUG kmalloc-)(?>.*?: Object already free)"), "BUG: Object already free")]
DIVIDE_FORMS = [Form(possessive.compile(r"divide error: "), "divide error in {0}", (RIP,))]
# the spelling of 9d06c4027f21 ("x86/entry: Convert Divide Error to IDTENTRY")
DIVIDE2_FORMS = [Form(possessive.compile(r"divide_error: "), "divide error in {0}", (RIP,))]
INVALID_OPCODE_FORMS = [Form(possessive.compile(r"invalid opcode: "), "invalid opcode in {0}", (RIP,))]
UBSAN_FORMS = [
    Form(possessive.compile(r"UBSAN:"), "UBSAN: undefined-behaviour in {0}", _TRACE, skip=("ubsan", "overflow"),
         report=(possessive.compile(r"UBSAN: Undefined behaviour in"),)),
    Form(possessive.compile(r"UBSAN: array-index-out-of-bounds in"), "UBSAN: array-index-out-of-bounds in {0}", _TRACE,
         skip=("ubsan", "overflow")),
    Form(possessive.compile(r"UBSAN:"), "UBSAN: {0} in {1}", _TRACE, skip=("ubsan", "overflow"),
         report=(possessive.compile(r"^(?>.*?UBSAN: )((?:(?! in).)*+) in"),)),
]
REBOOT_FORMS = [Form(possessive.compile(r"^Booting the kernel"), "unexpected kernel reboot", no_stack=True)]
# the console echoing boot text back (a mount option, say) is no reboot
REBOOT_SUPPRESS = [possessive.compile(r"Parsing ELF|Decompressing Linux|Unknown parameter '")]
NETDEV_FORMS = [Form(possessive.compile(r"^(?>.*?unregister_netdevice: waiting for )(?>.*? to become free)"),
                     "unregister_netdevice: waiting for DEV to become free", no_stack=True)]
VFS_CLOSE_FORMS = [Form(possessive.compile(r"VFS: Close: file count is 0"), "VFS: Close: file count is zero (use-after-free)",
                        no_stack=True)]
VFS_BUSY_FORMS = [Form(possessive.compile(r"VFS: Busy inodes after unmount"), "VFS: Busy inodes after unmount (use-after-free)",
                       no_stack=True)]
# arm64 "Internal error: synchronous external abort" is arm's "Unable to handle kernel paging request"
INTERNAL_ERROR_FORMS = [Form(possessive.compile(r"Internal error:"), "Internal error in {0}", _RIP_TRACE)]
UNHANDLED_FAULT_FORMS = [Form(possessive.compile(r"Unhandled fault:"), "Unhandled fault in {0}", _RIP_TRACE)]
ALIGNMENT_FORMS = [Form(possessive.compile(r"Alignment trap:"), "Alignment trap in {0}", _RIP_TRACE)]
# Trusty (the TEE next to Android kernels) asserts through the kernel log
TRUSTY_FORMS = [
    Form(possessive.compile(r"^(?>.*?trusty: panic)(?>.*? ASSERT FAILED)"), "trusty: ASSERT FAILED: {0}", no_stack=True,
         report=(possessive.compile(r"trusty: panic \([^()]*+\):(?: DEBUG)? ASSERT FAILED at \([^()]*+\): (.++)"),)),
    Form(possessive.compile(r"^(?>.*?trusty: panic)(?>.*? ASSERT FAILED)(?>.*?: *+)(.*+)"), "trusty: ASSERT FAILED: {0}",
         corrupted=True),
    Form(possessive.compile(r"trusty: panic"), "trusty: panic: {0}", report=(possessive.compile(r"trusty: panic \([^()]*+\): (.++)"),),
         no_stack=True),
]
# Messages of the test harness and Go programs on the console (syzkaller's executor and
# fuzzer): reported like kernel reports when they appear in a console log.
GO_FORMS = [Form(possessive.compile(r"fatal error:"), "go runtime error", no_stack=True)]
GO_SUPPRESS = [possessive.compile(r"ALSA"), possessive.compile(r"fatal error: cannot create timer")]
SYZFAIL_FORMS = [Form(possessive.compile(r"SYZFAIL:(.*+)"), "SYZFAIL:{0}", no_stack=True)]
SYZFATAL_FORMS = [Form(possessive.compile(r"SYZFATAL:(.*+)"), "SYZFATAL:{0}", no_stack=True)]
GO_PANIC_FORMS = [
    Form(possessive.compile(r"^(?>.*?panic: Sentry detected )(?>.*? stuck task)"), "panic: Sentry detected stuck tasks",
         no_stack=True),
    Form(possessive.compile(r"panic:(.*+)"), "panic:{0}", no_stack=True),
]
GO_PANIC_SUPPRESS = [possessive.compile(r"_panic:"), possessive.compile(r"xlog_status:"), possessive.compile(r"ddb\.onpanic:"), possessive.compile(r"evtlog_status:")]


class Header(NamedTuple):
    """A header: the literal that marks a report's first line, its forms, and the lines
    that contain the literal but are no report."""

    literal: str
    forms: list[Form]
    suppress: list[re.Pattern[str]]
    kind: str  # the report kind (collectors.oops.kinds) a line with only this header gets


#: In syzkaller's order: a line with several headers belongs to the first.
HEADERS = [
    Header("BUG:", BUG_FORMS, BUG_SUPPRESS, "bug"),
    Header("WARNING:", WARNING_FORMS, WARNING_SUPPRESS, "warning"),
    Header("INFO:", INFO_FORMS, INFO_SUPPRESS, "info"),
    Header("Unable to handle kernel", UNABLE_FORMS, [], "paging-request"),
    Header("general protection fault", GPF_FORMS, GPF_SUPPRESS, "gpf"),
    Header("stack segment: ", STACK_SEGMENT_FORMS, [], "oops"),
    Header("Kernel panic", PANIC_FORMS, [], "panic"),
    Header("PANIC: double fault", DOUBLE_FAULT_FORMS, [], "double-fault"),
    Header("rust_kernel: panicked", RUST_FORMS, [], "rust-panic"),
    Header("kernel BUG", KERNEL_BUG_FORMS, [], "bug"),
    Header("Kernel BUG", KERNEL_BUG2_FORMS, [], "bug"),
    Header("BUG kmalloc-", SLUB_FORMS, [], "slab-corruption"),
    Header("divide error:", DIVIDE_FORMS, [], "divide-error"),
    Header("divide_error:", DIVIDE2_FORMS, [], "divide-error"),
    Header("invalid opcode:", INVALID_OPCODE_FORMS, [], "invalid-opcode"),
    Header("UBSAN:", UBSAN_FORMS, [], "ubsan"),
    Header("Booting the kernel.", REBOOT_FORMS, REBOOT_SUPPRESS, "reboot"),
    Header("unregister_netdevice: waiting for", NETDEV_FORMS, [], "netdev-refcount"),
    Header("VFS: Close: file count is 0", VFS_CLOSE_FORMS, [], "vfs"),
    Header("VFS: Busy inodes after unmount", VFS_BUSY_FORMS, [], "vfs"),
    Header("Internal error:", INTERNAL_ERROR_FORMS, [], "oops"),
    Header("Unhandled fault:", UNHANDLED_FAULT_FORMS, [], "oops"),
    Header("Alignment trap:", ALIGNMENT_FORMS, [], "oops"),
    Header("trusty: panic", TRUSTY_FORMS, [], "assertion"),
    Header("fatal error:", GO_FORMS, GO_SUPPRESS, "harness"),
    Header("SYZFAIL:", SYZFAIL_FORMS, [], "harness"),
    Header("SYZFATAL:", SYZFATAL_FORMS, [], "harness"),
    Header("panic:", GO_PANIC_FORMS, GO_PANIC_SUPPRESS, "harness"),
]


def header_of(line: str) -> Header | None:
    """The header a (prefix-stripped) line starts a report with, or None."""
    for header in HEADERS:
        if header.literal in line and not any(rx.search(line) for rx in header.suppress):
            return header
    return None
