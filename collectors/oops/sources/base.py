"""The shape every kernel log source shares: the :class:`Source` base and its :class:`LogUnit`.

A source is mostly data (``name``, ``description``) plus ``exists()`` and ``units(state)``.
``units`` yields one :class:`LogUnit` per file, boot or pstore event, each with the lines
still to scan and a ``finish()`` that records in ``state`` (the source's cursor section,
see :mod:`collectors.oops.cursor`) that the unit was fully processed.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Longest line passed on; the rest of a longer line is dropped (a 10 MB line of garbage
# must not become a 10 MB title or hold memory).
MAX_LINE = 1 << 20


# Why the lines of a unit are not known to be the kernel's own: the default for any unit whose
# source does not say otherwise (docs/oops-collect.md, "Forged kernel lines").
UNKNOWN_ORIGIN = "its lines were read from a log of unknown origin"


@dataclass
class LogUnit:
    """One log to scan: its lines, and what to remember once they are all processed.

    ``unauthenticated`` is None only for lines that came through a transport only the kernel
    (or root) writes: ``/dev/kmsg``, the journal's ``_TRANSPORT=kernel``, pstore, a root-owned
    kdump log. Otherwise it says, completing "This report is not known to come from the
    kernel: ...", why not; the report's problem directory is then marked and not reportable.
    """

    source: str
    origin: str
    lines: Iterator[str]
    finish: Callable[[], None] = lambda: None
    errors: list[str] = field(default_factory=list)
    unauthenticated: str | None = UNKNOWN_ORIGIN


class Source(abc.ABC):
    """A place where the host keeps its kernel log.

    Class attributes: ``name`` is the ``--source`` value, the cursor section and the
    ``source`` of every unit; ``description`` says in one line what is read. Subclasses
    take every path and command as a constructor argument so tests can point them at a
    fixture tree. Sources never parse reports; :mod:`collectors.oops.parse` does that.
    """

    name: str = ""
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def exists(self) -> bool:
        """True when the source applies on this host (its files or commands are there)."""

    @abc.abstractmethod
    def units(self, state: dict[str, Any]) -> Iterator[LogUnit]:
        """The logs to scan, each resuming after what ``state`` says was already read."""


def decode_line(raw: bytes) -> str:
    """Bytes of one log line to text (invalid UTF-8 replaced, NULs become spaces)."""
    return raw.decode("utf-8", "replace").replace("\x00", " ").rstrip("\r\n")


def split_text_lines(data: bytes) -> Iterator[str]:
    """Lines of a text blob, each capped at ``MAX_LINE`` bytes."""
    for raw in data.split(b"\n"):
        yield decode_line(raw[:MAX_LINE])


def one_line(exc: BaseException) -> str:
    """An exception as one short line (``strerror`` alone for OS errors)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join((str(exc) or type(exc).__name__).split())
