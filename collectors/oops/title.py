"""Titles in syzkaller's compact ``KIND in FUNCTION`` form and the guilty-function choice.

The guilty function is the first frame that is not reporting machinery (printk, panic,
__warn, the sanitizer/lockdep internals, exception entry, mem*/str*/copy_*_user helpers,
list debugging...). Titles never carry addresses, PIDs, CPU or line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from collectors.oops.frames import KernelFrame

_SKIP_GENERAL = [
    r"dump_stack\w*", r"show_stack\w*", r"show_trace\w*", r"show_regs\w*", r"__show_regs", r"dump_backtrace\w*",
    r"_?printk\w*", r"vprintk\w*", r"panic\w*", r"nmi_panic", r"__warn\w*", r"warn_slowpath\w*", r"warn_alloc\w*",
    r"report_bug\w*", r"handle_bug", r"do_error_trap", r"do_trap\w*", r"do_invalid_op", r"do_divide_error",
    r"do_general_protection", r"do_double_fault", r"exc_\w+", r"asm_exc_\w+", r"asm_sysvec_\w+", r"sysvec_\w+",
    r"__sysvec_\w+", r"die\w*", r"__die\w*", r"oops_\w+", r"bad_area\w*", r"__bad_area\w*", r"no_context",
    r"page_fault_oops", r"kernelmode_fixup_or_oops", r"do_user_addr_fault", r"do_kern_addr_fault",
    r"__do_page_fault", r"do_page_fault", r"handle_page_fault", r"page_fault", r"async_page_fault",
    r"general_protection", r"invalid_op", r"divide_error", r"error_entry", r"error_exit", r"ud2",
    r"fixup_exception\w*", r"ex_handler_\w+", r"do_mem_abort", r"__do_kernel_fault", r"el1_\w+", r"el1h_\w+",
    r"do_bad_area", r"__do_user_fault", r"die_kernel_fault", r"bug_handler", r"call_break_hook", r"brk_handler",
    r"_*kasan_\w+", r"check_memory_region\w*", r"print_address_description\w*", r"print_report",
    r"describe_object\w*", r"__asan_\w+", r"asan_\w+", r"kmsan_\w+", r"__msan_\w+", r"kcsan_\w+", r"__kcsan_\w+",
    r"__tsan_\w+", r"ubsan_\w+", r"__ubsan_\w+", r"kfence_\w+", r"__kfence_\w+", r"report_\w+",
    r"lock_acquire\w*", r"__lock_acquire\w*", r"lock_release", r"lockdep_\w+", r"__lockdep_\w+",
    r"print_\w+", r"validate_chain", r"check_prevs?_add", r"check_noncircular", r"check_deadlock",
    r"check_irq_usage", r"mark_lock\w*", r"mark_held_locks", r"mark_usage", r"valid_state",
    r"debug_check_no_locks_\w+", r"trace_hardirqs_\w+", r"lock_is_held\w*", r"__lock_is_held",
    r"lockdep_rcu_suspicious", r"__might_sleep", r"___might_sleep", r"__might_resched", r"__might_fault",
    r"might_fault", r"__cant_sleep", r"__schedule_bug", r"schedule_debug\w*",
    r"_?_?mem(?:cpy|set|move|cmp|chr|scan)\w*", r"__mem\w+", r"memcpy_\w+",
    r"_?_?str(?:cpy|ncpy|len|nlen|cmp|ncmp|casecmp|chr|nchr|rchr|lcpy|scpy|cat|ncat|lcat|str|sep|spn|cspn|pbrk|dup|ndup)\w*",
    r"_?_?copy_(?:to|from|in)_user\w*", r"__copy_\w+", r"copy_user_\w+", r"raw_copy_\w+", r"rep_movs_\w+",
    r"__get_user\w*", r"__put_user\w*", r"strncpy_from_user", r"strnlen_user", r"__?check_object_size",
    r"__check_heap_object", r"usercopy_abort", r"__list_(?=\w++$)\w+?_or_report", r"dump_trace\w*",
    r"kfree", r"kfree_sensitive", r"kvfree\w*", r"kmem_cache_free\w*", r"__kmem_cache_free\w*", r"slab_free\w*",
    r"__slab_free", r"do_slab_free", r"___cache_free", r"__cache_free", r"kfree_rcu\w*",
    r"instrument_\w+",
    r"refcount_\w+", r"__refcount_\w+", r"__stack_chk_fail\w*", r"__fortify_\w+", r"fortify_panic",
    r"stack_trace_\w+", r"save_stack\w*", r"arch_stack_walk\w*", r"__save_stack_trace\w*", r"unwind_\w+",
    r"__unwind_\w+", r"nmi_cpu_backtrace\w*", r"nmi_trigger_cpumask_backtrace", r"arch_trigger_\w+",
    r"trigger_(?=\w++$)\w+?_backtrace\w*", r"watchdog_overflow_callback", r"watchdog_timer_fn", r"__perf_event_overflow",
    r"perf_event_overflow", r"intel_pmu_handle_irq", r"perf_event_nmi_handler", r"nmi_handle\w*", r"do_nmi",
    r"default_do_nmi", r"end_repeat_nmi", r"nmi", r"should_fail\w*", r"fail_dump", r"bad_page\w*",
    r"free_pages_prepare", r"free_page_is_bad\w*", r"check_free_page\w*", r"check_new_page\w*",
    r"free_pcp_prepare", r"__free_pages_ok", r"free_unref_page\w*", r"__free_pages", r"free_pages",
    r"check_preemption_disabled", r"debug_smp_processor_id", r"__this_cpu_preempt_check",
    r"__warn_printk", r"__report_bad_irq", r"note_interrupt", r"__dump_stack", r"show_mem\w*",
    r"dump_header", r"oom_kill_process", r"out_of_memory", r"__alloc_pages\w*", r"alloc_pages\w*",
    r"__get_free_pages", r"kmalloc\w*", r"__kmalloc\w*", r"kmem_cache_alloc\w*", r"kzalloc\w*",
    r"__kmem_cache_alloc\w*", r"slab_alloc\w*", r"__slab_alloc\w*", r"___slab_alloc", r"krealloc\w*",
    r"kvmalloc\w*", r"__vmalloc\w*", r"vmalloc\w*", r"alloc_slab_page", r"allocate_slab", r"new_slab",
    r"_?_?folio_alloc\w*", r"vma_alloc_folio\w*",
]
# Lock primitives: the lock is not the culprit, its taker is (kernel/locking/*).
_LOCK_PRIMS = [
    r"_raw_\w+", r"__raw_\w+", r"do_raw_\w+", r"(?:native_|__pv_|pv_)?queued_(?:spin|read|write)_lock\w*",
    r"spin_(?:un)?lock\w*", r"spin_trylock\w*", r"(?:raw_)?(?:read|write)_(?:un)?lock\w*",
    r"__?mutex_(?:un)?lock\w*", r"mutex_trylock\w*", r"__mutex_lock_common", r"down_(?:read|write)\w*",
    r"up_(?:read|write)\w*", r"__?down_common", r"down", r"up", r"down_trylock", r"down_interruptible",
    r"down_killable", r"down_timeout", r"rwsem_\w+", r"__rwsem_\w+", r"rcu_read_(?:un)?lock\w*", r"rcu_lock_acquire",
    r"local_bh_(?:disable|enable)\w*", r"__local_bh_\w+", r"percpu_down_\w+", r"percpu_up_\w+",
]
# List debugging helpers: skipped only for list corruption reports (syzkaller keeps them as the
# crash site of a general protection fault / KASAN report: "general protection fault in __list_del_entry_valid").
_LIST_HELPERS = [r"__list_\w+", r"list_(?:add|del)\w*", r"__hlist_\w+", r"hlist_\w+"]
# Reference helpers inlined into a refcount_t warning's stack ("sock_hold include/net/sock.h [inline]").
_REF_HELPERS = [r"sock_hold", r"sock_put", r"__sock_put", r"kref_\w+", r"get_(?=\w++$)\w+?_ref", r"__refcount_\w+"]
# Sanitizer header function ("BUG: KASAN: TYPE in F"): only the sanitizer itself and the
# string/copy/free helpers it instruments are skipped (the access site may be anything, even
# lockdep's __lock_acquire).
_SANITIZER_HEADER_SKIP = [
    r"kasan_\w+", r"__kasan_\w+", r"_+kasan_\w+", r"check_memory_region\w*", r"__asan_\w+", r"asan_\w+",
    r"kmsan_\w+", r"__msan_\w+", r"kfence_\w+", r"__kfence_\w+", r"instrument_\w+",
    r"_?_?mem(?:cpy|set|move|cmp|chr|scan)\w*", r"__mem\w+", r"memcpy_\w+",
    r"_?_?str(?:cpy|ncpy|len|nlen|cmp|ncmp|casecmp|chr|nchr|rchr|lcpy|scpy|cat|ncat|lcat|str|sep|spn|cspn|pbrk|dup|ndup)\w*",
    r"_?_?copy_(?:to|from|in)_user\w*", r"__copy_\w+", r"copy_user_\w+", r"raw_copy_\w+", r"rep_movs_\w+",
    r"kfree", r"kfree_sensitive", r"kvfree\w*", r"kmem_cache_free\w*", r"__kmem_cache_free\w*", r"slab_free\w*",
    r"__slab_free", r"do_slab_free",
]
_COPY_USER = re.compile(r"^(?:_?_?copy_(?:to|from|in)_user\w*|raw_copy_\w+|copy_user_\w+)$")

_SKIP_SCHED = [
    r"schedule\w*", r"__schedule\w*", r"io_schedule\w*", r"context_switch", r"__switch_to\w*",
    r"finish_task_switch\w*", r"__?mutex_lock\w*", r"mutex_lock\w*", r"rwsem_down_\w+", r"__?down_\w+",
    r"down_\w+", r"down", r"__?rt_mutex_\w+", r"wait_for_completion\w*", r"__wait_for_common",
    r"wait_for_common\w*", r"do_wait_for_common", r"__wait_on_\w+", r"wait_on_\w+", r"out_of_line_wait_on_\w+",
    r"bit_wait\w*", r"__wait_\w+", r"wait_\w+", r"prepare_to_wait\w*", r"schedule_timeout\w*",
    r"percpu_down_\w+", r"__percpu_down_\w+", r"rcu_sync_\w+", r"synchronize_\w+", r"__synchronize_\w+",
    r"__flush_work\w*", r"flush_work", r"__?flush_workqueue", r"kthread", r"ret_from_fork\w*",
    r"__?lock_page\w*", r"__?folio_lock\w*", r"folio_wait_\w+", r"__folio_lock\w*", r"do_task_dead",
    r"preempt_schedule\w*", r"__cond_resched", r"_cond_resched", r"cond_resched\w*", r"yield",
]
_SKIP_IRQ = [
    r"rcu_\w+", r"__rcu_\w+", r"print_cpu_stall\w*", r"check_cpu_stall\w*", r"update_process_times",
    r"tick_\w+", r"hrtimer_\w+", r"__hrtimer_\w+", r"__run_hrtimer", r"apic_timer_interrupt",
    r"smp_apic_timer_interrupt", r"local_apic_timer_interrupt", r"irq_exit\w*", r"__irq_exit_rcu",
    r"__do_softirq", r"do_softirq\w*", r"invoke_softirq", r"handle_irq\w*", r"irq_enter\w*",
    r"sched_clock_tick", r"scheduler_tick", r"account_\w+", r"watchdog\w*", r"softlockup_\w+",
    r"run_timer_softirq", r"__run_timers\w*", r"call_timer_fn", r"timer_interrupt", r"irq_work_\w+",
    r"sched_show_task", r"dump_cpu_task", r"__switch_to\w*", r"sched_clock\w*", r"delay_tsc", r"__const_udelay",
    r"__udelay", r"__delay", r"native_safe_halt", r"cpu_relax", r"touch_nmi_watchdog",
]


def _compile(names: Sequence[str]) -> re.Pattern[str]:
    # Linear in the name's length: a name with a literal after a "\w+" ("get_\w+_ref") is
    # written "get_(?=\w++$)\w+?_ref" (the rest is all word characters, then the literal's
    # first occurrence), else each occurrence of the literal would rescan to the end.
    return re.compile(r"^(?:" + "|".join(names) + r")$")


_GENERAL = _SKIP_GENERAL + _LOCK_PRIMS
_SKIP = _compile(_GENERAL)
_SKIP_WITH_SCHED = _compile(_GENERAL + _SKIP_SCHED)
_SKIP_WITH_IRQ = _compile(_GENERAL + _SKIP_IRQ)
_SKIP_LIST_CORRUPTION = _compile(_GENERAL + _LIST_HELPERS)
_SKIP_REFCOUNT = _compile(_GENERAL + _REF_HELPERS)
_SKIP_LOCK_AT = _compile(_LOCK_PRIMS + [r"lock_acquire\w*", r"__lock_acquire\w*", r"lockdep_\w+"])
_SKIP_SANITIZER_HEADER = _compile(_SANITIZER_HEADER_SKIP)
# Function names the compiler cloned ("foo.isra.0", "foo.part.24", "foo.constprop.0", "foo.cold"):
# titles and the guilty function carry the source name.
_CLONE_SUFFIX = re.compile(r"\.(?:isra|part|constprop|cold|llvm|lto_priv|clone|localalias|\d++$)\b.*$")
# Function name as it appears in a header ("in tcp_close+0x12/0x34", "at ... foo+0x8f/0xa0"),
# with the characters before it in its run (group 1, kept): a search starts only where a run
# of name characters starts, else each letter of a long run would start a scan to its end.
_HEADER_FUNC = re.compile(r"(?<![\w.$])([0-9.$]*+)([A-Za-z_][\w.$]*+)\+0x[0-9a-f]++/0x[0-9a-f]++")


def base_name(name: str) -> str:
    """``name`` without compiler clone suffixes (``.isra.0``, ``.part.24``, ``.cold``...)."""
    return _CLONE_SUFFIX.sub("", name)


def is_machinery(name: str, kind: str = "") -> bool:
    """True if ``name`` is a reporting/entry/helper frame that never is the culprit."""
    return bool(_skip_re(kind).match(base_name(name)))


def _skip_re(kind: str) -> re.Pattern[str]:
    if kind in ("hung-task", "scheduling-while-atomic"):
        return _SKIP_WITH_SCHED
    if kind in ("rcu-stall", "soft-lockup", "hard-lockup"):
        return _SKIP_WITH_IRQ
    if kind == "list-corruption":
        return _SKIP_LIST_CORRUPTION
    if kind == "refcount":
        return _SKIP_REFCOUNT
    return _SKIP


def guilty_function(kind: str, header_funcs: Sequence[str], rip: KernelFrame | None,
                    frames: Sequence[KernelFrame], after_irq: int = 0, detail: str = "") -> str | None:
    """Pick the culprit function for a report of ``kind`` (clone suffixes removed).

    ``header_funcs`` are functions named on the report's own lines (the WARNING site, the
    sanitizer's "in F", the lockdep ``at:`` functions of the lock being taken); ``after_irq``
    is the index of the first frame outside the interrupt/NMI context (lockups and stalls
    report the interrupted code, not the watchdog).
    """
    skip = _skip_re(kind)
    reliable = [f.function for f in frames if f.function and f.reliable]
    if not reliable:
        reliable = [f.function for f in frames if f.function]
    rip_names = [rip.function] if rip is not None and rip.function else []
    header = list(header_funcs)
    if kind in ("kasan", "kmsan", "kfence"):
        # The sanitizer names the access site; only its own machinery is skipped there.
        infoleak = kind == "kmsan" and "infoleak" in detail
        for name in header:
            b = base_name(name)
            if infoleak and _COPY_USER.match(b):
                return b
            if not _SKIP_SANITIZER_HEADER.match(b):
                return b
        order = reliable + rip_names
    elif kind == "lockdep":
        # The "at:" function of the lock being taken (syzkaller), unless it is a lock primitive.
        for name in header:
            b = base_name(name)
            if not _SKIP_LOCK_AT.match(b):
                return b
        order = reliable
    elif kind in ("ubsan", "hung-task", "sleeping-in-atomic", "scheduling-while-atomic", "bad-page",
                  "page-alloc-failure", "panic", "oom"):
        order = reliable + header
    elif kind in ("refcount", "list-corruption"):
        order = header + rip_names + reliable
    elif kind in ("warning", "kcsan"):
        order = header + rip_names + reliable
    elif kind in ("hard-lockup", "soft-lockup", "rcu-stall"):
        late = [f.function for f in frames[after_irq:] if f.function and f.reliable] if after_irq else []
        if after_irq and not late:
            late = [f.function for f in frames[after_irq:] if f.function]
        # With an instruction pointer, the CPU was stuck there (or in its callers, in order);
        # without one (3.10 "Task dump for CPU"), the frames after the IRQ section are.
        if rip_names and kind != "hard-lockup":
            late = []
        order = rip_names + late + reliable
    else:
        order = rip_names + reliable + header
    for name in order:
        b = base_name(name)
        if not skip.match(b):
            return b
    return None


_NUMBERS = re.compile(
    r"\b0x[0-9a-fA-F]++\b|\b[0-9a-fA-F]{8,}+\b|CPU#?\d++|\bcpu \d++|\b(?:pid|PID)[:= ]\s*+\d++|\[\d++\]|"
    r"exitcode=\S++|\b\d++(?:\.\d++)?s\b|:\d++(?=[!:\s]|$)|\(\d++\)|#\d++|\b\d{3,}+\b"
)
_BLANKS = re.compile(r"\s+")
# Headline parts make_title() reads.
_KERNEL_BUG_AT = re.compile(r"[Kk]ernel BUG at")
_KERNEL_BUG_FILE = re.compile(r"[Kk]ernel BUG at ([^\s:!]++)")
_BUG_DESC = re.compile(r"BUG: (.*)")
_DESC_END = re.compile(r"[,:\[]| - ")
_WARN_HEADLINE = re.compile(r"(NETDEV WATCHDOG|IRQ handler type mismatch|RTNL: assertion failed|sysctl table check failed)")
_KCSAN_WHERE = re.compile(r"BUG: KCSAN: [\w-]++ in (.*)")
_DETECTED = re.compile(r" detected$")
_BAD_PAGE = re.compile(r"BUG: (Bad (?:page state|page map|rss-counter state))")


def normalize_text(text: str) -> str:
    """Drop the numbers that change between runs from a free-text headline."""
    text = _NUMBERS.sub("", text)
    text = _BLANKS.sub(" ", text).strip(" ,;:-")
    return text


#: Kinds whose title is a fixed headline plus `` in <guilty function>``.
_FIXED_TITLES = {
    "gpf": "general protection fault",
    "oops": "Oops",
    "soft-lockup": "BUG: soft lockup",
    "hard-lockup": "BUG: hard lockup",
    "hung-task": "INFO: task hung",
    "rcu-stall": "INFO: rcu detected stall",
    "sleeping-in-atomic": "BUG: sleeping function called from invalid context",
    "scheduling-while-atomic": "BUG: scheduling while atomic",
    "list-corruption": "BUG: corrupted list",
    "refcount": "WARNING: refcount bug",
    "stack-protector": "kernel panic: stack is corrupted",
    "double-fault": "PANIC: double fault",
    "divide-error": "divide error",
    "invalid-opcode": "invalid opcode",
    "page-alloc-failure": "page allocation failure",
}
#: Kinds titled ``<PREFIX>: <detail> in <guilty function>``.
_DETAIL_TITLES = {"kmsan": "KMSAN", "kfence": "KFENCE", "ubsan": "UBSAN"}


def make_title(kind: str, first_line: str, detail: str, func: str | None, extra: dict[str, str]) -> str:
    """Title for a report: syzkaller's compact form (``WARNING in foo``)."""
    in_f = f" in {func}" if func else ""
    if kind in _FIXED_TITLES:
        return _FIXED_TITLES[kind] + in_f
    if kind in _DETAIL_TITLES:
        return f"{_DETAIL_TITLES[kind]}: {detail}" + in_f
    if kind in ("null-ptr-deref", "paging-request"):
        what = "NULL pointer dereference" if kind == "null-ptr-deref" else "paging request"
        if first_line.startswith("Unable to handle kernel"):
            return f"Unable to handle kernel {what}" + in_f  # arm/arm64 die_kernel_fault()
        return f"BUG: unable to handle kernel {what}" + in_f
    if kind == "bug":
        if _KERNEL_BUG_AT.search(first_line):
            if func:
                return "kernel BUG" + in_f
            m = _KERNEL_BUG_FILE.search(first_line)
            return "kernel BUG at " + (m.group(1) if m else "unknown")
        m = _BUG_DESC.search(first_line)
        desc = _DESC_END.split(m.group(1))[0] if m else first_line
        return "BUG: " + normalize_text(desc) + in_f
    if kind == "warning":
        m = _WARN_HEADLINE.search(first_line)
        if m and not first_line.startswith("WARNING"):
            return f"WARNING: {m.group(1)}" + in_f
        return "WARNING" + in_f
    if kind == "panic":
        return "kernel panic: " + normalize_text(detail or first_line)
    if kind == "kasan":
        access = extra.get("access")
        return f"KASAN: {detail}" + (f" {access}" if access else "") + in_f
    if kind == "kcsan":
        m = _KCSAN_WHERE.search(first_line)
        where = _HEADER_FUNC.sub(r"\1\2", m.group(1)).strip() if m else (func or "")
        return f"KCSAN: {detail}" + (f" in {where}" if where else "")
    if kind == "lockdep":
        d = detail.rstrip("!. ")
        if "circular" in d or "recursive" in d or "lock order" in d or "inversion" in d:
            return "possible deadlock" + in_f
        if "inconsistent lock state" in d:
            return "inconsistent lock state" + in_f
        if "suspicious RCU usage" in d:
            return "WARNING: suspicious RCU usage" + in_f
        d = _DETECTED.sub("", d)
        return f"WARNING: {d}" + in_f
    if kind == "bad-page":
        m = _BAD_PAGE.search(first_line)
        return "BUG: " + (m.group(1) if m else "Bad page state") + in_f
    if kind == "workqueue-lockup":
        return "BUG: workqueue lockup"
    if kind == "mce":
        if "events logged" in first_line:
            return "MCE: machine check events logged"
        return "MCE: machine check exception"
    if kind == "stack-overflow":
        if "stack guard page was hit" in first_line:
            return "BUG: stack guard page was hit" + in_f
        return "BUG: stack overflow" + in_f
    if kind == "oom":
        victim = extra.get("victim")
        head = "Memory cgroup out of memory" if extra.get("memcg") else "Out of memory"
        if victim:
            return f"{head}: Killed process {victim}"
        invoker = extra.get("invoker")
        return f"{head}: oom-killer invoked by {invoker}" if invoker else head
    return normalize_text(first_line)
