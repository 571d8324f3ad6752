"""coripper.minimizer.lighttyping.NamedTuple builds what typing.NamedTuple builds for the same
class body (fields, defaults, methods, properties, docstring, _replace), so that the minimizer's
records behave the same without importing typing at run time."""

from __future__ import annotations

import typing

import pytest

from coripper.minimizer import lighttyping


def _define(base: type) -> type:
    class Segment(base):  # type: ignore[misc,valid-type]
        """A range of memory."""
        start: int
        size: int
        name: str = ""
        flags: int = 0

        def end(self) -> int:
            return self.start + self.size

        @property
        def empty(self) -> bool:
            return self.size == 0

    return Segment


def test_same_tuple_as_typing_builds() -> None:
    ours, theirs = _define(lighttyping.NamedTuple), _define(typing.NamedTuple)
    assert ours._fields == theirs._fields == ("start", "size", "name", "flags")
    assert ours._field_defaults == theirs._field_defaults == {"name": "", "flags": 0}
    assert ours.__doc__ == theirs.__doc__ == "A range of memory."
    a, b = ours(4096, 16, "stack"), theirs(4096, 16, "stack")
    assert tuple(a) == tuple(b) and a == b
    assert repr(a) == repr(b)
    assert a.end() == b.end() == 4112 and a.empty is b.empty is False
    assert a._replace(size=0).empty and isinstance(a, tuple)
    assert not hasattr(a, "__dict__")


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError):
        class Bad(lighttyping.NamedTuple):
            a: int = 0
            b: int


def test_cast_returns_its_value() -> None:
    value = object()
    assert lighttyping.cast("int", value) is value
