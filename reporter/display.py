"""Text that is safe to print on a terminal: every non-printable character escaped.

Element content, element names and directory names come from the crashing side. A C0
control (ESC), a C1 control (U+009B is CSI, a whole escape sequence introducer in one
character), DEL, a bidirectional override (U+202E) or a zero-width character printed
verbatim can rewrite the screen or disguise text. :func:`escape` writes each of them as a
Python-style escape: ``\\xNN`` up to U+00FF, ``\\uNNNN``, ``\\UNNNNNNNN``; ``\\t``, ``\\n``
and ``\\r`` by name. A byte of an undecodable file name (a ``surrogateescape`` U+DC80..U+DCFF)
is shown as the ``\\xNN`` of that byte. Backslashes themselves are left alone, so an escape
in the output may also be literal text: the JSON output is the exact form.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape(text: str, keep: str = "") -> str:
    """*text* with every character that is not printable (``str.isprintable``), other than
    those in *keep*, replaced by an escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the raw byte of a file name
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


# ------------------------------------------------------------------------ terminal tables

BOLD = "\x1b[1m"
RED = "\x1b[31m"
RESET = "\x1b[0m"


def use_colour(isatty: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour output: only on a terminal, never with ``NO_COLOR`` set to anything
    non-empty (no-color.org) or ``TERM=dumb``; ``SYSTEMD_COLORS=0|false|no`` turns it off too."""
    env = os.environ if environ is None else environ
    if not isatty or env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    return env.get("SYSTEMD_COLORS", "").lower() not in ("0", "false", "no", "off")


def terminal_width(fd: int, isatty: bool, environ: Mapping[str, str] | None = None) -> int | None:
    """Columns to fit a table in: ``$COLUMNS`` when it is a number (as systemd), else the
    terminal's width; ``None`` (no limit) when writing to a pipe or a file."""
    env = os.environ if environ is None else environ
    columns = env.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if not isatty:
        return None
    try:
        return os.get_terminal_size(fd).columns or None
    except OSError:
        return None


class Column:
    """A table column: header, right-aligned or not, and how it gives way on a narrow
    terminal: ``shrink`` to at least ``min_width`` (cutting the ``start`` or the ``end`` of
    a cell, marked with ``…``), ``drop`` when even that does not fit."""

    __slots__ = ("header", "right", "min_width", "cut", "drop")

    def __init__(self, header: str, *, right: bool = False, min_width: int | None = None,
                 cut: str = "end", drop: bool = False) -> None:
        self.header = header
        self.right = right
        self.min_width = min_width
        self.cut = cut
        self.drop = drop


def cut(text: str, width: int, where: str = "end") -> str:
    """*text* in at most *width* characters, the cut marked with ``…`` at *where*
    (``end`` keeps the start, ``start`` keeps the end, e.g. an executable's name)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    return "…" + text[len(text) - width + 1:] if where == "start" else text[: width - 1] + "…"


def fit(columns: list[Column], rows: list[list[str]], width: int | None,
        order: list[int]) -> list[int | None]:
    """Width of each column (``None``: dropped) so that the table fits in *width*: the
    columns in *order* shrink to their minimum or are dropped, one after the other, until
    it fits (pure)."""
    widths: list[int | None] = [max([len(c.header)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    if width is None:
        return widths

    def total() -> int:
        shown = [w for w in widths if w is not None]
        return sum(shown) + len(shown) - 1

    for i in order:
        excess = total() - width
        if excess <= 0:
            break
        col, current = columns[i], widths[i]
        if current is None:
            continue
        floor = max(col.min_width or 0, len(col.header))
        if col.min_width is not None and current > floor:
            widths[i] = max(floor, current - excess)
            if total() <= width:
                break
        if col.drop:
            widths[i] = None
    return widths


def render(columns: list[Column], rows: list[list[str]], widths: list[int | None], *,
           legend: bool = True, colour: bool = False) -> list[str]:
    """The table's lines: header (bold when *colour*) and rows, cells cut to *widths* and
    one space apart (as systemd's tables), without trailing blanks."""
    shown = [(c, w, i) for i, (c, w) in enumerate(zip(columns, widths, strict=True)) if w is not None]
    lines = []
    if legend:
        head = " ".join(c.header.rjust(w) if c.right else c.header.ljust(w) for c, w, _ in shown).rstrip()
        lines.append(f"{BOLD}{head}{RESET}" if colour else head)
    for row in rows:
        cells = []
        for c, w, i in shown:
            text = cut(row[i], w, c.cut)
            cells.append(text.rjust(w) if c.right else text.ljust(w))
        lines.append(" ".join(cells).rstrip())
    return lines


def human_size(size: int | None) -> str:
    """``512B``, ``1.5K``, ``23.4M``, ``2.0G`` (1024-based, as coredumpctl); ``-`` for ``None``."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{int(value)}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
