"""Report titles in syzkaller's compact ``KIND in FUNCTION`` form.

:func:`headline_title` titles a report whose first line carries one of the headers of
:mod:`collectors.oops.headlines`: the form that matches earliest gives the title, filled
with its captures and the guilty frames :mod:`collectors.oops.guilty` reads from the
stack. :func:`fallback_title` titles the few kinds syzkaller has no header for (OOM kills,
machine checks, bare "Oops:" lines, allocation failures). Both end in
:func:`normalize_title`: no addresses, numbers, line numbers or PIDs survive in a title.
Pure: lines in, strings out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from collectors.oops.frames import KernelFrame
from collectors.oops.guilty import CORRUPTED, guilty_frames, strip_syscall_prefix
from collectors.oops.headlines import Form, Header
from collectors.oops.skiplist import GENERIC, skips
from collectors.oops import possessive

MAX_TITLE = 120  # bytes; interleaved lines can make a headline very long


class Title(NamedTuple):
    """A report's title, its guilty function (None: none named) and the form used."""

    title: str
    function: str | None
    form: Form | None


# --- normalisation (in this order, each applied until nothing changes) ------------------------
_REPLACEMENTS: list[tuple[re.Pattern[str], str]] = [
    # executor instance numbers
    (possessive.compile(r"syz-executor\.?[0-9]++(?:[/:][0-9]++)?"), "syz-executor"),
    (possessive.compile(r"syzkaller[0-9]++(?:[/:][0-9]++)?"), "syzkaller"),
    # anything that looks like an address
    (possessive.compile(r"([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}+"), r"\1ADDR"),
    (possessive.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"), "IP"),
    # file:line
    (possessive.compile(r"(\.[0-9A-Za-z_]++)(?::[0-9]++)++"), r"\1:LINE"),
    # "func+0x1f/0x40" is "func" (a search starts only where a run of name characters does)
    (possessive.compile(r"(?<![a-zA-Z0-9_.])([0-9_.]*+)([a-zA-Z][a-zA-Z0-9_.]++)\+0x[0-9a-z]++/0x[0-9a-z]++"), r"\1\2"),
    (possessive.compile(r"CPU#[0-9]++"), "CPU"),
    # other decimal numbers, except in names (cfg80211_...), unless they are too long for one
    (possessive.compile(r"([^0-9A-Za-z_])([0-9]++)([^0-9A-Za-z_]|$)"), r"\1NUM\3"),
    (possessive.compile(r"[0-9]{7,}+"), "NUM"),
]


def normalize_title(text: str) -> str:
    """``text`` with run-specific numbers replaced (ADDR, NUM, LINE, IP), printable ASCII
    only, blanks collapsed, at most :data:`MAX_TITLE` bytes."""
    for rx, repl in _REPLACEMENTS:
        while True:
            new = rx.sub(repl, text)
            if new == text:
                break
            text = new
    out = []
    prev = " "
    for byte in text.encode("utf-8", "replace")[:MAX_TITLE]:
        ch = " " if byte == 9 else chr(byte)
        if byte < 0x20 and byte != 9 or byte >= 0x7F:
            continue
        if ch == " " and prev == " ":
            continue
        out.append(ch)
        prev = ch
    return "".join(out).strip()


# --- headline forms ------------------------------------------------------------------------
def _first_match(form: Form, lines: Sequence[str], literal: str,
                 candidates: Sequence[int]) -> tuple[tuple[int, int], re.Match[str]] | None:
    for i in candidates:
        m = form.title.search(lines[i])
        if m:
            col = lines[i].find(literal) if form.title.pattern.startswith("^") else m.start()
            return (i, max(col, 0)), m
    return None


def _report_match(form: Form, lines: Sequence[str]) -> tuple[tuple[int, int], list[str]] | None:
    """Where the form's ``report`` sequence starts and its captures; None: it does not match."""
    captures: list[str] = []
    start: tuple[int, int] | None = None
    at = 0
    for rx in form.report:
        while at < len(lines):
            m = rx.search(lines[at])
            at += 1
            if m:
                if start is None:
                    start = (at - 1, m.start())
                captures += [g or "" for g in m.groups()]
                break
        else:
            return None
    return (start or (0, 0)), captures


def _format(fmt: str, args: Sequence[str]) -> str:
    try:
        return fmt.format(*args)
    except (IndexError, KeyError):
        return fmt


def headline_title(lines: Sequence[str], header: Header) -> Title:
    """Title of a report whose lines (prefix-stripped; the first one is the headline line)
    carry ``header``."""
    literal = header.literal
    candidates = [i for i, line in enumerate(lines) if literal in line]
    best: tuple[int, int] | None = None
    title: str | None = None
    chosen: Form | None = None
    for form in header.forms:
        found = _first_match(form, lines, literal, candidates)
        if found is None:
            continue
        pos, m = found
        if best is not None and (pos > best or (pos == best and title is not None)):
            continue
        if best is None or pos < best:
            best, title, chosen = pos, None, None
        if form.report:
            rep = _report_match(form, lines)
            if rep is None:
                continue
            start, args = rep
        else:
            start, args = pos, [g or "" for g in m.groups()]
        frames: list[str] = []
        if form.parts:
            tail = [lines[start[0]][start[1]:]] + list(lines[start[0] + 1:])
            frames, _ = guilty_frames(tail, form.parts, form.parts2, form.skip, form.extractor)
        title, chosen = _format(form.fmt, args + frames), form
    if title is None:
        first = next((line for line in lines if literal in line), lines[0] if lines else "")
        title = first[first.find(literal):] if literal in first else first
    text = normalize_title(title)
    return Title(text, function_in(text), chosen)


_IN_FUNCTION = possessive.compile(r" in ((?:<[a-zA-Z0-9_: ]++>)?[a-zA-Z0-9_:]++(?: ?/ ?[a-zA-Z0-9_:]++)*+)")


def function_in(title: str) -> str | None:
    """The function a title names: the name after its last `` in `` (of ``a/b``, the
    first that is not ``corrupted``); ``corrupted`` when no frame could be trusted."""
    found = None
    for m in _IN_FUNCTION.finditer(title):
        found = m.group(1)
    if found is None:
        return None
    names = [n.strip() for n in found.split("/")]
    return next((n for n in names if n and n != CORRUPTED), CORRUPTED)


# --- kinds without a headline form -----------------------------------------------------------
def _compile(names: Sequence[str]) -> re.Pattern[str]:
    # Whole-name alternatives; a "\w+" is never followed by a literal (linear in the name).
    return possessive.compile(r"^(?:" + "|".join(names) + r")$")


# Reporting paths the headline forms never title, skipped when a report without a form
# picks its function: exception entry, page-fault handling, the OOM killer and the page
# allocator's slow path, machine-check handling.
_SKIP = _compile([
    r"asm_exc_\w+", r"exc_\w+", r"asm_sysvec_\w+", r"sysvec_\w+", r"__sysvec_\w+", r"do_error_trap",
    r"do_invalid_op", r"do_general_protection", r"do_double_fault", r"die\w*", r"__die\w*", r"oops_\w+",
    r"bad_area\w*", r"__bad_area\w*", r"no_context", r"page_fault_oops", r"kernelmode_fixup_or_oops",
    r"do_user_addr_fault", r"do_kern_addr_fault", r"__do_page_fault", r"handle_page_fault", r"async_page_fault",
    r"general_protection", r"error_entry", r"fixup_exception\w*", r"ex_handler_\w+", r"__do_kernel_fault",
    r"el1_\w+", r"el1h_\w+", r"do_bad_area", r"die_kernel_fault", r"bug_handler", r"call_break_hook",
    r"brk_handler", r"show_regs\w*", r"__show_regs", r"show_trace\w*", r"dump_header", r"oom_kill_process",
    r"out_of_memory", r"__alloc_pages\w*", r"__get_free_pages", r"__folio_alloc\w*", r"mce_\w+", r"do_machine_check",
    r"machine_check\w*", r"nmi_\w+", r"do_nmi", r"default_do_nmi", r"end_repeat_nmi",
])


def _usable(name: str) -> bool:
    return not skips(GENERIC, name) and not _SKIP.match(name)


def fallback_function(rip: KernelFrame | None, frames: Sequence[KernelFrame]) -> str | None:
    """For a report without a headline form: the instruction pointer's function, else the
    first reliable frame of its trace, that is not infrastructure."""
    names = [rip.function] if rip is not None and rip.function else []
    reliable = [f.function for f in frames if f.function and f.reliable]
    names += reliable or [f.function for f in frames if f.function]
    for name in names:
        base = name.split(".", 1)[0]
        if base and _usable(base):
            return strip_syscall_prefix(base)
    return None


#: Headlines of the kinds without a form, ``kind -> headline`` (`` in FUNCTION`` added).
_FALLBACK_HEADLINES = {
    "oops": "Oops",
    "page-alloc-failure": "page allocation failure",
    "stack-overflow": "BUG: stack overflow",
    "hard-lockup": "BUG: hard lockup",
}


def fallback_title(kind: str, first_line: str, function: str | None, extra: dict[str, str]) -> str:
    """Title of a report of ``kind`` whose lines carry no headline form."""
    in_f = f" in {function}" if function else ""
    if kind == "oom":
        victim = extra.get("victim")
        head = "Memory cgroup out of memory" if extra.get("memcg") else "Out of memory"
        if victim:
            return normalize_title(f"{head}: Killed process {victim}")
        invoker = extra.get("invoker")
        return normalize_title(f"{head}: oom-killer invoked by {invoker}" if invoker else head)
    if kind == "mce":
        if "events logged" in first_line:
            return "MCE: machine check events logged"
        return "MCE: machine check exception"
    headline = _FALLBACK_HEADLINES.get(kind)
    if headline is not None:
        return normalize_title(headline + in_f)
    return normalize_title(first_line + in_f if function and function not in first_line else first_line)
