"""Kernel taint flags: parse the ``Tainted:`` field, explain the letters (kernel/panic.c
``taint_flags``), and ABRT's ``kernel_tainted_short``/``kernel_tainted_long`` rules
(docs/formats/libreport.md §5.5)."""

from __future__ import annotations

import re

# kernel/panic.c taint_flags[] and Documentation/admin-guide/tainted-kernels.rst.
TAINT_MEANINGS: dict[str, str] = {
    "G": "no proprietary module loaded",
    "P": "proprietary module loaded",
    "F": "module was force loaded",
    "S": "kernel running on an out-of-specification system",
    "R": "module was force unloaded",
    "M": "processor reported a machine check exception",
    "B": "bad page referenced or unexpected page flags",
    "U": "taint requested by userspace",
    "D": "kernel died recently (OOPS or BUG)",
    "A": "ACPI table overridden by user",
    "W": "kernel issued a warning",
    "C": "staging driver loaded",
    "I": "workaround for a platform firmware bug applied",
    "O": "externally-built (out-of-tree) module loaded",
    "E": "unsigned module loaded",
    "L": "soft lockup occurred",
    "K": "kernel has been live patched",
    "X": "auxiliary taint (distribution-defined)",
    "T": "kernel built with the struct randomization plugin",
    "N": "an in-kernel test has been run",
    "J": "userspace used a mutating debug operation in fwctl",
    "H": "hardware is unsupported (Red Hat kernels)",
}

# ABRT's long descriptions: every letter except the silent G/H/J/Q/V/Y/Z (§5.5).
_ABRT_SILENT = frozenset("GHJQVYZ")

_TAINTED_RE = re.compile(r"Tainted: ([A-Z ]*)")


def tainted_letters(text: str) -> str:
    """Taint letters of the first ``Tainted:`` field in ``text`` ("" if none/"Not tainted")."""
    m = _TAINTED_RE.search(text)
    if not m:
        return ""
    return "".join(ch for ch in m.group(1) if ch != " ")


def taint_meanings(letters: str) -> dict[str, str]:
    """Map each taint letter to the kernel's meaning (unknown letters say so)."""
    return {ch: TAINT_MEANINGS.get(ch, "unknown taint flag") for ch in letters}


def abrt_tainted_short(text: str) -> str | None:
    """ABRT ``kernel_tainted_short``: uppercase letters after ``Tainted: `` (spaces skipped,
    stop at any other character); None when the text has no ``Tainted: `` ("G" alone counts)."""
    idx = text.find("Tainted: ")
    if idx < 0:
        return None
    out = []
    for ch in text[idx + len("Tainted: "):]:
        if ch == " ":
            continue
        if "A" <= ch <= "Z":
            out.append(ch)
            continue
        break
    return "".join(out)


def abrt_tainted_long(short: str) -> str:
    """ABRT ``kernel_tainted_long``: ``"<L> - <text>\\n"`` per known letter, silent ones skipped."""
    lines = []
    for ch in short:
        if ch in _ABRT_SILENT or ch not in TAINT_MEANINGS:
            continue
        lines.append(f"{ch} - {TAINT_MEANINGS[ch][0].upper()}{TAINT_MEANINGS[ch][1:]}.\n")
    return "".join(lines)
