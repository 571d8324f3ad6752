"""``report_event.conf`` rules, parsed exactly as libreport's ``load_rule_list`` does (§3.2).

* Outer loop, line by line: an empty line or one starting with ``#`` is skipped; a line
  starting with ``EVENT`` begins a rule; ``include<blank><glob>`` includes files (relative
  to the including file's directory; glob order; nesting at most 32); anything else is
  ignored.
* A rule absorbs the following lines until end of file or a line starting (column 0) with
  ``#``, ``EVENT`` or ``include``; the lines are joined with ``\\n``.
* Conditions are the leading whitespace-separated words that contain ``=``, on the first
  line only; the rest, leading whitespace skipped, is the shell command.

Text in, :class:`Rule` objects out; :func:`load_rules` does the file I/O and the globbing.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

MAX_RECURSION_DEPTH = 32
MAX_CONF_BYTES = 16 << 20
# C isspace()/isblank() in the C locale.
_SPACE = " \t\n\v\f\r"
_BLANK = " \t"


@dataclass(frozen=True)
class Rule:
    """One rule: its conditions (``EVENT=x``, ``elem=v``, ``elem!=v``, ``elem~=regex``), the
    shell command (may be empty or span lines), and where it was read."""

    conditions: tuple[str, ...]
    command: str
    source: str = ""
    line: int = 0

    @property
    def events(self) -> tuple[str, ...]:
        """The values of the rule's ``EVENT=`` conditions."""
        return tuple(c[6:] for c in self.conditions if c.startswith("EVENT="))


@dataclass
class LoadResult:
    """Rules in file order plus the warnings libreport would log (unreadable files...)."""

    rules: list[Rule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _skip_non_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] not in _SPACE:
        pos += 1
    return pos


def split_rule(text: str) -> tuple[tuple[str, ...], str]:
    """Conditions and command of a rule's joined text (libreport's word loop)."""
    conditions: list[str] = []
    p = _skip(text, 0, _SPACE)
    while True:
        end_word = _skip_non_space(text, p)
        eq = text.find("=", p)
        if eq < 0 or eq >= end_word:
            p = _skip(text, p, _SPACE)
            break
        conditions.append(text[p:end_word])
        p = _skip(text, end_word, _BLANK)  # the next word, but not across lines
    return tuple(conditions), text[p:]


def _breaks_rule(line: str) -> bool:
    return line.startswith(("#", "EVENT", "include"))


def _is_include(line: str) -> bool:
    return line.startswith("include") and len(line) > 7 and line[7] in _BLANK


@dataclass(frozen=True)
class Include:
    """An ``include`` line: its glob pattern (the rest of the line, leading blanks skipped)."""

    pattern: str
    line: int


def parse_rules(lines: list[str], source: str = "") -> Iterator[Rule | Include]:
    """Rules and ``include`` directives of one file's *lines* (no newlines), in file order."""
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        start = i
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("EVENT"):
            parts = [line]
            while i < n and not _breaks_rule(lines[i]):
                parts.append(lines[i])
                i += 1
            conditions, command = split_rule("\n".join(parts))
            yield Rule(conditions, command, source, start + 1)
        elif _is_include(line):
            yield Include(line[_skip(line, 7, _SPACE):], start + 1)


def split_lines(data: bytes) -> list[str]:
    """A file's lines as libreport's ``xmalloc_fgetline`` returns them: split on ``\\n``,
    no final empty line, each cut at a NUL (C strings)."""
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.split("\0", 1)[0] for ln in lines]


def _read_conf(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_CONF_BYTES)


def include_glob(including: str, pattern: str) -> str:
    """The glob an ``include PATTERN`` in file *including* expands: relative patterns are
    taken from the including file's directory (its path up to the last ``/``)."""
    slash = including.rfind("/")
    if pattern.startswith("/") or slash < 0:
        return pattern
    return including[: slash + 1] + pattern


def load_rules(path: str, result: LoadResult | None = None, depth: int = 0,
               reader: Callable[[str], bytes] = _read_conf) -> LoadResult:
    """All rules of *path* and the files it includes, in libreport's order.

    An unreadable file is a warning (libreport: ``Can't open 'X'``) and contributes nothing;
    a directory matched by a glob reads as empty, as ``fopen`` + read of one does. Included
    files are globbed in sorted (C locale) order; past 32 levels an include is ignored.
    """
    result = result if result is not None else LoadResult()
    try:
        data = b"" if os.path.isdir(path) else reader(path)
    except OSError as exc:
        result.warnings.append(f"Can't open '{path}': {exc.strerror}")
        return result
    result.files.append(path)
    for item in parse_rules(split_lines(data), path):
        if isinstance(item, Rule):
            result.rules.append(item)
        elif depth < MAX_RECURSION_DEPTH:
            for name in sorted(glob.glob(include_glob(path, item.pattern))):
                load_rules(name, result, depth + 1, reader)
    return result
