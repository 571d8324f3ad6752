"""Run-time stand-ins for the three names of :mod:`typing` the minimizer needs at run time.

``coripper CORE > OUT`` has a start-up budget of 30 ms (issue 16), and importing :mod:`typing`
costs about 2 ms of it. The minimizer's modules therefore import ``typing`` only for the type
checker (``TYPE_CHECKING = False; if TYPE_CHECKING: from typing import ...``, which mypy
honours) and take these at run time:

* :class:`NamedTuple`: the ``class P(NamedTuple): a: int; b: str = "x"`` syntax, built on
  :func:`collections.namedtuple` as :mod:`typing` builds it (fields in annotation order,
  trailing defaults, methods and properties of the class body kept);
* :func:`cast`: returns its value;
* :class:`Protocol`: an empty base class (protocols are checked statically only).
"""

from __future__ import annotations

import collections

#: Class-body names that are not fields, methods or class attributes of the result.
_SKIP = frozenset({"__module__", "__qualname__", "__annotations__", "__doc__", "__orig_bases__",
                   "__slots__", "__dict__", "__weakref__"})


class _NamedTupleMeta(type):
    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> type:
        if not bases:                       # the NamedTuple base itself
            return super().__new__(mcls, name, bases, ns)
        annotations = ns.get("__annotations__", {})
        assert isinstance(annotations, dict)
        fields = list(annotations)
        defaults = [ns[f] for f in fields if f in ns]
        if any(f in ns for f in fields[:len(fields) - len(defaults)]):
            raise TypeError(f"{name}: a field without a default follows one with a default")
        cls = collections.namedtuple(name, fields, defaults=defaults or None,  # type: ignore[misc]
                                     module=str(ns.get("__module__", __name__)))
        cls.__qualname__ = str(ns.get("__qualname__", name))
        if ns.get("__doc__"):
            cls.__doc__ = str(ns["__doc__"])
        for key, value in ns.items():
            if key not in _SKIP and key not in annotations:
                setattr(cls, key, value)
        return cls


class NamedTuple(metaclass=_NamedTupleMeta):
    """Base of a typed named tuple (see the module docstring)."""


def cast(typ: object, value: object) -> object:
    """:func:`typing.cast` at run time: the value, unchanged."""
    return value


class Protocol:
    """Base of a structural type; only the type checker looks at it."""
