"""Matching rule conditions against a problem directory (libreport ``pop_next_command``).

* ``EVENT=name``: the event's name, exactly when running an event, as a prefix when listing
  the possible events (``list_possible_events``).
* ``elem=value`` / ``elem!=value``: string (in)equality with the element's text (missing ⇒
  ``""``), loaded with libreport's text rules.
* ``elem~=regex``: POSIX basic regex, true when any line of the element matches; a bad regex
  never matches.

Everything after the first ``=`` is the value, so ``a==b`` compares element ``a`` with
``=b``; there is no ``!~``.
"""

from __future__ import annotations

from collections.abc import Callable

from reporter.events.posix_regex import BadRegex, any_line_matches

#: Loads an element's text ("" when missing or unreadable).
ElementGetter = Callable[[str], str]


def parse_condition(cond: str) -> tuple[str, str, str]:
    """``(name, operator, value)`` of a condition word: operator ``=``, ``!=`` or ``~=``."""
    eq = cond.index("=")
    op = "="
    name_end = eq
    if eq > 0 and cond[eq - 1] in "~!":
        op = cond[eq - 1] + "="
        name_end = eq - 1
    return cond[:name_end], op, cond[eq + 1:]


def element_condition_holds(cond: str, get: ElementGetter, warn: Callable[[str], None] | None = None) -> bool:
    """True when the (non-``EVENT=``) condition *cond* holds for the elements *get* reads."""
    name, op, expected = parse_condition(cond)
    actual = get(name)
    if op == "~=":
        try:
            return any_line_matches(expected, actual)
        except BadRegex as exc:
            if warn is not None:
                warn(str(exc))
            return False
    equal = actual == expected
    return not equal if op == "!=" else equal


def event_matches(cond_value: str, event: str, *, prefix: bool) -> bool:
    """An ``EVENT=`` condition's value against *event* (exact, or as a prefix when listing)."""
    return cond_value.startswith(event) if prefix else cond_value == event
