"""``re.compile`` for the oops parser's patterns, correct on every Python 3.11.

The parser's patterns use possessive quantifiers (``X*+``, ``(?:...)++``) so that no hostile
line can make them backtrack for long (tests/security/test_oops_redos.py). Python 3.11.0-3.11.4
mis-match a possessive repeat of a *group*: on Debian 12's Python 3.11.2,
``(?:\\s++[\\w-]++)*+(?:\\s++\\[last unloaded: [^\\]]*+\\])?$`` does not match
``" stp llc [last unloaded: kvm]"``, which later releases match. An atomic group around a
greedy repeat means exactly the same (``(?:X)*+`` is ``(?>(?:X)*)``) and is matched correctly
there, so :func:`compile` rewrites each possessive group repeat into that form first. Possessive
repeats of single characters and classes (``\\s*+``, ``[^\\]]*+``) are left alone: those were
never affected.
"""

from __future__ import annotations

import re

_QUANTIFIER = re.compile(r"[*+?]|\{\d*(?:,\d*)?\}")


def atomic_groups(pattern: str) -> str:
    """*pattern* with every possessive repeat of a group, ``(...)Q+``, written ``(?>(...)Q)``."""
    out: list[str] = []
    opened: list[int] = []          # where each open group starts in ``out``
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif ch == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end])
            i = end
        elif ch == "(":
            opened.append(len(out))
            out.append(ch)
            i += 1
        elif ch == ")" and opened:
            start = opened.pop()
            out.append(ch)
            i += 1
            q = _QUANTIFIER.match(pattern, i)
            if q and pattern.startswith("+", q.end()):
                group = "".join(out[start:])
                del out[start:]
                out.append(f"(?>{group}{q.group()})")
                i = q.end() + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _class_end(pattern: str, i: int) -> int:
    """Index after the character class that starts at ``pattern[i] == "["``."""
    j = i + 1
    if j < len(pattern) and pattern[j] == "^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":      # a leading "]" is a literal
        j += 1
    while j < len(pattern) and pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:  # noqa: A001 - re.compile's name
    """:func:`re.compile` of :func:`atomic_groups` (*pattern*)."""
    return re.compile(atomic_groups(pattern), flags)
