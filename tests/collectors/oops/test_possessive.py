"""collectors.oops.possessive: a possessive repeat of a group becomes the atomic group that means
the same, which Python 3.11.0-3.11.4 match correctly; everything else is left as written."""

from __future__ import annotations

import re

import pytest

from collectors.oops import possessive


@pytest.mark.parametrize(("written", "rewritten"), [
    (r"(?:\s++b)*+$", r"(?>(?:\s++b)*)$"),
    (r"(a|b)++c", r"(?>(a|b)+)c"),
    (r"(?:x(?:y)?+)*+", r"(?>(?:x(?>(?:y)?))*)"),
    (r"(?:ab){2,3}+", r"(?>(?:ab){2,3})"),
    (r"\(x\)*+[()]*+(?:z)*", r"\(x\)*+[()]*+(?:z)*"),
    (r"[^\]]*+\s*+(?P<n>\w++)", r"[^\]]*+\s*+(?P<n>\w++)"),
    (r"[]()]++(?:q)", r"[]()]++(?:q)"),
])
def test_rewrite(written: str, rewritten: str) -> None:
    assert possessive.atomic_groups(written) == rewritten


def test_module_list_continuation_matches_on_every_311() -> None:
    pattern = (r"^\s*+[\w-]++(?:\([A-Z+-]++\))*+(?:\s++[\w-]++(?:\([A-Z+-]++\))*+)*+"
               r"(?:\s++\[last unloaded: [^\]]*+\])?\s*+$")
    assert possessive.compile(pattern).match("bridge stp llc [last unloaded: kvm]")
    assert not possessive.compile(pattern).match("bridge stp: llc")


def test_same_matches_as_the_possessive_form_here() -> None:
    # On a Python whose possessive repeats are right, both forms agree on every input.
    pattern = r"(?:<(?:IRQ|NMI)>\s*+)*+(\w++)\+0x"
    for text in ["<IRQ> <NMI> foo+0x1", "<IRQ>foo+0x", "bar+0x", "<IRQ> +0x", ""]:
        a, b = re.match(pattern, text), possessive.compile(pattern).match(text)
        assert (a and a.group(0, 1)) == (b and b.group(0, 1)), text
