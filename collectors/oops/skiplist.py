"""Infrastructure frames: functions that are never the culprit of a kernel report.

The guilty frame of a report is the first frame of its stack that is not generic
machinery. The table below lists that machinery by group, in the way syzkaller's
``pkg/report`` does for its titles (the same bucketing rules, so a title found here is
the title a syzbot user knows). Entries are matched against the whole (demangled)
function name:

- ``name`` matches any function whose name *contains* ``name``;
- ``^name`` a name that starts with it, ``name$`` one that ends with it, ``^name$`` only
  ``name`` itself;
- ``a*b``: contains ``a`` and, after it, ``b``;
- ``^name#``: starts with ``name`` followed by a decimal digit.

No regular expression is involved: a skip test is a handful of ``str`` operations, linear
in the name's length whatever the name holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

#: ``(group, entries)``; the comment above each group says why its frames are skipped.
INFRASTRUCTURE: tuple[tuple[str, tuple[str, ...]], ...] = (
    # Sanitizers (KASAN/KMSAN/KCSAN/UBSAN, hwasan) and the coverage hooks every
    # instrumented function calls (__sanitizer_cov_trace_pc ...): they detect or record,
    # the access that went wrong is in their caller.
    ("sanitizers", (
        "__sanitizer", "__asan", "kasan", "hwasan", "__msan", "kmsan", "kcsan_setup_watchpoint",
        "check_memory_region", "check_heap_object", "check_object", "read_word_at_a_time",
        "read_once_*nocheck", "write_once_*nocheck", "print_address_description", "__phys_addr",
        "__fortify_report",
    )),
    # Reporting plumbing: panic(), the WARN/BUG trap handlers, stack dumpers and the
    # unwinder, the arm64/powerpc exception entry that leads to them.
    ("warn-bug-plumbing", (
        "panic", "invalid_op", "report_bug", "fixup_bug", "print_report", "print_usage_bug", "do_error",
        "_trap$", "do_trap", "show_stack", "dump_stack", "walk_stack", "dump_backtrace", "warn_slowpath",
        "warn_alloc", "warn_bogus", "__warn", "print_tainted", "^get_taint$", "program_check_exception",
        "program_check_common", "do_kernel_fault", "do_translation_fault", "do_mem_abort", "el1_abort",
        "el1h_64_sync", "stack_trace_consume_entry", "arch_stack_walk", "stack_trace_save",
        "hex_dump_to_buffer", "print_hex_dump", "_indirect_thunk_",
        # not in syzkaller's list: the stack dumper of 2.6-4.x x86 kernels, first in their traces
        "^dump_trace$",
    )),
    # printk and the formatting helpers it calls (vsnprintf's string()/pointer()), and the
    # dev_*() printing wrappers.
    ("printk", (
        "string", "pointer", "snprintf", "scnprintf", "kasprintf", "kvasprintf", "printk", "va_format",
        "dev_info", "dev_notice", "dev_warn", "dev_err", "dev_alert", "dev_crit", "dev_emerg",
    )),
    # Allocators and the page-cache getters that allocate: a failure inside them is the
    # caller's bad size or flags, a leak is the caller's missing free.
    ("allocators", (
        "alloc_page", "malloc", "zalloc", "calloc", "krealloc", "kmem_cache", "allocate_slab",
        "__alloc_frozen_pages_noprof", "folio_alloc", "folio_unlock", "filemap_alloc_folio",
        "__filemap_get_folio", "find_or_create_page", "do_read_cache_folio", "read_cache_page",
        "pagecache_get_page", "grab_cache_page_write_begin", "slab_", "^kfree$", "^kvfree$", "kfree_skb",
        "ida_free", "find_lock_entries", "truncate_inode_pages_range",
    )),
    # Object debugging (debugobjects): it reports the misuse of a timer/work object.
    ("debugobjects", ("debug_object", "timer_is_static_object", "work_is_static_object")),
    # Locking and lockdep: lock primitives, their slow paths and the irq-state tracing
    # around them; the lock's taker is the interesting frame.
    ("locking", (
        "__might_fault", "print_unlock", "imbalance_bug", "lockdep", "bh_enable", "bh_disable", "perf_trace",
        "lock_acquire", "lock_release", "lock_class", "mark_lock", "reacquire_held_locks", "mark_held_locks",
        "raw_spin_rq", "spin_lock", "spin_trylock", "spin_unlock", "read_lock", "read_trylock", "write_lock",
        "write_trylock", "read_unlock", "write_unlock", "^down$", "down_read", "down_write", "down_trylock",
        "up_read", "up_write", "^mutex_", "^__mutex_", "^rt_mutex_", "owner_on_cpu", "osq_lock", "osq_unlock",
        "might_fault", "might_sleep", "__might_resched", "trace_hardirq", "trace_softirq", "lockdep_hardirq",
        "lockdep_softirq", "^lock_page", "^unlock_page", "seqprop_assert",
    )),
    # Atomics, bit operations, reference counting (refcount_t, kref, ref_tracker) and the
    # put/get helpers of common objects: a refcount warning blames the caller.
    ("refcount-atomics", (
        "atomic_dec", "atomic_inc", "atomic_read", "atomic_set", "atomic_or", "atomic_xor", "atomic_and",
        "atomic_add", "atomic_sub", "atomic_fetch", "atomic_xchg", "atomic_cmpxchg", "atomic_try",
        "atomic64_dec", "atomic64_inc", "atomic64_read", "atomic64_set", "atomic64_or", "atomic64_xor",
        "atomic64_and", "atomic64_add", "atomic64_sub", "atomic64_fetch", "atomic64_xchg", "atomic64_cmpxchg",
        "atomic64_try", "set_bit", "clear_bit", "change_bit", "test_bit", "^refcount_", "^kref_", "ref_tracker",
        "^put_device$", "^iput$", "^iput_final$", "^ihold$", "fast_dput", "dput", "drop_nlink", "^klist_",
        "kobject_",
    )),
    # List debugging and the generic containers (rbtree, xarray, rhashtable): they trip on
    # corruption their user caused.
    ("lists-trees", (
        "list_add", "list_del", "list_replace", "list_move", "list_splice", "^rb_", "^__rb_",
        "xas_start", "xas_load", "xas_find", "rhashtable_lookup",
    )),
    # String, memory and user-copy helpers.
    ("string-copy", (
        "memcpy", "memcmp", "memset", "memchr", "memmove", "memdup", "strcmp", "strncmp", "strcpy", "strlcpy",
        "strncpy", "strscpy", "strlen", "strstr", "strnstr", "strnlen", "strchr", "strdup", "strndup",
        "copy_to_user", "copy_from_user", "copy_to_iter", "copy_from_iter", "copy_page_to_iter",
        "copy_page_from_iter", "copy_folio_to_iter", "^copyin$", "^copyout$", "put_user", "get_user",
        "extract_user_to_sg", "extract_iter_to_sg",
    )),
    # Workqueues, timers, completions and waits: they run or wait for someone else's work.
    ("workqueue-timer", (
        "__wake_up", "del_timer", "flush_work", "__cancel_work_timer", "cancel_work_sync", "try_to_grab_pending",
        "flush_workqueue", "drain_workqueue", "destroy_workqueue", "queue_work", "finish_wait", "kthread_stop",
        "^complete$", "wait_for_completion", "insert_work", "__queue_delayed_work", "queue_delayed_work_on",
        "cleanup_srcu_struct", "lock_timer_base", "__timer_delete_sync", "sk_stop_timer_sync", "__mod_timer",
    )),
    # Device-core registration and teardown wrappers: the driver that calls them is the
    # one to blame.
    ("device-core", (
        "add_uevent_var", "get_device_parent", "device_add", "device_del", "device_unregister",
        "device_destroy", "device_release", "devres_release_all", "hwrng_unregister", "i2c_del_adapter",
        "__unregister_client", "device_for_each_child", "rollback_registered", "unregister_netdev",
        "sysfs_remove", "device_remove_file", "tty_unregister_device",
    )),
    # USB submit/kill/control helpers (and the dummy HCD under them): a bad URB is built
    # by the driver that submits it.
    ("usb-wrappers", (
        "dummy_urb_enqueue", "usb_kill_urb", "usb_kill_anchored_urbs", "usb_control_msg", "usb_hcd_submit_urb",
        "usb_submit_urb",
    )),
    # MMIO/port accessors and checksum helpers: they fault on their caller's address/buffer.
    ("io-checksums", (
        "readb$", "readw$", "readl$", "readq$", "writeb$", "writew$", "writel$", "writeq$", "logic_in",
        "logic_out", "^crc#", "crc_itu_t",
    )),
    # Filesystem assertion helpers (btrfs assertfail): the assertion's caller failed it.
    ("assertions", ("assertfail",)),
)


class SkipSet(NamedTuple):
    """A compiled skip list: :func:`skips` tells whether a function name is in it."""

    contains: tuple[str, ...]
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    exact: frozenset[str]
    ordered: tuple[tuple[str, str], ...]  # "a*b" entries
    digit_prefixes: tuple[str, ...]  # "^crc#" entries


def compile_skips(entries: Iterable[str]) -> SkipSet:
    """Turn entries in the notation of this module into a :class:`SkipSet`."""
    contains: list[str] = []
    prefixes: list[str] = []
    suffixes: list[str] = []
    exact: set[str] = set()
    ordered: list[tuple[str, str]] = []
    digits: list[str] = []
    for entry in entries:
        anchored_start = entry.startswith("^")
        body = entry[1:] if anchored_start else entry
        anchored_end = body.endswith("$")
        body = body[:-1] if anchored_end else body
        if "*" in body:
            first, _, second = body.partition("*")
            ordered.append((first, second))
        elif body.endswith("#"):
            digits.append(body[:-1])
        elif anchored_start and anchored_end:
            exact.add(body)
        elif anchored_start:
            prefixes.append(body)
        elif anchored_end:
            suffixes.append(body)
        else:
            contains.append(body)
    return SkipSet(tuple(contains), tuple(prefixes), tuple(suffixes), frozenset(exact), tuple(ordered),
                   tuple(digits))


def skips(skip: SkipSet, name: str) -> bool:
    """True when ``name`` is one of the functions ``skip`` lists."""
    if name in skip.exact or name.startswith(skip.prefixes) or name.endswith(skip.suffixes):
        return True
    for part in skip.contains:
        if part in name:
            return True
    for first, second in skip.ordered:
        at = name.find(first)
        if at >= 0 and name.find(second, at + len(first)) >= 0:
            return True
    for head in skip.digit_prefixes:
        if name.startswith(head) and name[len(head):len(head) + 1].isdigit():
            return True
    return False


#: Every group of :data:`INFRASTRUCTURE`, in one list.
GENERIC_ENTRIES: tuple[str, ...] = tuple(e for _, group in INFRASTRUCTURE for e in group)
GENERIC = compile_skips(GENERIC_ENTRIES)


def with_extra(extra: Iterable[str]) -> SkipSet:
    """The generic skip list plus a headline's own entries."""
    return compile_skips(GENERIC_ENTRIES + tuple(extra))
